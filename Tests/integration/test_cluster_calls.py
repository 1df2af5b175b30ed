"""Calls and messages between users on different nodes of one cluster (PROTOCOL.md §3-6).

Every test starts its own nodes (`cluster_factory`) on the module's redis-server, which is flushed
first. Users are connected with `join`, which waits until `webrtc:presence` shows them on their node.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from cluster import (
    ANSWER,
    OFFER,
    PRESENCE,
    call_key,
    candidate,
    final_record,
    hang_up,
    invite,
    presence_api,
    start_call,
    user_call_key,
    wait_call_state_released,
    wait_final_record,
)
from switchboard_client import DIRECT, FILE, IMAGE, SIGNAL, TEXT, VOICE, now_ms, unique_user

pytestmark = pytest.mark.cluster


def parse_utc(value: str) -> datetime:
    assert isinstance(value, str), f"expected an ISO-8601 time string, got {value!r}"
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert dt.utcoffset() == timedelta(0), f"time is not UTC: {value!r}"
    return dt


def test_call_across_nodes_with_every_signal(cluster_factory, join, redis_server):
    nodes = cluster_factory(2)
    n1, n2 = nodes
    alice = join(n1, unique_user("alice"), name="Alice")
    bob = join(n2, unique_user("bob"), name="Bob")
    started = datetime.now(timezone.utc)

    # invite (no callId: the server makes one) → the callee on n2 gets it, stamped; the caller rings.
    alice.send_signal(bob.user, "call-invite", callType="video", appVersion="9.9")
    inv = bob.expect_signal("call-invite")
    assert inv.sender == alice.user and inv.fromUsername == "Alice" and inv.to == bob.user, inv
    assert inv.json["from"] == alice.user and inv.json["fromName"] == "Alice", inv
    assert inv.json["callType"] == "video" and inv.json["appVersion"] == "9.9", inv
    call_id = inv.json.get("callId")
    assert isinstance(call_id, str) and call_id, f"relayed invite has no callId: {inv!r}"
    ringing = alice.expect_notice("call-ringing")
    assert ringing["callId"] == call_id and ringing["to"] == bob.user, ringing
    # The call is shared state in Redis, seen by both nodes.
    assert redis_server.cli("GET", user_call_key(alice.user)) == call_id
    assert redis_server.cli("GET", user_call_key(bob.user)) == call_id
    assert redis_server.cli("EXISTS", call_key(call_id)) == 1, f"no {call_key(call_id)} hash"
    wait_final_record(nodes, call_id, 0)

    # accept (n2) → relayed to the caller on n1.
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    acc = alice.expect_signal("call-accept")
    assert acc.json["callId"] == call_id and acc.sender == bob.user and acc.json["fromName"] == "Bob", acc
    wait_final_record(nodes, call_id, 1)

    # offer / answer / ICE both ways, in order, unknown fields kept.
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER, x_trace="t-1")
    off = bob.expect_signal("offer")
    assert off.json["offer"] == OFFER and off.json["x_trace"] == "t-1" and off.sender == alice.user, off
    bob.send_signal(alice.user, "answer", callId=call_id, answer=ANSWER, x_trace="t-2")
    ans = alice.expect_signal("answer")
    assert ans.json["answer"] == ANSWER and ans.json["x_trace"] == "t-2" and ans.sender == bob.user, ans
    for i in range(5):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i), seq=i)
        bob.send_signal(alice.user, "ice-candidate", callId=call_id, candidate=candidate(10 + i), seq=i)
    for i in range(5):
        got_b = bob.expect_signal("ice-candidate")
        assert got_b.json["candidate"] == candidate(i) and got_b.json["seq"] == i, got_b
        got_a = alice.expect_signal("ice-candidate")
        assert got_a.json["candidate"] == candidate(10 + i) and got_a.json["seq"] == i, got_a

    # hangup (n1) → relayed to n2; the final record is status 3 with times and duration.
    hang_up(alice, bob, call_id)
    rec = wait_final_record(nodes, call_id, 3)
    finished = datetime.now(timezone.utc)
    assert rec["caller_id"] == alice.user and rec["callee_id"] == bob.user, rec
    assert rec["call_type"] == 2, rec
    start, end = parse_utc(rec["start_time"]), parse_utc(rec["end_time"])
    slack = timedelta(seconds=2)
    assert started - slack <= start <= end <= finished + slack, rec
    assert isinstance(rec["duration"], int) and 0 <= rec["duration"] <= (finished - started).total_seconds() + 2, rec

    # The call is over everywhere: its signals match no call on either node, both users are free.
    wait_call_state_released(redis_server, alice.user, bob.user)
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    alice.expect_error("no-call")
    bob.send_signal(alice.user, "ice-candidate", callId=call_id, candidate=candidate(1))
    bob.expect_error("no-call")
    second = start_call(bob, alice)  # the other way round: n2 calls n1
    assert second != call_id
    hang_up(alice, bob, second)
    wait_final_record(nodes, second, 3)
    assert final_record(nodes, call_id)["status"] == 3, "the first call's record changed"


def test_presence_is_cluster_wide(cluster_factory, join, connect, redis_server):
    n1, n2 = cluster_factory(2)
    alice = join(n1, unique_user("alice"))
    bob = join(n2, unique_user("bob"))
    assert redis_server.cli("HGET", PRESENCE, alice.user) == "n1"
    assert redis_server.cli("HGET", PRESENCE, bob.user) == "n2"
    assert redis_server.cli("SISMEMBER", "webrtc:node:n1:users", alice.user) == 1
    assert redis_server.cli("SISMEMBER", "webrtc:node:n2:users", bob.user) == 1
    # Each node answers for users on the other node.
    assert presence_api(n2, alice.user) == {"user": alice.user, "online": True, "node": "n1"}
    assert presence_api(n1, bob.user) == {"user": bob.user, "online": True, "node": "n2"}
    assert presence_api(n1, alice.user)["node"] == "n1"
    ghost = unique_user("ghost")
    for n in (n1, n2):
        body = presence_api(n, ghost)
        assert body["online"] is False and body.get("node") in (None, ""), body

    # Leaving: presence goes away cluster-wide.
    bob.close()
    redis_server.wait_presence(bob.user, None)
    assert redis_server.cli("SISMEMBER", "webrtc:node:n2:users", bob.user) == 0
    body = presence_api(n1, bob.user)
    assert body["online"] is False and body.get("node") in (None, ""), body
    assert presence_api(n2, alice.user)["online"] is True


def test_invite_to_a_user_connected_nowhere_is_offline(cluster_factory, join):
    nodes = cluster_factory(2)
    n1, n2 = nodes
    alice = join(n1)
    ghost = unique_user("ghost")
    call_id = f"offline-{unique_user('c')}"
    alice.send_signal(ghost, "call-invite", callType="audio", callId=call_id)
    body = alice.expect_notice("call-failed")
    assert body["reason"] == "offline" and body["message"] == "用户离线" and body["to"] == ghost, body
    assert body.get("callId") in (call_id, None), body
    row = final_record(nodes, call_id)
    assert row is None or row["status"] == 5, row

    # A user who was on n2 and left is offline for n1 too.
    carol = join(n2)
    carol.close()
    n1.redis.wait_presence(carol.user, None)
    alice.send_signal(carol.user, "call-invite", callType="video")
    body = alice.expect_notice("call-failed")
    assert body["reason"] == "offline" and body["message"] == "用户离线" and body["to"] == carol.user, body

    # The failed invites left alice free: she can call someone on n2.
    dave = join(n2)
    call = start_call(alice, dave)
    hang_up(dave, alice, call)


def test_busy_across_nodes(cluster_factory, join):
    nodes = cluster_factory(2)
    n1, n2 = nodes
    bob, dave = join(n2), join(n2)  # a call local to n2
    carol = join(n1)
    call_id = invite(dave, bob)  # ringing counts as in a call
    for target in (bob, dave):
        carol.send_signal(target.user, "call-invite", callType="audio")
        body = carol.expect_notice("call-failed")
        assert body["reason"] == "busy" and body["to"] == target.user, body
    # Neither of them saw carol's invites: the next thing each gets is carol's marker.
    for target in (bob, dave):
        carol.send(to=target.user, content="marker")
        got = target.recv()
        assert got.content == "marker", f"{target.user} got {got!r} instead of the marker"
    bob.send_signal(dave.user, "call-accept", callId=call_id)
    dave.expect_signal("call-accept")
    carol.send_signal(bob.user, "call-invite", callType="audio")
    assert carol.expect_notice("call-failed")["reason"] == "busy"
    # A caller who is in a call is busy too, wherever the callee is.
    bob.send_signal(carol.user, "call-invite", callType="audio")
    body = bob.expect_notice("call-failed")
    assert body["reason"] == "busy", body
    carol.send(to=bob.user, content="marker-2")
    assert bob.recv().content == "marker-2"
    bob.send(to=carol.user, content="marker-3")
    assert carol.recv().content == "marker-3", "carol must not get bob's refused invite"
    # The call goes on undisturbed.
    dave.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    assert bob.expect_signal("offer").json["callId"] == call_id
    hang_up(bob, dave, call_id)
    wait_final_record(nodes, call_id, 3)


CONTENT_CASES = {
    TEXT: dict(content="plain text ✓ 你好", type="text"),
    FILE: dict(content="report.pdf", url="https://files.example/report.pdf", fileSuffix="pdf",
               file=bytes(range(256)) * 4),
    IMAGE: dict(content="", url="https://files.example/cat.png", fileSuffix="png",
                file=b"\x89PNG\r\n\x1a\n" + bytes(500)),
    VOICE: dict(content="", url="https://files.example/v.ogg", fileSuffix="ogg", duration=17,
                file=b"OggS" + bytes(range(200))),
}


def test_messages_across_nodes(cluster_factory, join):
    n1, n2 = cluster_factory(2, SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="100000")
    alice = join(n1, unique_user("alice"), name="Alice")
    bob = join(n2, unique_user("bob"), name="Bob")

    before = now_ms()
    alice.send(to=bob.user, content="hi bob", timestamp=0, from_="mallory", fromUsername="Mallory")
    got = bob.recv()
    after = now_ms()
    assert got.content == "hi bob" and got.contentType == TEXT and got.messageType == DIRECT, got
    assert got.sender == alice.user and got.fromUsername == "Alice" and got.to == bob.user, got
    assert before - 1000 <= got.timestamp <= after + 1000, (before, got.timestamp, after)

    for content_type, fields in CONTENT_CASES.items():
        fields = dict(fields, avatar="https://img.example/a.png", timestamp=1700000000000)
        bob.send(to=alice.user, contentType=content_type, **fields)
        got = alice.recv()
        assert got.contentType == content_type and got.sender == bob.user and got.fromUsername == "Bob"
        for key, value in fields.items():
            assert getattr(got, key) == value, f"field {key} changed between nodes"

    for i in range(50):
        alice.send(to=bob.user, content=f"m{i}")
    assert [bob.recv().content for _ in range(50)] == [f"m{i}" for i in range(50)]


def test_message_to_offline_user_across_cluster(cluster_factory, join):
    n1, n2 = cluster_factory(2)
    alice = join(n1)
    alice.send(to=unique_user("ghost"), content="anyone?")
    assert alice.expect_error("offline")["type"] == "error"
    bob = join(n2)
    alice.send(to=bob.user, content="hello")  # n1 now knows where bob is
    assert bob.recv().content == "hello"
    bob.close()
    n1.redis.wait_presence(bob.user, None)
    t = time.monotonic()
    alice.send(to=bob.user, content="still there?")
    alice.expect_error("offline")
    print(f"offline error {time.monotonic() - t:.2f}s after the message to a user who left n2")
    carol = join(n2)
    alice.send(to=carol.user, content="marker")
    assert carol.recv().content == "marker"


def test_thousand_ice_candidates_arrive_complete_and_in_order(cluster_factory, join):
    n1, n2 = cluster_factory(2, SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="100000")
    alice, bob = join(n1), join(n2)
    call_id = start_call(alice, bob, "video")
    count = 1000
    t0 = time.monotonic()
    for i in range(count):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i), seq=i)
    seqs = []
    for _ in range(count):
        msg = bob.recv(timeout=10)
        assert msg.contentType == SIGNAL and msg.signal_type == "ice-candidate", f"after {len(seqs)}: {msg!r}"
        assert msg.json["candidate"] == candidate(msg.json["seq"]), msg
        seqs.append(msg.json["seq"])
    elapsed = time.monotonic() - t0
    print(f"{count} ice-candidates n1→n2 in {elapsed:.2f}s")
    assert seqs == list(range(count)), f"first difference at {next(i for i, s in enumerate(seqs) if s != i)}"
    # The sender got no error for any of them (absence check: bounded, after all were delivered).
    alice.expect_no_message(within=0.3)
    hang_up(bob, alice, call_id)


def publish_calls(redis_server) -> int:
    """How many PUBLISH commands the redis-server has run."""
    stats = redis_server.cli("INFO", "commandstats")
    return int(stats.split("cmdstat_publish:calls=")[1].split(",")[0]) if "cmdstat_publish:" in stats else 0


def test_a_burst_to_another_node_goes_in_one_publish_per_window(cluster_factory, join, redis_server):
    """`redis.publish_window`: what follows a PUBLISH to a node within the window waits for its end
    and goes with the rest, in one PUBLISH, complete and in order."""
    window = 0.1
    n1, n2 = cluster_factory(2, SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="100000", SWITCHBOARD_REDIS_PUBLISH_WINDOW="100ms")
    alice, bob = join(n1), join(n2)
    call_id = start_call(alice, bob, "video")
    before = publish_calls(redis_server)
    count = 25
    t0 = time.monotonic()
    for i in range(count):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i), seq=i)
        time.sleep(0.004)  # paced, as a call's candidates are: with no window, 25 PUBLISHes
    sending = time.monotonic() - t0
    seqs = [bob.recv(timeout=10).json["seq"] for _ in range(count)]
    assert seqs == list(range(count))
    # At most one PUBLISH at once (none when the call's set-up published within the window) and one at
    # the end of each window the burst was sent in, however many messages.
    publishes = publish_calls(redis_server) - before
    print(f"{count} candidates sent in {sending * 1000:.0f} ms went in {publishes} PUBLISHes")
    assert 1 <= publishes <= 2 + int(sending / window)
    hang_up(bob, alice, call_id)


def test_ring_timeout_across_nodes(cluster_factory, join):
    nodes = cluster_factory(2, SWITCHBOARD_CALLS_RING_TIMEOUT="1s")
    n1, n2 = nodes
    alice, bob = join(n1), join(n2)
    call_id = invite(alice, bob)
    for party in (alice, bob):
        body = party.expect_notice("call-hangup", timeout=10)
        assert body["callId"] == call_id and body["reason"] == "timeout", body
    # Exactly one timeout each (two nodes must not both time the call out). Bounded absence check.
    alice.expect_no_message(within=0.5)
    bob.expect_no_message(within=0.1)
    rec = wait_final_record(nodes, call_id, 4)
    assert rec["caller_id"] == alice.user and rec["callee_id"] == bob.user, rec
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    bob.expect_error("no-call")
    # Both are free again (a new call is answered before its own 1 s ring timeout).
    wait_call_state_released(n1.redis, alice.user, bob.user)
    again = start_call(bob, alice)
    hang_up(alice, bob, again)


def test_reconnect_on_another_node_within_grace_keeps_the_call(cluster_factory, join):
    grace = 2.0
    nodes = cluster_factory(3, SWITCHBOARD_CALLS_RECONNECT_GRACE=f"{grace:g}s")
    n1, n2, n3 = nodes
    alice = join(n1, unique_user("alice"), name="Alice")
    bob = join(n2, unique_user("bob"), name="Bob")
    call_id = start_call(alice, bob, "video")
    dropped = time.monotonic()
    bob.drop()
    n2.redis.wait_presence(bob.user, None)  # n2 noticed: a reconnect, not a replacement
    bob2 = join(n3, bob.user, name="Bob")  # back within the grace, on a third node
    assert time.monotonic() - dropped < grace, "reconnecting took longer than the grace period"
    # PROTOCOL.md §8: bob is told the call goes on, alice that he is back.
    assert bob2.expect_notice("call-resumed") == {"type": "call-resumed", "callId": call_id, "peer": alice.user,
                                                  "state": "active"}
    assert alice.expect_notice("peer-reconnected") == {"type": "peer-reconnected", "callId": call_id}

    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    got = bob2.expect_signal("offer")
    assert got.json["callId"] == call_id and got.sender == alice.user, got
    bob2.send_signal(alice.user, "answer", callId=call_id, answer=ANSWER)
    assert alice.expect_signal("answer").json["answer"] == ANSWER
    # No hangup once the grace period is over (absence: bounded wait of grace + 1 s)…
    alice.expect_no_message(within=grace + 1.0)
    bob2.expect_no_message(within=0.1)
    # …and n2 (where the dropped socket was) did not take bob's presence away from n3.
    assert n1.redis.presence_of(bob.user) == "n3"
    bob2.send_signal(alice.user, "ice-candidate", callId=call_id, candidate=candidate(3))
    assert alice.expect_signal("ice-candidate").json["candidate"] == candidate(3)
    alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(4))
    assert bob2.expect_signal("ice-candidate").json["candidate"] == candidate(4)
    hang_up(bob2, alice, call_id)
    rec = wait_final_record(nodes, call_id, 3)
    assert grace <= rec["duration"] <= 30, rec


@pytest.mark.parametrize("who", ["callee", "caller"])
def test_party_that_does_not_return_ends_the_call(cluster_factory, join, who):
    grace = 1.0
    nodes = cluster_factory(2, SWITCHBOARD_CALLS_RECONNECT_GRACE=f"{grace:g}s")
    n1, n2 = nodes
    alice, bob = join(n1), join(n2)
    call_id = start_call(alice, bob)
    gone, stays = (bob, alice) if who == "callee" else (alice, bob)
    dropped = time.monotonic()
    gone.drop()
    body = stays.expect_notice("call-hangup", timeout=grace + 8)
    elapsed = time.monotonic() - dropped
    print(f"{who} dropped: peer-disconnected after {elapsed:.2f}s (grace {grace}s)")
    assert body["callId"] == call_id and body["reason"] == "peer-disconnected", body
    assert elapsed >= grace - 0.1, f"the call ended {elapsed:.2f}s after the drop, before the {grace}s grace"
    rec = wait_final_record(nodes, call_id, 3)
    assert rec.get("end_reason") == "peer-disconnected", rec
    # The one who stayed is free for a new call across nodes.
    wait_call_state_released(n1.redis, alice.user, bob.user)
    carol = join(n2 if stays is alice else n1)
    again = start_call(stays, carol)
    hang_up(carol, stays, again)
