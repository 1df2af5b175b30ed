"""Cluster buffers are bounded in bytes (PROTOCOL.md §9): a sender streaming big messages to a user on
another node costs its node at most what `redis.retry_*` and `redis.replay_*` allow, and that memory
goes back once the users leave.

A sender on n1 sends 1,000 × 512 KiB to a user on n2, who reads, does not read, or whose node's inbox
subscriber is away (Redis refuses its reconnects, so every `PUBLISH` finds no receiver and n1 holds
what it can for the retry window). n1's resident memory (/proc/PID/status VmRSS) is sampled all along;
the figures are printed (`pytest -s`).
"""

from __future__ import annotations

import threading
import time

import pytest

from cluster import RssSampler, inbox, is_error, rss_bytes
from switchboard_client import FILE, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

MiB = 1024 * 1024
MESSAGE = 512 * 1024
COUNT = 1000
# The defaults of the keys (SwitchboardConfiguration+Keys.swift): what n1 may keep per destination.
RETRY_MAX_BYTES = 32 * MiB  # redis.retry_max_bytes: sent and unanswered, or held for a retry
REPLAY_MAX_BYTES = 32 * MiB  # redis.replay_max_bytes: received, kept for a replay
REPLAY_MAX_AGE = 10.0  # redis.replay_max_age
RETRY_MAX_AGE = 2.0  # redis.retry_max_age
# On top of what the outbox keeps: each PUBLISH in flight is encoded once more for the Redis connection
# (RESPCommandEncoder grows its buffer by doubling: up to 2 × the payload), the frames being read from
# the sender's socket and decoded, and allocator slack.
IN_FLIGHT_COPIES = 2 * RETRY_MAX_BYTES
SLACK = 48 * MiB
PEAK_BOUND = RETRY_MAX_BYTES + REPLAY_MAX_BYTES + IN_FLIGHT_COPIES + SLACK
# After both users left and the replay age passed: what the allocator may keep (glibc keeps some; with
# `switchboard serve`'s fixed M_MMAP_THRESHOLD, buffers of 512 KiB are unmapped when freed).
SETTLED_MARGIN = 16 * MiB
PASSWORD = "memory-test-refuses-reconnects"

ENV = {
    # 1,000 messages in seconds rather than 20 s at the default 50/s.
    "SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND": "100000",
}


@pytest.fixture
def redis_server(fresh_redis_server):
    """Its own Redis: the inbox-away case sets `requirepass` on it."""
    return fresh_redis_server


def mib(n: int) -> str:
    return f"{n / MiB:.1f} MiB"


class Tally:
    """What one client received, counted from a reader thread."""

    def __init__(self, client, sender: str | None = None):
        self.client = client
        self.sender = sender
        self.delivered = 0
        self.errors: dict[str, int] = {}
        self.other: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.client.try_recv(0.05)
            except Exception:  # noqa: BLE001 - the connection closed: nothing more to count
                return
            if msg is None:
                continue
            if msg.contentType == FILE and msg.sender == self.sender:
                self.delivered += 1
            elif is_error(msg):
                reason = msg.json.get("reason")
                self.errors[reason] = self.errors.get(reason, 0) + 1
            else:
                self.other.append(msg)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def start(self) -> "Tally":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("receiver", ["reads", "does-not-read", "inbox-away"])
def test_big_messages_across_nodes_stay_within_the_buffer_bounds(cluster_factory, join, redis_server, receiver):
    env = dict(ENV)
    if receiver == "reads":
        # What n2 may queue for bob, so that a reader thread in Python that lags a few messages behind is
        # not closed for not reading (that is the other case).
        env["SWITCHBOARD_WEBSOCKET_MAX_PENDING_BYTES"] = str(64 * MiB)
    n1, n2 = cluster_factory(2, **env)
    alice, bob = join(n1), join(n2)
    # A file's bytes: a text of that size decodes 100× slower in a debug build (UTF-8 validation).
    payload = bytes(range(256)) * (MESSAGE // 256)

    def send_file() -> None:
        alice.send(to=bob.user, contentType=FILE, content="big.bin", fileSuffix="bin", file=payload)

    # Warm-up: a few big messages both ways, so that the baseline has the allocator's arenas in use.
    for _ in range(4):
        send_file()
        assert bob.recv().file == payload
        bob.send(to=alice.user, content="ok")
        assert alice.recv().content == "ok"
    baseline = rss_bytes(n1.pid)

    if receiver == "inbox-away":
        # Redis refuses new connections' commands: the subscribers, killed, cannot come back, while the
        # nodes' command connections (already authenticated) go on. n2 stays alive (its heartbeats go
        # on), so n1 holds what it can and retries each message for the whole retry age.
        redis_server.cli("CONFIG", "SET", "requirepass", PASSWORD)
        redis_server.cli("CLIENT", "KILL", "TYPE", "pubsub", password=PASSWORD)
        wait_until(lambda: redis_server.cli("PUBSUB", "NUMSUB", inbox(n2.node_id), password=PASSWORD)[1] == 0,
                   5, f"no subscriber on {inbox(n2.node_id)}")

    alice_tally = Tally(alice).start()  # alice reads her notices (a sender that does not read is not this test)
    bob_tally = Tally(bob, sender=alice.user).start() if receiver != "does-not-read" else None

    def accounted() -> bool:
        return alice_tally.failed + (bob_tally.delivered if bob_tally else 0) >= COUNT

    started = time.monotonic()
    with RssSampler(n1.pid) as sampler:
        for _ in range(COUNT):
            send_file()
        sent_in = time.monotonic() - started
        if bob_tally is not None:
            try:
                wait_until(accounted, 60, "every message delivered or reported to its sender", interval=0.1)
            except AssertionError:
                pass  # asserted below, after the figures are printed
    took = time.monotonic() - started
    alice_tally.stop()
    if bob_tally is not None:
        bob_tally.stop()
    growth = sampler.peak - baseline
    delivered = bob_tally.delivered if bob_tally else None
    print(f"\n[{receiver}] {COUNT} × {MESSAGE // 1024} KiB n1→n2: sent in {sent_in:.1f}s, settled in {took:.1f}s; "
          f"delivered {'?' if delivered is None else delivered}, sender told {alice_tally.errors}")
    print(f"[{receiver}] n1 RSS: baseline {mib(baseline)}, peak {mib(sampler.peak)} (+{mib(growth)}, "
          f"bound +{mib(PEAK_BOUND)}), {sampler.samples} samples; n2 RSS now {mib(rss_bytes(n2.pid))}")

    assert growth < PEAK_BOUND, f"n1 grew by {mib(growth)} (bound {mib(PEAK_BOUND)})"
    assert not alice_tally.other, f"unexpected messages to the sender: {alice_tally.other[:3]}"
    if receiver == "reads":
        assert not bob_tally.other, bob_tally.other[:3]
        # Nothing is lost silently: each message delivered, or its sender told why not.
        assert delivered + alice_tally.failed == COUNT, (delivered, alice_tally.errors)
    if receiver == "inbox-away":
        assert delivered == 0, "delivered while n2's inbox had no subscriber"
        # Each one given up (the oldest, to make room for newer ones, or after the retry age) is reported;
        # a few may wait behind a presence lookup and find that user's backlog full.
        assert set(alice_tally.errors) <= {"unavailable", "rate-limited"}, alice_tally.errors
        assert alice_tally.failed == COUNT, alice_tally.errors
        redis_server.cli("CONFIG", "SET", "requirepass", "", password=PASSWORD)
        wait_until(lambda: redis_server.numsub(inbox(n2.node_id)) >= 1, 10, f"{inbox(n2.node_id)} resubscribed")
        # Delivery is back (a new message goes after the ones n1 gave up on: n2 waits out that gap).
        alice.send(to=bob.user, content="after")
        got = bob.recv(timeout=RETRY_MAX_AGE + 5)
        assert got.content == "after" and got.sender == alice.user, got

    # Both leave: what n1 kept for them goes (the replay age bounds the last of it), and so does the memory.
    alice.close()
    bob.close()
    left = time.monotonic()
    settled_bound = baseline + SETTLED_MARGIN
    seen: list[int] = []

    def settled() -> bool:
        seen[:] = [rss_bytes(n1.pid)]
        return seen[0] <= settled_bound

    try:
        wait_until(settled, REPLAY_MAX_AGE + RETRY_MAX_AGE + 5, f"n1 RSS back under {mib(settled_bound)}",
                   interval=0.25)
    finally:
        print(f"[{receiver}] n1 RSS {time.monotonic() - left:.1f}s after both left: {mib(seen[0])} "
              f"(baseline {mib(baseline)}, bound {mib(settled_bound)})")
