"""One session per user across the cluster, and graceful shutdown of a node (PROTOCOL.md §2, §6, §7)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from cluster import (
    ANSWER,
    NODES,
    OFFER,
    candidate,
    hang_up,
    presence_api,
    start_call,
    wait_final_record,
)
from switchboard_client import unique_user, wait_until

pytestmark = pytest.mark.cluster


def test_session_replacement_across_nodes(cluster_factory, join, redis_server):
    n1, n2, n3 = cluster_factory(3)
    user = unique_user("alice")
    first = join(n1, user, name="Alice")
    bob = join(n1, unique_user("bob"))  # on the old session's node
    carol = join(n2, unique_user("carol"))  # on the new session's node
    erin = join(n3, unique_user("erin"))  # elsewhere: has sent to the old session before
    erin.send(to=user, content="to the first session")
    assert first.recv().content == "to the first session"

    second = join(n2, user, name="Alice")
    assert first.expect_notice("session-replaced") == {"type": "session-replaced"}
    before_close = first.expect_close(4001)
    assert before_close == [], f"the replaced session got more after session-replaced: {before_close!r}"
    # The old node closing its socket must not take the new session's presence away.
    assert redis_server.presence_of(user) == "n2"
    assert presence_api(n1, user) == {"user": user, "online": True, "node": "n2"}
    wait_until(lambda: redis_server.cli("SISMEMBER", "webrtc:node:n1:users", user) == 0, 3,
               "user removed from webrtc:node:n1:users")

    # Messages reach the new session, from both nodes; it can send too.
    bob.send(to=user, content="from n1")
    got = second.recv()
    assert got.content == "from n1" and got.sender == bob.user, got
    carol.send(to=user, content="from n2")
    assert second.recv().content == "from n2"
    erin.send(to=user, content="from n3")  # whatever n3 remembered about n1 must not lose it
    assert second.recv().content == "from n3"
    second.send(to=bob.user, content="from the new session")
    got = bob.recv()
    assert got.content == "from the new session" and got.sender == user and got.fromUsername == "Alice", got

    # And back again: n2 → n1.
    third = join(n1, user)
    second.expect_notice("session-replaced")
    second.expect_close(4001)
    assert redis_server.presence_of(user) == "n1"
    carol.send(to=user, content="to the third session")
    assert third.recv().content == "to the third session"
    bob.send(to=user, content="local again")
    assert third.recv().content == "local again"
    erin.send(to=user, content="from n3 again")
    assert third.recv().content == "from n3 again"


def test_replacement_during_a_call_keeps_the_call(cluster_factory, join):
    """The callee opens a new session on another node while in a call (the old one is replaced, not
    dropped): the call goes on over the new session; no peer-disconnected after the grace."""
    grace = 1.0
    nodes = cluster_factory(3, SWITCHBOARD_CALLS_RECONNECT_GRACE=f"{grace:g}s")
    n1, n2, n3 = nodes
    alice, bob = join(n1, unique_user("alice")), join(n2, unique_user("bob"))
    call_id = start_call(alice, bob)
    bob2 = join(n3, bob.user)
    bob.expect_notice("session-replaced")
    bob.expect_close(4001)
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    assert bob2.expect_signal("offer").json["callId"] == call_id
    # Absence check, bounded: past the grace, no hangup for either side.
    alice.expect_no_message(within=grace + 1.0)
    bob2.expect_no_message(within=0.1)
    bob2.send_signal(alice.user, "answer", callId=call_id, answer=ANSWER)
    assert alice.expect_signal("answer").json["answer"] == ANSWER
    hang_up(alice, bob2, call_id)
    wait_final_record(nodes, call_id, 3)


def test_sigterm_graceful_shutdown(cluster_factory, join, redis_server):
    hb = 1.0
    nodes = cluster_factory(2, SWITCHBOARD_REDIS_HEARTBEAT_INTERVAL="1s")
    n1, n2 = nodes
    a1, a2 = join(n1), join(n1)
    b = join(n2)
    assert set(redis_server.nodes()) == {"n1", "n2"}

    t0 = time.monotonic()
    proc = n1.terminate()
    a1.expect_close(1001, timeout=10)
    a2.expect_close(1001, timeout=10)
    try:
        code = proc.wait(max(0.1, 10 - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"n1 still running 10 s after SIGTERM\n{n1.tail(20)}") from None
    print(f"n1 exited {time.monotonic() - t0:.2f}s after SIGTERM with code {code}")
    assert code in (0, -signal.SIGTERM), f"exit code {code}\n{n1.tail(20)}"

    # Checked right at exit: its users are gone from presence, and n1 is either out of webrtc:nodes
    # or marked dead there (a heartbeat older than 3 intervals: the next reaper removes it).
    exited_ms = time.time() * 1000
    left = {u: redis_server.presence_of(u) for u in (a1.user, a2.user)}
    assert left == {a1.user: None, a2.user: None}, f"presence after n1 stopped: {left}"
    score = redis_server.cli("ZSCORE", NODES, "n1")
    assert score is None or float(score) < exited_ms - 3 * hb * 1000, (
        f"n1 still looks alive in {NODES} after it exited: {redis_server.nodes()}")
    wait_until(lambda: "n1" not in redis_server.nodes(), hb + 2, f"n1 removed from {NODES}")
    assert "n2" in redis_server.nodes()

    # The survivor sees them offline and is itself unaffected.
    assert presence_api(n2, a1.user)["online"] is False
    b.send_signal(a1.user, "call-invite", callType="audio")
    body = b.expect_notice("call-failed")
    assert body["reason"] == "offline" and body["to"] == a1.user, body
    b.send(to=a2.user, content="gone?")
    b.expect_error("offline")
    assert redis_server.presence_of(b.user) == "n2"
    assert n2.readyz() == 200

    # They come back on the other node and are reachable there.
    a1b = join(n2, a1.user)
    b.send(to=a1.user, content="welcome back")
    assert a1b.recv().content == "welcome back"


def test_call_survives_a_rolling_restart(cluster_factory, join):
    """SIGTERM on the caller's node: the caller reconnects to the other node within the grace
    period and the call goes on (what a rolling deploy behind nginx looks like)."""
    grace = 3.0
    nodes = cluster_factory(2, SWITCHBOARD_CALLS_RECONNECT_GRACE=f"{grace:g}s")
    n1, n2 = nodes
    alice = join(n1, unique_user("alice"))
    bob = join(n2, unique_user("bob"))
    call_id = start_call(alice, bob, "video")
    proc = n1.terminate()
    alice.expect_close(1001, timeout=10)
    alice2 = join(n2, alice.user)
    assert proc.wait(10) in (0, -signal.SIGTERM)
    # Back within the grace (PROTOCOL.md §8): alice is told the call goes on, bob that she is back.
    assert alice2.expect_notice("call-resumed")["callId"] == call_id
    assert bob.expect_notice("peer-reconnected")["callId"] == call_id

    bob.send_signal(alice.user, "offer", callId=call_id, offer=OFFER)
    assert alice2.expect_signal("offer").json["callId"] == call_id
    alice2.send_signal(bob.user, "answer", callId=call_id, answer=ANSWER)
    assert bob.expect_signal("answer").json["answer"] == ANSWER
    # No peer-disconnected once the grace is over (absence: bounded wait of grace + 1 s).
    bob.expect_no_message(within=grace + 1.0)
    alice2.expect_no_message(within=0.1)
    alice2.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(7))
    assert bob.expect_signal("ice-candidate").json["candidate"] == candidate(7)
    hang_up(bob, alice2, call_id)
    wait_final_record(nodes, call_id, 3)


def test_sigterm_party_that_does_not_return_ends_the_call(cluster_factory, join):
    grace, hb = 1.0, 0.3
    nodes = cluster_factory(2, SWITCHBOARD_CALLS_RECONNECT_GRACE=f"{grace:g}s",
                            SWITCHBOARD_REDIS_HEARTBEAT_INTERVAL=f"{int(hb * 1000)}ms")
    n1, n2 = nodes
    alice, bob = join(n1), join(n2)
    call_id = start_call(alice, bob)
    t0 = time.monotonic()
    proc = n1.terminate()
    alice.expect_close(1001, timeout=10)
    closed = time.monotonic()
    assert proc.wait(10) in (0, -signal.SIGTERM)
    # n1 is gone: someone else has to end the call once alice's grace is over.
    body = bob.expect_notice("call-hangup", timeout=grace + 3 * hb + 4)
    now = time.monotonic()
    print(f"peer-disconnected {now - t0:.2f}s after SIGTERM, {now - closed:.2f}s after alice's socket closed")
    assert body["callId"] == call_id and body["reason"] == "peer-disconnected", body
    assert now - closed >= grace - 0.1, "the call ended before alice's reconnect grace was over"
    rec = wait_final_record(nodes, call_id, 3)
    assert rec.get("end_reason") == "peer-disconnected", rec
    carol = join(n2)
    again = start_call(bob, carol)
    hang_up(carol, bob, again)


def test_reachable_from_another_node_right_after_the_101(cluster_factory, join, connect, redis_server):
    """PROTOCOL.md section 9: the 101 goes out once Redis has the user's presence, so a message from
    another node sent the moment the client sees the 101 is delivered, not answered `offline`."""
    n1, n2 = cluster_factory(2, SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND="1000")
    alice = join(n1, unique_user("alice"))
    for i in range(100):
        bob = connect(n2, unique_user("new"), sync=False)
        alice.send(to=bob.user, content=f"hello {i}")
        got = bob.recv()
        assert got.content == f"hello {i}" and got.sender == alice.user, got
        bob.close()
    alice.expect_no_message(0.3)  # no `offline` for any of them
