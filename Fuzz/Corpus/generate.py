#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz harnesses (Fuzz/Corpus/<harness>/seed-*).

Run it from the repository root with the test venv (it needs protobuf and Tests/integration's
chatmessage_pb2): `.venv/bin/python Fuzz/Corpus/generate.py`. It rewrites every `seed-*` file and leaves
`regression-*` files (inputs that once broke a property, kept so that every run replays them) alone.
The output is deterministic: the same script writes the same bytes.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "integration"))
from chatmessage_pb2 import ChatMessage  # noqa: E402

CORPUS = Path(__file__).resolve().parent

# A browser's offer, as long as a real one (two m-lines, ICE, DTLS fingerprint, codecs): ~2.6 KB.
SDP = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS 6a3c8ae2-6b1d-4b8e-a2b4-3c4fd0e1f2a3",
    ]
    + [
        line
        for mid, kind, port, codecs in [
            ("0", "audio", 9, ["111 opus/48000/2", "63 red/48000/2", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000"]),
            ("1", "video", 9, ["96 VP8/90000", "97 rtx/90000", "98 VP9/90000", "99 rtx/90000", "45 AV1/90000"]),
        ]
        for line in [
            f"m={kind} {port} UDP/TLS/RTP/SAVPF {' '.join(c.split()[0] for c in codecs)}",
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Vt9S",
            "a=ice-pwd:oa6Cq3sJ1cV7m3Y5hC2Zr0Gd",
            "a=ice-options:trickle",
            "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08",
            "a=setup:actpass",
            f"a=mid:{mid}",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=sendrecv",
            "a=msid:6a3c8ae2-6b1d-4b8e-a2b4-3c4fd0e1f2a3 9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
            "a=rtcp-mux",
            "a=rtcp-rsize",
        ]
        + [f"a=rtpmap:{c}" for c in codecs]
        + [f"a=rtcp-fb:{c.split()[0]} transport-cc" for c in codecs]
        + ["a=fmtp:111 minptime=10;useinbandfec=1", "a=ssrc:1001 cname:c9Xk2Lh0pQ7rS4tU"]
    ]
    + [""]
)

CANDIDATE = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 192.168.1.20 rport 46154 generation 0 ufrag Vt9S network-cost 999"

SIGNALS: dict[str, dict] = {
    "call-invite-audio": {"type": "call-invite", "callType": "audio"},
    "call-invite-video": {"type": "call-invite", "callType": "video", "callId": "c-7f3a9e21"},
    "call-accept": {"type": "call-accept", "callId": "c-7f3a9e21"},
    "call-reject": {"type": "call-reject", "callId": "c-7f3a9e21", "reason": "busy"},
    "call-hangup": {"type": "call-hangup", "callId": "c-7f3a9e21", "reason": None},
    "offer": {"type": "offer", "callId": "c-7f3a9e21", "offer": {"type": "offer", "sdp": SDP}},
    "answer": {"type": "answer", "callId": "c-7f3a9e21", "answer": {"type": "answer", "sdp": SDP.replace("actpass", "active")}},
    "ice-candidate": {
        "type": "ice-candidate",
        "callId": "c-7f3a9e21",
        "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "Vt9S"},
    },
    "ice-candidate-null-mid": {"type": "ice-candidate", "candidate": {"candidate": "", "sdpMid": None, "sdpMLineIndex": None}},
    "unknown-fields": {"type": "call-hangup", "callId": "c-1", "x-app": {"nested": [1, 2.5e-3, -0, True, None, "ü"]}},
}


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_seeds() -> dict[str, bytes]:
    seeds = {f"signal-{name}": compact(body).encode() for name, body in SIGNALS.items()}
    seeds.update(
        {
            # \u escapes of every kind, raw UTF-8 of 2, 3 and 4 bytes, escaped and raw surrogate pairs.
            "unicode-escapes": rb'{"type":"offer","s":"\u00e9\u4e2d\ud83d\ude00\u0000\u001f\b\f\n\r\t\/\\\"","raw":"'
            + "é中😀".encode()
            + b'"}',
            "ascii-escaped": json.dumps({"type": "call-invite", "name": "Zoë 👋 \u2028"}, ensure_ascii=True).encode(),
            "deep-64": b"[" * 64 + b"]" * 64,
            "deep-65": b"[" * 65 + b"]" * 65,
            "deep-objects": b'{"a":' * 40 + b"{}" + b"}" * 40,
            "numbers": b"[0,-0,1,-1,0.5,-12.375e+10,1E-7,123456789012345678901234567890,1e400]",
            "many-keys": compact({f"k{i}": i for i in range(20)}).encode(),
            "duplicate-keys": b'{"type":"offer","type":"answer","a":1,"a":[true,false,null]}',
            "whitespace": b' \t\r\n{ "type" : "call-accept" ,\n "callId" : "x" } \n',
            "scalars": b'"just a string"',
            "empty": b"{}",
            "long-escaped-string": compact({"sdp": SDP}).encode(),
        }
    )
    return seeds


def message(**fields) -> bytes:
    return ChatMessage(**fields).SerializeToString()


def intake_seeds() -> dict[str, bytes]:
    seeds = {
        f"signal-{name}": message(to="bob", contentType=6, messageType=1, content=compact(body))
        for name, body in SIGNALS.items()
    }
    seeds.update(
        {
            "text": message(to="bob", contentType=1, messageType=1, content="hello 👋", type="text"),
            "text-claims-sender": message(
                to="bob", contentType=1, messageType=1, content="hi", **{"from": "mallory"}, fromUsername="Eve", avatar="x", timestamp=42
            ),
            "image": message(to="bob", contentType=3, url="https://example.com/a.jpg", fileSuffix="jpg", file=bytes(range(64))),
            "voice": message(to="bob.smith@example", contentType=4, duration=7),
            "heartbeat": message(type="heatbeat", content="ping"),
            "heartbeat-spelled": message(type="heartbeat", content="ping"),
            "group": message(to="team", contentType=1, messageType=2, content="all"),
            "message-type-3": message(to="bob", contentType=1, messageType=3),
            "bad-to": message(to="bob smith", contentType=1, content="x"),
            "content-type-7": message(to="bob", contentType=7),
            "signal-not-json": message(to="bob", contentType=6, content='{"type":"offer",'),
            "signal-not-object": message(to="bob", contentType=6, content='["call-invite"]'),
            "signal-unknown-type": message(to="bob", contentType=6, content='{"type":"call-transfer"}'),
            "signal-long-call-id": message(to="bob", contentType=6, content=compact({"type": "call-accept", "callId": "c" * 129})),
            "signal-bad-call-type": message(to="bob", contentType=6, content='{"type":"call-invite","callType":"hologram"}'),
            "unknown-field": message(to="bob", contentType=1) + b"\xa2\x06\x03abc",  # field 100, length 3
        }
    )
    return seeds


def client_frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x37\xfa\x21\x3d", rsv: int = 0, length_form: str = "") -> bytes:
    """A frame as a client sends it (masked unless mask is None)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if length_form == "64" or n >= 65536:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    elif length_form == "16" or n >= 126:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | n])
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def websocket_seeds() -> dict[str, bytes]:
    """Byte 0: bits 0-5 the size of each read (0: one read), bit 7 the client does not read, bit 6 it
    starts reading again after 5 s; then the client's bytes."""
    offer = message(to="bob", contentType=6, messageType=1, content=compact(SIGNALS["ice-candidate"]))
    text = "héllo wörld".encode()
    frames = {
        "binary-chatmessage": client_frame(2, offer),
        "text": client_frame(1, b"hello"),
        "text-zero-mask": client_frame(1, b"plain text, mask 00000000", mask=b"\0\0\0\0"),
        "fragmented-text-around-ping": client_frame(1, text[:2], fin=False)
        + client_frame(9, b"are you there")
        + client_frame(0, text[2:5], fin=False)
        + client_frame(0, text[5:]),
        "fragmented-binary": client_frame(2, b"\x01" * 100, fin=False) + client_frame(0, b"\x02" * 100),
        "ping-pong": client_frame(9, b"") + client_frame(10, b"unsolicited") + client_frame(9, b"x" * 125),
        "close-with-reason": client_frame(1, b"last words") + client_frame(8, close_payload(1000, "bye now")),
        "close-empty": client_frame(8, b""),
        "close-1001": client_frame(8, close_payload(1001)),
        "server-close-request": client_frame(1, b"bye") + client_frame(8, close_payload(1000)),
        "length-16": client_frame(2, bytes(range(256)) + bytes(44)),
        "length-16-small": client_frame(2, b"short", length_form="16"),
        "length-64": client_frame(2, b"tiny", length_form="64"),
        "too-large": client_frame(2, b"\xaa" * 513),
        "too-large-fragments": client_frame(2, b"a" * 300, fin=False) + client_frame(0, b"b" * 300),
        "invalid-utf8": client_frame(1, b"hi\xed\xa0\x80"),
        "reserved-bit": client_frame(1, b"x", rsv=4),
        "unmasked": client_frame(2, b"no mask", mask=None),
        "continuation-first": client_frame(0, b"orphan"),
        "reserved-opcode": client_frame(3, b""),
        "fragmented-ping": client_frame(9, b"p", fin=False),
        "long-ping": client_frame(9, b"p" * 126),
        "bad-close-code": client_frame(8, close_payload(1005)),
        "close-one-byte": client_frame(8, b"\x03"),
    }
    seeds = {}
    for name, data in frames.items():
        seeds[f"{name}"] = b"\x00" + data
    # The same streams cut into small reads: frames split across reads.
    for name in ("fragmented-text-around-ping", "binary-chatmessage", "close-with-reason"):
        seeds[f"{name}-reads-of-3"] = b"\x03" + frames[name]
    # A client that does not read what it is sent: echoes and pongs pile up in the node.
    echoes = b"".join(client_frame(2, bytes([i]) * 100) for i in range(40))
    pings = b"".join(client_frame(9, bytes([i]) * 125) for i in range(40))
    seeds["not-reading-echoes"] = b"\x80" + echoes
    seeds["not-reading-pings-reads-of-32"] = bytes([0x80 | 32]) + pings
    seeds["not-reading-then-reading-reads-of-63"] = bytes([0xC0 | 63]) + echoes
    return seeds


def write(harness: str, seeds: dict[str, bytes]) -> None:
    folder = CORPUS / harness
    folder.mkdir(exist_ok=True)
    for old in folder.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (folder / f"seed-{name}").write_bytes(data)
    print(f"{folder.relative_to(ROOT)}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    write("FuzzSignalJSON", json_seeds())
    write("FuzzChatMessageIntake", intake_seeds())
    write("FuzzWebSocketFrames", websocket_seeds())
