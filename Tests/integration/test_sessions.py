"""One live session per user, and calls across a dropped socket (PROTOCOL.md sections 2, 3)."""

from __future__ import annotations

import signal

from switchboard_client import http_get, make_token, unique_user, wait_until

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\n"}


def start_call(alice, bob) -> str:
    alice.send_signal(bob.user, "call-invite", callType="audio")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    return call_id


def test_second_connection_replaces_the_first(node, connect):
    user = unique_user("alice")
    first = connect(node, user, name="Alice")
    bob = connect(node)
    second = connect(node, user, name="Alice", via="header")
    body = first.expect_notice("session-replaced")
    assert body == {"type": "session-replaced"}
    first.expect_close(4001)
    # The new session is the live one: messages for the user go there.
    bob.send(to=user, content="to the new session")
    got = second.recv()
    assert got.content == "to the new session" and got.sender == bob.user
    second.send(to=bob.user, content="from the new session")
    assert bob.recv().sender == user


def test_replacement_chain(node, connect):
    """Three connections in a row: each replaced one is told and closed; the last one works."""
    user = unique_user("alice")
    sessions = [connect(node, user)]
    for _ in range(2):
        sessions.append(connect(node, user))
        sessions[-2].expect_notice("session-replaced")
        sessions[-2].expect_close(4001)
    sessions[-1].heartbeat()
    assert sessions[-1].is_open()


def test_replaced_session_does_not_end_the_users_presence(node, connect):
    user = unique_user("alice")
    first = connect(node, user)
    connect(node, user)
    first.expect_close(4001)
    resp = http_get(node.http_url, f"/api/presence/{user}", token=make_token(unique_user("obs")))
    assert resp.status == 200
    assert resp.json()["online"] is True, "closing the replaced session must not mark the user offline"


def test_peer_dropped_without_reconnect_ends_the_call(node_factory, connect):
    node = node_factory(SWITCHBOARD_CALLS_RECONNECT_GRACE="1s")
    alice, bob = connect(node, name="Alice"), connect(node, name="Bob")
    call_id = start_call(alice, bob)
    bob.drop()
    body = alice.expect_notice("call-hangup", timeout=10)
    assert body["callId"] == call_id
    assert body["reason"] == "peer-disconnected"
    # The call is over: alice is free for another call.
    carol = connect(node)
    start_call(alice, carol)


def test_peer_closed_cleanly_without_reconnect_ends_the_call(node_factory, connect):
    node = node_factory(SWITCHBOARD_CALLS_RECONNECT_GRACE="1s")
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    bob.close()
    body = alice.expect_notice("call-hangup", timeout=10)
    assert body["callId"] == call_id and body["reason"] == "peer-disconnected"


def test_peer_reconnects_within_grace_and_the_call_goes_on(node_factory, connect):
    grace = 2.0
    node = node_factory(SWITCHBOARD_CALLS_RECONNECT_GRACE=f"{grace:g}s")
    alice, bob = connect(node, name="Alice"), connect(node, name="Bob")
    call_id = start_call(alice, bob)
    bob.drop()
    presence = lambda: http_get(node.http_url, f"/api/presence/{bob.user}", token=make_token(alice.user)).json()
    wait_until(lambda: not presence()["online"], 5, "the node to notice the drop")
    bob2 = connect(node, bob.user, name="Bob")
    # Back within the grace (PROTOCOL.md §8): bob is told the call goes on, alice that he is back.
    assert bob2.expect_notice("call-resumed")["callId"] == call_id
    assert alice.expect_notice("peer-reconnected")["callId"] == call_id
    # Signals still relay both ways over the new socket.
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    assert bob2.expect_signal("offer").json["callId"] == call_id
    bob2.send_signal(alice.user, "answer", callId=call_id, answer=ANSWER)
    assert alice.expect_signal("answer").json["answer"] == ANSWER
    # And no hangup arrives once the grace period has passed (absence: bounded wait).
    alice.expect_no_message(within=grace + 1.0)
    bob2.send_signal(alice.user, "ice-candidate", callId=call_id,
                     candidate={"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0",
                                "sdpMLineIndex": 0})
    assert alice.expect_signal("ice-candidate").json["callId"] == call_id
    alice.send_signal(bob.user, "call-hangup", callId=call_id)
    bob2.expect_signal("call-hangup")
    rec = node.wait_for_call_record(alice.user, call_id, 3)
    # The call lasted past the grace period (over 3 s): its duration says so.
    assert grace <= rec["duration"] <= 30, rec


def test_sigterm_closes_sockets_with_1001_and_exits(node_factory, connect):
    node = node_factory()
    alice, bob = connect(node), connect(node)
    proc = node.proc
    proc.send_signal(signal.SIGTERM)
    alice.expect_close(1001)
    bob.expect_close(1001)
    assert proc.wait(10) in (0, -signal.SIGTERM)
    node.proc = None  # stopped here: nothing left for teardown to stop
