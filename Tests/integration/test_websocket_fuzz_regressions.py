"""What the WebSocket fuzz harness found (scripts/fuzz, FuzzWebSocketFrames), against a real node.

Each case sends the bytes of a fuzz reproducer (Fuzz/Corpus/FuzzWebSocketFrames/regression-*) on a
raw socket after the 101 and checks what the node answers, frame by frame, until it drops TCP.
"""

from __future__ import annotations

import os
import struct

import pytest

from switchboard_client import RawWebSocket, make_token, unique_user

OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode, 0x80 | len(payload)])
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# A ping without FIN: NIO's frame decoder refuses it (a fragmented control frame).
FRAGMENTED_PING = client_frame(OP_PING, b"", fin=False)

CASES = {
    # The server fails the connection (1002), then the decoder fails on the next frame.
    "reserved-bit-then-decoder-error": (client_frame(OP_TEXT, b"x", rsv1=True) + FRAGMENTED_PING, 1002),
    # The server fails the connection (1007), then the decoder fails on the next frame.
    "invalid-utf8-then-decoder-error": (client_frame(OP_TEXT, b"\xff") + FRAGMENTED_PING, 1007),
}


def frames_until_eof(raw: RawWebSocket, timeout: float = 5.0) -> list[tuple[int, bytes]]:
    frames = []
    while True:
        frame = raw.read_frame(timeout)
        if frame is None:
            return frames
        frames.append(frame)


@pytest.mark.parametrize("case", sorted(CASES))
def test_server_sends_one_close_frame(node, case):
    """RFC 6455 §5.5.1, and WebSocketSessionHandler's contract: one close frame, then nothing."""
    data, code = CASES[case]
    raw = RawWebSocket(node.http_url, make_token(unique_user("fuzz")))
    try:
        raw.sock.sendall(data)
        frames = frames_until_eof(raw)
    finally:
        raw.close()
    closes = [payload for op, payload in frames if op == OP_CLOSE]
    codes = [struct.unpack("!H", payload[:2])[0] for payload in closes if len(payload) >= 2]
    print(f"{case}: close codes {codes}")
    assert len(closes) == 1, f"{len(closes)} close frames (codes {codes}); one expected"
    assert codes == [code]
    assert frames[-1][0] == OP_CLOSE, "the close frame must be the last frame sent"
