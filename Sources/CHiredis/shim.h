// The hiredis C API (Debian 12: libhiredis-dev 0.14, RESP2 only), for the RedisWire target.
// Only RedisWire imports CHiredis; every C call stays inside that target.
#ifndef SWITCHBOARD_CHIREDIS_SHIM_H
#define SWITCHBOARD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

#endif
