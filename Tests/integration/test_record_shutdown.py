"""Shutdown order with PostgreSQL call records: the record writer drains its queue before the pool (run
as a service ahead of it in the node's ServiceGroup) closes, so records still queued at SIGTERM are
written. The test holds a lock on `call_records` from a psql session of its own, so the node's saves
wait; it sends SIGTERM, and lets the writes through only once the node has stopped listening (the server
is shut down first). Every record is then in the database, and the node exited within its graceful
shutdown bound.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from local_cluster import cluster_fixture
from switchboard_client import unique_user, wait_until

pytestmark = pytest.mark.cluster

cluster = cluster_fixture(1, redis=False, postgres=True, env={"SWITCHBOARD_LIMITS_INVITES_PER_MINUTE": "1000"})

CALLS = 40


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-At", "-c", sql], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def listening(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def test_records_queued_at_shutdown_are_written_before_the_pool_closes(cluster):
    database = cluster.state["postgres"]["url"]
    node_id = cluster.node_ids[0]
    node_url = cluster.node(node_id)["url"]
    caller = cluster.connect(unique_user("caller"))
    offline = unique_user("offline")

    # A session of the test's that blocks every write to call_records until it commits.
    locker = subprocess.Popen(["psql", database, "-v", "ON_ERROR_STOP=1", "-q"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert locker.stdin and locker.stdout
    locker.stdin.write("BEGIN;\nLOCK TABLE call_records IN EXCLUSIVE MODE;\n\\echo locked\n")
    locker.stdin.flush()
    assert locker.stdout.readline().strip() == "locked"
    try:
        for _ in range(CALLS):
            caller.send_signal(offline, "call-invite", callType="audio")
            assert caller.expect_notice("call-failed")["reason"] == "offline"
        wait_until(lambda: psql(database, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") != "0",
                   10, "the node's first save waiting for the lock")

        released = threading.Event()

        def release_once_the_server_is_down() -> None:
            wait_until(lambda: not listening(node_url), 10, "the node to stop listening")
            locker.stdin.write("COMMIT;\n\\q\n")
            locker.stdin.flush()
            released.set()

        releaser = threading.Thread(target=release_once_the_server_is_down, daemon=True)
        started = time.monotonic()
        releaser.start()
        cluster.kill_node(node_id, signal.SIGTERM)  # returns once the process has exited
        stopped = time.monotonic() - started
        releaser.join(10)
        assert released.is_set(), "the node exited while still listening"
    finally:
        if locker.poll() is None:
            locker.stdin.close()
            locker.wait(10)

    written = int(psql(database, f"SELECT count(*) FROM call_records WHERE caller_id = '{caller.user}' AND status = 5"))
    print(f"\n{CALLS} records queued behind a lock at SIGTERM: {written} written; node exited {stopped:.2f} s after SIGTERM")
    assert written == CALLS
    assert stopped < 10 + 2, "within maximumGracefulShutdownDuration (10 s) and a margin"
