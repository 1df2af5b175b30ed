"""Reconnecting during a call (PROTOCOL.md §8): a party drops, the other keeps sending signals; the
party comes back within `calls.reconnect_grace`, on the other node of a cluster, and receives
`call-resumed` then every kept signal in order; the other party gets `peer-reconnected`. Beyond what
is kept (256 signals, 1 MiB per absent party) the oldest gives way and its sender is told `offline`
with the call's id, counted in /metrics; what a flood at an absent party makes a node and Redis hold
stays capped.
"""

from __future__ import annotations

import pytest

from cluster import RssSampler, gather, rss_bytes, start_call
from switchboard_client import http_get, metric, unique_user, wait_until

LIMIT = 256  # signals kept per absent party (KeptSignalLimits.standard)
KEPT_BYTES = 1 << 20
DISPLACED = "switchboard_kept_signals_displaced_total"
FLOOD_ENV = dict(SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="1000000", SWITCHBOARD_LIMITS_MESSAGES_BURST="1000000",
                 SWITCHBOARD_CALLS_RECONNECT_GRACE="60s")


def candidate(i: int) -> dict:
    return {"candidate": f"candidate:{i} 1 udp 2122260223 10.0.0.1 {50000 + i} typ host", "sdpMid": "0",
            "sdpMLineIndex": 0}


def number(msg) -> int:
    return int(msg.json["candidate"]["candidate"].split()[0].removeprefix("candidate:"))


def drop_and_wait(client, redis=None) -> None:
    """Drops `client`'s connection and waits until its node has let go of it."""
    client.drop()
    if redis is not None:
        redis.wait_presence(client.user, None)


def expect_resumed(client, call_id: str, peer: str, numbers: list[int]) -> None:
    """The first frames are `call-resumed`, then exactly the candidates `numbers`, in order."""
    resumed = client.recv()
    assert resumed.sender == "" and resumed.json == {"type": "call-resumed", "callId": call_id, "peer": peer,
                                                     "state": "active"}, resumed
    got = [client.recv() for _ in numbers]
    assert all(m.signal_type == "ice-candidate" and m.sender == peer and m.json["callId"] == call_id for m in got)
    assert [number(m) for m in got] == numbers
    client.expect_no_message()


def test_one_node_a_dropped_party_gets_what_it_missed(node, connect):
    alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
    call_id = start_call(alice, bob)
    bob.drop()
    wait_until(lambda: node_has_let_go(node, bob.user), 5, f"{bob.user} offline")
    for i in range(20):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i))
    alice.expect_no_message()  # kept, not answered offline
    bob2 = connect(node, bob.user)
    expect_resumed(bob2, call_id, alice.user, list(range(20)))
    assert alice.expect_notice("peer-reconnected") == {"type": "peer-reconnected", "callId": call_id}


def node_has_let_go(node, user: str) -> bool:
    return http_get(node.http_url, f"/api/presence/{user}", token=_token(node, user)).json()["online"] is False


def _token(node, user: str) -> str:
    from switchboard_client import make_token
    return make_token(user, secret=node.secret)


@pytest.mark.cluster
def test_resumed_on_the_other_node_with_every_candidate_in_order(cluster_factory, join, redis_server):
    n1, n2 = cluster_factory(2)
    alice, bob = join(n1, unique_user("alice")), join(n2, unique_user("bob"))
    call_id = start_call(alice, bob)
    drop_and_wait(bob, redis_server)
    for i in range(100):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i))
    alice.expect_no_message()
    assert wait_until(lambda: redis_server.cli("LLEN", f"webrtc:kept:{bob.user}") == 100, 5, "100 kept in Redis")
    # Both keys expire with the grace (10 s by default), counted from when bob left.
    for key in (f"webrtc:away:{bob.user}", f"webrtc:kept:{bob.user}"):
        assert 0 < redis_server.cli("PTTL", key) <= 10_000, key
    bob2 = join(n1, bob.user)  # the other node
    expect_resumed(bob2, call_id, alice.user, list(range(100)))
    assert alice.expect_notice("peer-reconnected") == {"type": "peer-reconnected", "callId": call_id}
    assert redis_server.cli("EXISTS", f"webrtc:kept:{bob.user}", f"webrtc:away:{bob.user}") == 0
    # The call goes on with the new session.
    alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(100))
    assert number(bob2.expect_signal("ice-candidate")) == 100


@pytest.mark.cluster
def test_overflow_is_reported_to_the_sender_and_counted(cluster_factory, join, redis_server):
    n1, n2 = cluster_factory(2)
    alice, bob = join(n1, unique_user("alice")), join(n2, unique_user("bob"))
    call_id = start_call(alice, bob)
    before = metric(n1, DISPLACED) + metric(n2, DISPLACED)
    drop_and_wait(bob, redis_server)
    sent = LIMIT + 44
    for i in range(sent):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i))
    got = gather([alice], lambda g: len(g[alice.user]) >= 44)[alice.user]
    assert len(got) == 44, got
    for msg in got:
        assert msg.sender == "" and msg.json["type"] == "error" and msg.json["reason"] == "offline", msg
        assert msg.json["callId"] == call_id, msg
    assert metric(n1, DISPLACED) + metric(n2, DISPLACED) - before == 44
    assert redis_server.cli("LLEN", f"webrtc:kept:{bob.user}") == LIMIT
    bob2 = join(n1, bob.user)
    expect_resumed(bob2, call_id, alice.user, list(range(44, sent)))


def flood(alice, bob_user: str, call_id: str, count: int, size: int) -> list:
    """Sends `count` offers of `size` bytes of SDP to the absent party; returns the notices alice got."""
    sdp = "v=0\r\n" + "a" * size
    notices = []
    for i in range(count):
        alice.send_signal(bob_user, "offer", callId=call_id, offer={"type": "offer", "sdp": sdp}, n=i)
        while (msg := alice.try_recv(0.001)) is not None:
            notices.append(msg)
    return notices


@pytest.mark.cluster
def test_a_flood_at_an_absent_party_is_capped_in_nodes_and_redis(cluster_factory, join, redis_server):
    n1, n2 = cluster_factory(2, **FLOOD_ENV)
    alice, bob = join(n1, unique_user("alice")), join(n2, unique_user("bob"))
    call_id = start_call(alice, bob)
    drop_and_wait(bob, redis_server)
    redis_before = int(redis_server.cli("INFO", "memory").split("used_memory:")[1].split()[0])
    rss_before = {n.node_id: rss_bytes(n.pid) for n in (n1, n2)}
    count, size = 120, 60_000  # ~7 MiB sent, ~1 MiB may be kept
    with RssSampler(n1.pid) as s1, RssSampler(n2.pid) as s2:
        notices = flood(alice, bob.user, call_id, count, size)
        notices += gather([alice], lambda g: len(notices) + len(g[alice.user]) >= count - 17, timeout=30)[alice.user]
    kept = redis_server.cli("LLEN", f"webrtc:kept:{bob.user}")
    kept_bytes = int(redis_server.cli("HGET", f"webrtc:away:{bob.user}", "bytes"))
    redis_after = int(redis_server.cli("INFO", "memory").split("used_memory:")[1].split()[0])
    growth = {n: (s.peak - rss_before[n]) / 2**20 for n, s in (("n1", s1), ("n2", s2))}
    print(f"flood of {count} x {size} B: kept {kept} ({kept_bytes} B); Redis used_memory "
          f"{redis_before / 2**20:.1f} -> {redis_after / 2**20:.1f} MiB; node RSS peak growth (MiB) {growth}")
    assert all(m.json["reason"] == "offline" and m.json["callId"] == call_id for m in notices)
    assert kept + len(notices) == count and kept <= KEPT_BYTES // size
    assert kept_bytes <= KEPT_BYTES
    assert redis_after - redis_before < 8 * 2**20, "Redis holds more than what is kept"
    assert max(growth.values()) < 48, f"a node grew with the flood: {growth}"


def test_a_flood_at_an_absent_party_is_capped_on_one_node(node_factory, connect):
    node = node_factory(**FLOOD_ENV)
    alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
    call_id = start_call(alice, bob)
    bob.drop()
    wait_until(lambda: node_has_let_go(node, bob.user), 5, f"{bob.user} offline")
    rss_before = rss_bytes(node.proc.pid)
    count, size = 400, 60_000
    with RssSampler(node.proc.pid) as sampler:
        notices = flood(alice, bob.user, call_id, count, size)
        notices += gather([alice], lambda g: len(notices) + len(g[alice.user]) >= count - 17, timeout=30)[alice.user]
    growth = (sampler.peak - rss_before) / 2**20
    print(f"one node, flood of {count} x {size} B: {len(notices)} gave way; RSS peak growth {growth:.1f} MiB")
    assert all(m.json["reason"] == "offline" and m.json["callId"] == call_id for m in notices)
    assert count - len(notices) <= KEPT_BYTES // size
    assert growth < 48, f"the node grew with the flood: {growth:.1f} MiB"
    bob2 = connect(node, bob.user)
    resumed = bob2.recv()
    assert resumed.json["type"] == "call-resumed"
    kept = [bob2.recv() for _ in range(count - len(notices))]
    assert [m.json["n"] for m in kept] == list(range(len(notices), count))
