"""records.max_queued: while the database cannot write, the record writer holds at most that many calls'
records; a new call's record beyond it is dropped and counted in `switchboard_call_records_dropped_total`,
and the node's resident memory (/proc/PID/status VmRSS) stays flat however many calls end meanwhile.
Once the database writes again, new records are written.

The database is the node's SQLite file, locked by the test holding an exclusive transaction: every save
then waits out the store's 5 s busy timeout and fails, which is a database that has stopped keeping up.
Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import sqlite3
import time

from cluster import RssSampler, rss_bytes
from switchboard_client import unique_user, wait_until
from test_metrics import scrape

MAX_QUEUED = 500
DROPPED = "switchboard_call_records_dropped_total"
UNLIMITED = "1000000"


def failed_invites(caller, callee: str, count: int, batch: int = 250) -> None:
    """`count` invites to the offline `callee`, each answered `call-failed` (each a call and its record)."""
    sent = 0
    while sent < count:
        n = min(batch, count - sent)
        for _ in range(n):
            caller.send_signal(callee, "call-invite", callType="audio")
        for _ in range(n):
            body = caller.expect_notice("call-failed")
            assert body["reason"] == "offline", body
        sent += n


def test_a_database_that_cannot_write_costs_bounded_memory_and_counts_dropped_records(node_factory, connect):
    node = node_factory(
        SWITCHBOARD_RECORDS_MAX_QUEUED=str(MAX_QUEUED),
        SWITCHBOARD_LIMITS_INVITES_PER_MINUTE=UNLIMITED,
        SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND=UNLIMITED,
        SWITCHBOARD_LIMITS_MESSAGES_BURST=UNLIMITED,
    )
    caller = connect(node, unique_user("caller"))
    offline = unique_user("offline")
    assert scrape(node)[DROPPED] == 0

    lock = sqlite3.connect(node.db_path, timeout=5, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the node's saves now wait 5 s each and fail
    try:
        # Fill the queue: at most one save is stuck in the store, MAX_QUEUED calls wait, the rest drop.
        failed_invites(caller, offline, 2 * MAX_QUEUED)
        dropped_full = wait_until(lambda: scrape(node)[DROPPED] or None, 10, "records dropped once the queue is full")
        assert MAX_QUEUED - 2 <= dropped_full <= MAX_QUEUED, dropped_full  # 1,000 calls: 500 (+ 1 being saved) kept
        rss_full = rss_bytes(node.proc.pid)

        # Many more calls end while the database is still away: they are dropped, not held.
        more = 20_000
        started = time.monotonic()
        with RssSampler(node.proc.pid, interval=0.02) as rss:
            failed_invites(caller, offline, more)
        elapsed = time.monotonic() - started
        dropped = scrape(node)[DROPPED]
        growth = rss.peak - rss_full
        print(
            f"\nrecords.max_queued={MAX_QUEUED}, database locked: {2 * MAX_QUEUED + more} calls ended in "
            f"{elapsed:.1f} s (last {more}); dropped {dropped:.0f}; node RSS {rss_full / 2**20:.1f} MiB with the "
            f"queue full, peak {rss.peak / 2**20:.1f} MiB after {more} more calls (+{growth / 2**20:.2f} MiB, "
            f"{growth / more:.0f} B per call; {rss.samples} samples)"
        )
        # A save that fails after the busy timeout makes room for one more call now and then.
        assert dropped >= dropped_full + more - 10, (dropped, dropped_full)
        # Refusals are logged once per spell of a full queue, not once per record: a spell ends when a save
        # (here: failing after the busy timeout, every 5 s) makes room.
        full = [r for r in node.log_records() if r.get("message", "").startswith("call record queue full")]
        assert 1 <= len(full) <= 2 + (time.monotonic() - started) // 5, full
        assert all(r["level"] == "warning" for r in full), full
        # Held, 20,000 records would be several MiB (a CallRecord and its queue entry are a few hundred
        # bytes); dropped, they cost nothing that stays.
        assert growth < 3 * 2**20, f"RSS grew {growth / 2**20:.2f} MiB while {more} records were dropped"
    finally:
        lock.rollback()
        lock.close()

    # The database writes again: the queue drains (the records that waited are written), and a new
    # call's record is written.
    def written() -> int:
        conn = sqlite3.connect(f"file:{node.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM call_records WHERE caller_id = ?", (caller.user,)).fetchone()[0]
        finally:
            conn.close()

    wait_until(lambda: written() >= MAX_QUEUED - 10 or None, 30, "the records that waited, written")
    call_id = "after-the-outage-" + unique_user("c")
    caller.send_signal(offline, "call-invite", callType="audio", callId=call_id)
    assert caller.expect_notice("call-failed")["reason"] == "offline"
    record = node.wait_for_call_record(caller.user, call_id, status=5, timeout=30)
    assert record["caller_id"] == caller.user and record["callee_id"] == offline
    assert scrape(node)[DROPPED] == dropped, "the new call's record was not dropped"
    # Each spell's end says how many records it dropped: together, the counter.
    def spells() -> list[dict] | None:
        ends = [r for r in node.log_records() if r.get("message") == "call record queue has room again"]
        return ends if sum(int(r["dropped"]) for r in ends) == dropped else None

    wait_until(spells, 10, "the end of every spell, logged with its count")
