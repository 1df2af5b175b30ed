"""Bad input is answered, never fatal (PROTOCOL.md sections 1, 3, 4).

Every case: the offender gets an `error` notice with the documented reason, its connection stays
open and usable, its call peer receives nothing, and another pair on the same node still talks.
"""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from chatmessage_pb2 import ChatMessage
from switchboard_client import SIGNAL, unique_user

MAX_BYTES = 65536
NODE_ENV = {"SWITCHBOARD_WEBSOCKET_MAX_MESSAGE_BYTES": str(MAX_BYTES)}

OFFER = {"type": "offer", "sdp": "v=0\r\n"}


@pytest.fixture
def call(node, connect):
    """alice and bob in an active call, so only validation can refuse alice's signals."""
    alice = connect(node, unique_user("alice"), name="Alice")
    bob = connect(node, unique_user("bob"), name="Bob")
    alice.send_signal(bob.user, "call-invite", callType="audio")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    return alice, bob, call_id


def others_still_served(node, connect):
    carol, dave = connect(node), connect(node)
    carol.send(to=dave.user, content="business as usual")
    got = dave.recv()
    assert got.content == "business as usual" and got.sender == carol.user
    dave.send(to=carol.user, content="indeed")
    assert carol.recv().content == "indeed"


def still_usable(alice, bob, call_id):
    """alice's connection still works, bob got nothing from the bad input, the call goes on."""
    alice.heartbeat()
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    got = bob.expect_signal("offer")
    assert got.json["callId"] == call_id, f"bob's next message should be the good offer: {got!r}"


def _truncated() -> bytes:
    data = ChatMessage(to="someone", content="hello world, this is long").SerializeToString()
    return data[:-5]


FRAMES = {
    "garbage-bytes": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    "truncated-protobuf": _truncated(),
    "bad-length-prefix": b"\x22\x7f\x41",  # field 4 (to): length 127, 1 byte follows
}


@pytest.mark.parametrize("kind", list(FRAMES))
def test_undecodable_binary_frame(node, connect, call, kind):
    alice, bob, call_id = call
    alice.send_bytes(FRAMES[kind])
    alice.expect_error("invalid-message")
    still_usable(alice, bob, call_id)
    others_still_served(node, connect)


def test_text_frame(node, connect, call):
    alice, bob, call_id = call
    alice.send_text(json.dumps({"to": bob.user, "content": "hi", "contentType": 1}))
    alice.expect_error("invalid-message")
    still_usable(alice, bob, call_id)
    others_still_served(node, connect)


def test_message_without_recipient(node, connect, call):
    alice, bob, call_id = call
    alice.send(content="to nobody")
    alice.expect_error("invalid-message")
    still_usable(alice, bob, call_id)
    others_still_served(node, connect)


def test_empty_binary_frame(node, connect, call):
    """An empty frame decodes to an all-default ChatMessage, which has no recipient."""
    alice, bob, call_id = call
    alice.send_bytes(b"")
    alice.expect_error("invalid-message")
    still_usable(alice, bob, call_id)


def test_signal_without_recipient(node, connect, call):
    alice, bob, call_id = call
    alice.send(contentType=SIGNAL, content=json.dumps({"type": "offer", "callId": call_id, "offer": OFFER}))
    alice.expect_error({"invalid-message", "invalid-signal"})
    still_usable(alice, bob, call_id)
    others_still_served(node, connect)


# content of a signal → expected reason
SIGNAL_CONTENT = {
    "invalid-json": ("{not json", "invalid-signal"),
    "empty-content": ("", "invalid-signal"),
    "json-array": ("[1, 2, 3]", "invalid-signal"),
    "json-string": ('"call-invite"', "invalid-signal"),
    "json-number": ("42", "invalid-signal"),
    "missing-type": (json.dumps({"callId": "x", "offer": OFFER}), "invalid-signal"),
    "type-not-string": (json.dumps({"type": 7}), "invalid-signal"),
    "unknown-type": (json.dumps({"type": "call-teleport"}), "unknown-signal"),
    "offer-without-offer": (json.dumps({"type": "offer"}), "invalid-signal"),
    "offer-not-object": (json.dumps({"type": "offer", "offer": "v=0"}), "invalid-signal"),
    "answer-without-answer": (json.dumps({"type": "answer"}), "invalid-signal"),
    "ice-without-candidate": (json.dumps({"type": "ice-candidate"}), "invalid-signal"),
    "callid-not-string": (json.dumps({"type": "offer", "callId": 12, "offer": OFFER}), "invalid-signal"),
}


@pytest.mark.parametrize("kind", list(SIGNAL_CONTENT))
def test_bad_signal_content(node, connect, call, kind):
    alice, bob, call_id = call
    content, reason = SIGNAL_CONTENT[kind]
    alice.send(to=bob.user, contentType=SIGNAL, content=content)
    alice.expect_error(reason)
    still_usable(alice, bob, call_id)
    others_still_served(node, connect)


def test_invite_with_unknown_call_type(node, connect):
    alice, bob = connect(node), connect(node)
    alice.send_signal(bob.user, "call-invite", callType="hologram")
    alice.expect_error("invalid-signal")
    alice.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker", "an invalid invite must not reach the callee"


def test_many_bad_frames_in_a_row(node, connect, call):
    alice, bob, call_id = call
    for i in range(5):
        alice.send_bytes(FRAMES["garbage-bytes"])
        alice.send(to=bob.user, contentType=SIGNAL, content="{oops")
    for i in range(5):
        alice.expect_error("invalid-message")
        alice.expect_error("invalid-signal")
    still_usable(alice, bob, call_id)


def test_message_just_under_the_limit_is_relayed(node, connect):
    alice, bob = connect(node), connect(node)
    body = "x" * (MAX_BYTES - 1024)
    alice.send(to=bob.user, content=body)
    assert bob.recv().content == body


def test_oversize_frame_closes_with_1009(node, connect, call):
    alice, bob, call_id = call
    alice.send(to=bob.user, content="x" * (MAX_BYTES + 1024))
    alice.expect_close(1009)
    others_still_served(node, connect)


def test_oversize_fragmented_message_closes_with_1009(node, connect):
    """The limit is on the message: many small fragments adding up to too much are refused too."""
    alice, bob = connect(node), connect(node)
    data = ChatMessage(to=bob.user, contentType=1, messageType=1, content="y" * (MAX_BYTES + 4096)).SerializeToString()
    chunks = [data[i:i + 8192] for i in range(0, len(data), 8192)]
    try:
        alice.ws.send(chunks)  # an iterable: sent as one fragmented message
    except ConnectionClosed as closed:  # the node may refuse it before the last fragment is out
        assert closed.rcvd is not None and closed.rcvd.code == 1009, closed
    else:
        alice.expect_close(1009)
    others_still_served(node, connect)
