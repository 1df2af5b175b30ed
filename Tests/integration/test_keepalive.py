"""WebSocket pings, pong timeout and read timeout (PROTOCOL.md sections 3, 7).

These use a raw RFC 6455 client, which sees every ping and answers only when told to.
"""

from __future__ import annotations

import time

from chatmessage_pb2 import ChatMessage
from switchboard_client import RawWebSocket, make_token, unique_user


def read_until_closed(raw: RawWebSocket, timeout: float) -> float:
    """Reads (and ignores) frames until the server closes; returns the seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the server did not close a silent connection within {timeout}s"
        try:
            frame = raw.read_frame(remaining)
        except TimeoutError:
            continue
        if frame is None or frame[0] == RawWebSocket.OP_CLOSE:
            return time.monotonic() - start


def heartbeat(raw: RawWebSocket, timeout: float = 5.0, answer_pings: bool = True) -> None:
    raw.send_message(ChatMessage(type="heatbeat", content="ping", contentType=1, messageType=1))
    deadline = time.monotonic() + timeout
    while True:
        frame = raw.read_frame(deadline - time.monotonic())
        assert frame is not None, "connection closed while waiting for the heartbeat reply"
        op, payload = frame
        assert op != RawWebSocket.OP_CLOSE, f"server closed the connection (code {raw.close_code})"
        if op == RawWebSocket.OP_PING and answer_pings:
            raw.send_frame(RawWebSocket.OP_PONG, payload)
        elif op == RawWebSocket.OP_BINARY:
            msg = ChatMessage()
            msg.ParseFromString(payload)
            assert msg.type == "heatbeat" and msg.content == "pong", msg
            return


def test_client_answering_pings_stays_connected(node_factory):
    node = node_factory(
        SWITCHBOARD_WEBSOCKET_PING_INTERVAL="500ms",
        SWITCHBOARD_WEBSOCKET_PONG_TIMEOUT="500ms",
        SWITCHBOARD_WEBSOCKET_READ_TIMEOUT="2s",
    )
    raw = RawWebSocket(node.http_url, make_token(unique_user("pinged")))
    try:
        wanted = 6  # ≈ 3 s: past the read timeout too, since pongs count as activity
        pings = 0
        deadline = time.monotonic() + 15
        while pings < wanted:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {pings} pings within 15 s at a 500 ms interval"
            frame = raw.read_frame(remaining)
            assert frame is not None, f"server dropped a client that answers pings (after {pings} pings)"
            op, payload = frame
            assert op != RawWebSocket.OP_CLOSE, f"server closed with {raw.close_code} after {pings} pings"
            if op == RawWebSocket.OP_PING:
                pings += 1
                raw.send_frame(RawWebSocket.OP_PONG, payload)
        # Still connected and served.
        heartbeat(raw)
    finally:
        raw.close()


def test_client_ignoring_pings_is_closed(node_factory):
    node = node_factory(
        SWITCHBOARD_WEBSOCKET_PING_INTERVAL="500ms",
        SWITCHBOARD_WEBSOCKET_PONG_TIMEOUT="500ms",
    )
    raw = RawWebSocket(node.http_url, make_token(unique_user("deaf")))
    try:
        took = read_until_closed(raw, timeout=8)
        assert took >= 0.4, f"closed after {took:.2f}s, before a ping could even be answered"
    finally:
        raw.close()
    # The node keeps serving.
    raw2 = RawWebSocket(node.http_url, make_token(unique_user("next")))
    try:
        heartbeat(raw2)
    finally:
        raw2.close()


def test_silent_client_hits_read_timeout_and_heartbeats_keep_it_alive(node_factory):
    node = node_factory(
        SWITCHBOARD_WEBSOCKET_READ_TIMEOUT="1s",
        SWITCHBOARD_WEBSOCKET_PING_INTERVAL="30s",
    )
    silent = RawWebSocket(node.http_url, make_token(unique_user("silent")))
    chatty = RawWebSocket(node.http_url, make_token(unique_user("chatty")))
    try:
        # chatty sends an application heartbeat about every 0.3 s for 2.5 s (well past the 1 s
        # read timeout); the gaps are absence checks: no frame (and no close) may arrive.
        start = time.monotonic()
        while time.monotonic() - start < 2.5:
            heartbeat(chatty, answer_pings=False)
            try:
                frame = chatty.read_frame(0.3)
            except TimeoutError:
                continue
            raise AssertionError(f"unexpected frame for the heartbeating client: {frame}")
        # Meanwhile the silent one was closed.
        took = read_until_closed(silent, timeout=5)
        assert took < 5
    finally:
        silent.close()
        chatty.close()
