"""Direct messages, stamping, heartbeats and notice shapes (PROTOCOL.md sections 2-4)."""

from __future__ import annotations

import json

import pytest

from switchboard_client import (
    DIRECT,
    FILE,
    GROUP,
    IMAGE,
    SIGNAL,
    TEXT,
    VIDEO,
    VOICE,
    assert_notice,
    now_ms,
    unique_user,
)


def test_relayed_message_is_stamped_with_sender_identity_and_server_time(pair):
    alice, bob = pair
    before = now_ms()
    alice.send(to=bob.user, content="hi bob", timestamp=0)
    got = bob.recv()
    after = now_ms()
    assert got.sender == alice.user
    assert got.fromUsername == "Alice"
    assert got.to == bob.user
    assert got.content == "hi bob"
    assert got.contentType == TEXT and got.messageType == DIRECT
    assert before - 1000 <= got.timestamp <= after + 1000, (before, got.timestamp, after)


def test_spoofed_sender_is_overwritten(pair):
    alice, bob = pair
    alice.send(to=bob.user, content="trust me", from_="mallory", fromUsername="Mallory")
    got = bob.recv()
    assert got.sender == alice.user
    assert got.fromUsername == "Alice"


def test_client_timestamp_is_kept(pair):
    alice, bob = pair
    alice.send(to=bob.user, content="dated", timestamp=1234567890123)
    assert bob.recv().timestamp == 1234567890123


def test_messages_arrive_in_the_order_sent(pair):
    alice, bob = pair
    for i in range(10):
        alice.send(to=bob.user, content=f"m{i}")
    assert [bob.recv().content for _ in range(10)] == [f"m{i}" for i in range(10)]


def test_messages_flow_both_ways(pair):
    alice, bob = pair
    alice.send(to=bob.user, content="ping?")
    assert bob.recv().content == "ping?"
    bob.send(to=alice.user, content="pong!")
    got = alice.recv()
    assert got.content == "pong!" and got.sender == bob.user and got.fromUsername == "Bob"


CONTENT_CASES = {
    TEXT: dict(content="plain text ✓ 你好", type="text"),
    FILE: dict(content="report.pdf", url="https://files.example/report.pdf", fileSuffix="pdf",
               file=bytes(range(256)) * 4),
    IMAGE: dict(content="", url="https://files.example/cat.png", fileSuffix="png",
                file=b"\x89PNG\r\n\x1a\n" + bytes(500)),
    VOICE: dict(content="", url="https://files.example/v.ogg", fileSuffix="ogg", duration=17,
                file=b"OggS" + bytes(range(200))),
    VIDEO: dict(content="clip", url="https://files.example/v.mp4", fileSuffix="mp4", duration=95,
                file=b"\x00\x00\x00\x18ftypmp42"),
}


@pytest.mark.parametrize("content_type", sorted(CONTENT_CASES))
def test_direct_message_is_relayed_as_it_is(pair, content_type):
    alice, bob = pair
    fields = dict(CONTENT_CASES[content_type], avatar="https://img.example/a.png", timestamp=1700000000000)
    alice.send(to=bob.user, contentType=content_type, messageType=DIRECT, **fields)
    got = bob.recv()
    assert got.contentType == content_type
    assert got.messageType == DIRECT
    assert got.sender == alice.user and got.to == bob.user
    for key, value in fields.items():
        assert getattr(got, key) == value, f"field {key} changed in transit"


def test_message_to_offline_user_gets_offline_error(pair):
    alice, bob = pair
    ghost = unique_user("ghost")
    alice.send(to=ghost, content="anyone?")
    body = alice.expect_error("offline")
    assert body["type"] == "error"
    # Bob got nothing: the next thing he receives is alice's next message to him.
    alice.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker"


def test_group_message_is_unsupported(pair):
    alice, bob = pair
    alice.send(to=bob.user, content="to the group", messageType=GROUP)
    alice.expect_error("unsupported")
    alice.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker", "the group message must not be relayed"


@pytest.mark.parametrize("hb_type", ["heatbeat", "heartbeat"])
@pytest.mark.parametrize("addressed", [False, True], ids=["no-to", "with-to"])
def test_heartbeat_is_answered_and_not_relayed(pair, hb_type, addressed):
    alice, bob = pair
    fields = dict(type=hb_type, content="ping")
    if addressed:
        fields["to"] = bob.user
    alice.send(**fields)
    reply = alice.recv()
    assert reply.type == hb_type
    assert reply.content == "pong"
    alice.send(to=bob.user, content="marker")
    got = bob.recv()
    assert got.content == "marker", f"the heartbeat must not be relayed, bob got {got!r}"


def test_signal_json_is_stamped(pair):
    alice, bob = pair
    alice.send_signal(bob.user, "call-invite", callType="video", **{"from": "mallory", "fromName": "Mallory"})
    invite = bob.expect_signal("call-invite")
    assert invite.sender == alice.user
    assert invite.json["from"] == alice.user
    assert invite.json["fromName"] == "Alice"
    alice.expect_notice("call-ringing")
    alice.send_signal(bob.user, "call-hangup", callId=invite.json["callId"])
    bob.expect_signal("call-hangup")


def test_every_notice_has_the_notice_shape(node_factory, connect):
    """call-ringing, call-failed, call-hangup, error and session-replaced: contentType 6,
    messageType 1, from "" and to the recipient (PROTOCOL.md section 4)."""
    node = node_factory(SWITCHBOARD_CALLS_RING_TIMEOUT="1s")
    alice = connect(node, unique_user("alice"), name="Alice")
    bob = connect(node, unique_user("bob"), name="Bob")
    seen: dict[str, dict] = {}

    # error
    alice.send(to=unique_user("ghost"), content="x")
    seen["error"] = assert_notice(alice.recv(), alice.user, "error")
    assert set(seen["error"]) >= {"type", "reason", "message"}

    # call-failed
    alice.send_signal(alice.user, "call-invite", callType="audio")
    seen["call-failed"] = assert_notice(alice.recv(), alice.user, "call-failed")
    assert set(seen["call-failed"]) >= {"type", "to", "reason", "message"}

    # call-ringing, then call-hangup (timeout) to both parties
    alice.send_signal(bob.user, "call-invite", callType="audio")
    seen["call-ringing"] = assert_notice(alice.recv(), alice.user, "call-ringing")
    assert set(seen["call-ringing"]) >= {"type", "callId", "to"}
    bob.expect_signal("call-invite")
    seen["call-hangup"] = assert_notice(alice.recv(timeout=10), alice.user, "call-hangup")
    assert set(seen["call-hangup"]) >= {"type", "callId", "reason"}
    assert_notice(bob.recv(timeout=10), bob.user, "call-hangup")

    # session-replaced
    connect(node, bob.user, name="Bob")
    seen["session-replaced"] = assert_notice(bob.recv(), bob.user, "session-replaced")
    assert seen["session-replaced"] == {"type": "session-replaced"}

    assert set(seen) == {"error", "call-failed", "call-ringing", "call-hangup", "session-replaced"}


def test_signal_content_unknown_fields_preserved_through_json_round_trip(pair):
    """Unicode and nested unknown fields in a signal survive the server's JSON handling."""
    alice, bob = pair
    extra = {"meta": {"nested": [1, 2.5, None, True, "✓"]}, "note": "你好"}
    alice.send_signal(bob.user, "call-invite", callType="audio", callId=f"c-{unique_user('x')}", **extra)
    invite = bob.expect_signal("call-invite")
    assert invite.json["meta"] == extra["meta"]
    assert invite.json["note"] == extra["note"]
    assert json.loads(invite.content)["callType"] == "audio"
    assert invite.contentType == SIGNAL
    alice.expect_notice("call-ringing")
    alice.send_signal(bob.user, "call-hangup")
    bob.expect_signal("call-hangup")
