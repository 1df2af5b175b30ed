# shellcheck shell=bash
# Shared setup for scripts/test and scripts/run: sourced, never executed.
#
# Installs what is missing on a fresh Debian 12 machine (as root, or with sudo), and nothing else:
# `apt-get update` runs at most once, and only when some package is actually missing.
#
# The package lists are plain bash arrays; extend them as the project grows

#   SWITCHBOARD_BUILD_APT_PACKAGES  needed by `swift build` (C libraries the package links)
#   SWITCHBOARD_TEST_APT_PACKAGES   needed by scripts/test on top of the build packages
#   SWITCHBOARD_RUN_APT_PACKAGES    needed by scripts/run on top of the build packages
# SQLite needs no package: sqlite-nio vendors it. postgresql brings the server binaries
# (/usr/lib/postgresql/N/bin) that the PostgreSQL store tests start a private server from.

SWITCHBOARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SWITCHBOARD_BUILD_APT_PACKAGES=(libhiredis-dev)
# nginx, curl: deploy/local-cluster behind nginx (test_nginx.py, test_deploy.py); docker-compose:
# validating docker-compose.yml (`docker-compose config`; no Docker engine needed); postgresql:
# the PostgreSQL call-record store tests; nodejs: runs switchboard-client.js (test_client_protobuf.py);
# chromium, chromium-driver: the demo page in real browsers (test_demo_browser.py); coturn: a real TURN
# server and turnutils_uclient (test_ice_servers.py, test_browser_call.py); prometheus: the key
# indicators' PromQL (test_kpis.py).
SWITCHBOARD_TEST_APT_PACKAGES=(redis-server nginx curl docker-compose postgresql nodejs chromium chromium-driver coturn prometheus)
SWITCHBOARD_RUN_APT_PACKAGES=()

sb_log() { printf '%s: %s\n' "${SB_SCRIPT:-switchboard}" "$*" >&2; }
sb_die() { sb_log "error: $*"; exit 1; }

# Runs a command as root (directly, or through sudo when not root).
sb_as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        sb_die "need root (or sudo) to run: $*"
    fi
}

# Prints the packages among "$@" that are not installed, one per line.
sb_apt_missing() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

SB_APT_UPDATED=0
# Installs the packages among "$@" that are missing; `apt-get update` once, only if needed.
sb_apt_ensure() {
    local missing
    mapfile -t missing < <(sb_apt_missing "$@")
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null 2>&1 || sb_die "missing packages (${missing[*]}) and no apt-get"
    sb_log "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ((SB_APT_UPDATED == 0)); then
        sb_as_root apt-get update -qq
        SB_APT_UPDATED=1
    fi
    sb_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The Swift toolchain is the machine's (Swift 6.3); it is not an apt package.
sb_require_swift() {
    command -v swift >/dev/null 2>&1 ||
        sb_die "swift not found on PATH: install the Swift 6.3 toolchain (https://swift.org/install)"
}

# Python 3 able to create a virtual environment (Debian splits venv/ensurepip into python3-venv).
sb_require_python_venv() {
    local pkgs=()
    command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
    if ((${#pkgs[@]})) || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        pkgs+=(python3-venv)
    fi
    if ((${#pkgs[@]})); then
        sb_apt_ensure "${pkgs[@]}"
    fi
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ||
        sb_die "python3 cannot create virtual environments (python3-venv)"
}

# sb_ensure_venv DIR REQUIREMENTS: creates the venv when missing or broken, and pip-installs the
# requirements when they changed since the last install (a stamp file in the venv remembers).
sb_ensure_venv() {
    local venv="$1" requirements="$2" stamp want
    sb_require_python_venv
    if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        sb_log "creating virtual environment $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    stamp="$venv/.requirements.sha256"
    want="$(cat "$requirements" <("$venv/bin/python" -VV) | sha256sum | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
        sb_log "installing Python packages from ${requirements#"$SWITCHBOARD_ROOT"/}"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
        printf '%s\n' "$want" >"$stamp"
    fi
}
