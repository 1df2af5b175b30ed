"""switchboard-client.js's hand-written ChatMessage encoding against the official Python bindings.

The module runs under `node` (an ES module import, no browser needed). Messages go both ways:
encoded by the module, decoded by chatmessage_pb2 (and byte for byte what protobuf itself
writes); encoded by protobuf, decoded by the module. Edge values: every field, int32 and int64
bounds and negatives (ten-byte varints), non-ASCII text, every byte value, unknown fields.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from chatmessage_pb2 import ChatMessage

MODULE = Path(__file__).resolve().parents[2] / "Sources" / "SwitchboardWeb" / "Files" / "switchboard-client.js"
NODE = shutil.which("node")

INT32 = ("contentType", "messageType", "duration")
STRINGS = ("avatar", "fromUsername", "from", "to", "content", "type", "url", "fileSuffix")

# Reads JSON lines on stdin: {"encode": {...fields...}} or {"decode": "<hex>"}; answers one JSON
# line each: {"hex": ...} / {"message": ...} / {"error": ...}. Bytes travel as hex, int64 as text.
DRIVER = r"""
import { encodeChatMessage, decodeChatMessage } from %s;
import { createInterface } from "node:readline";
const hex = (b) => Buffer.from(b).toString("hex");
for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line);
  let answer;
  try {
    if (request.encode) {
      const m = { ...request.encode };
      if (m.file !== undefined) m.file = new Uint8Array(Buffer.from(m.file, "hex"));
      if (m.timestamp !== undefined) m.timestamp = BigInt(m.timestamp);
      answer = { hex: hex(encodeChatMessage(m)) };
    } else {
      const m = decodeChatMessage(new Uint8Array(Buffer.from(request.decode, "hex")));
      answer = { message: { ...m, file: hex(m.file), timestamp: String(m.timestamp) } };
    }
  } catch (error) {
    answer = { error: String(error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
"""


@pytest.fixture(scope="module")
def js():
    assert NODE, "node (Debian's nodejs) is needed to run switchboard-client.js: scripts/test installs it"
    proc = subprocess.Popen(
        [NODE, "--input-type=module", "-e", DRIVER % json.dumps(MODULE.as_uri())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    def ask(request: dict) -> dict:
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, f"node exited: {proc.stderr.read() if proc.stderr else ''}"
        return json.loads(line)

    yield ask
    proc.stdin.close()
    proc.wait(10)


def as_js(pb: ChatMessage) -> dict:
    """The message's set fields as the module takes them (bytes as hex, int64 as text)."""
    fields = {}
    for desc, value in pb.ListFields():
        if desc.name == "file":
            fields["file"] = value.hex()
        elif desc.name == "timestamp":
            fields["timestamp"] = str(value)
        else:
            fields[desc.name] = value
    return fields


def from_js(message: dict) -> ChatMessage:
    pb = ChatMessage()
    for name in STRINGS + INT32:
        setattr(pb, name, message[name])
    pb.file = bytes.fromhex(message["file"])
    pb.timestamp = int(message["timestamp"])
    return pb


def edge_messages() -> list[ChatMessage]:
    every_byte = bytes(range(256))
    return [
        ChatMessage(),
        ChatMessage(to="bob", content="hello", contentType=1, messageType=1),
        ChatMessage(
            avatar="https://example.com/a.png", fromUsername="Alice ✓", **{"from": "alice"}, to="bob",
            content='{"type":"offer","sdp":"v=0\\r\\n"}', contentType=6, type="signal", messageType=1,
            url="https://example.com/f", fileSuffix="png", file=every_byte, timestamp=1_764_000_000_123,
            duration=42,
        ),
        ChatMessage(content="用户离线 😀 é\u0000", fromUsername="\U0010ffff"),
        ChatMessage(contentType=-1, messageType=2**31 - 1, duration=-(2**31)),
        ChatMessage(timestamp=2**63 - 1),
        ChatMessage(timestamp=-(2**63)),
        ChatMessage(timestamp=-1, duration=1),
        ChatMessage(content="x" * 70_000, file=b"\x00" * 200),  # multi-byte length prefixes
    ]


def random_message(rng: random.Random) -> ChatMessage:
    pb = ChatMessage()
    for name in STRINGS:
        if rng.random() < 0.6:
            setattr(pb, name, "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD800),
                                                      rng.randrange(0x10000, 0x110000)]))
                                      for _ in range(rng.randrange(0, 40))))
    for name in INT32:
        if rng.random() < 0.6:
            setattr(pb, name, rng.choice([0, 1, 6, rng.randrange(-(2**31), 2**31)]))
    if rng.random() < 0.6:
        pb.timestamp = rng.choice([rng.randrange(0, 2**41), rng.randrange(-(2**63), 2**63)])
    if rng.random() < 0.5:
        pb.file = rng.randbytes(rng.randrange(0, 300))
    return pb


def cases() -> list[ChatMessage]:
    rng = random.Random(12)
    return edge_messages() + [random_message(rng) for _ in range(200)]


def test_module_encoding_is_protobufs(js):
    for pb in cases():
        answer = js({"encode": as_js(pb)})
        assert "hex" in answer, answer
        encoded = bytes.fromhex(answer["hex"])
        assert ChatMessage.FromString(encoded) == pb
        # Fields in number order, defaults left out: the same bytes protobuf itself writes.
        assert encoded == pb.SerializeToString(), f"{pb}"


def test_module_decodes_protobufs_encoding(js):
    for pb in cases():
        answer = js({"decode": pb.SerializeToString().hex()})
        assert "message" in answer, answer
        assert from_js(answer["message"]) == pb


def test_unknown_fields_are_skipped_and_bad_input_refused(js):
    known = ChatMessage(to="bob", content="hi", contentType=1).SerializeToString()
    # Field 14 as varint, field 15 as length-delimited, field 16 as fixed64, field 17 as fixed32.
    unknown = bytes([0x70, 0x96, 0x01, 0x7A, 0x02, 0x68, 0x69, 0x81, 0x01]) + bytes(8) + bytes([0x8D, 0x01]) + bytes(4)
    with_unknown = ChatMessage.FromString(unknown + known)
    with_unknown.DiscardUnknownFields()
    assert with_unknown == ChatMessage.FromString(known)
    answer = js({"decode": (unknown + known).hex()})
    assert from_js(answer["message"]) == ChatMessage.FromString(known)

    for bad, what in (
        (known[:-1], "truncated string"),
        (bytes([0x30]), "truncated varint"),
        (bytes([0x30]) + b"\xff" * 10 + b"\x01", "varint over ten bytes"),
        (bytes([0x2A, 0x02, 0xC3, 0x28]), "invalid UTF-8 in a string field"),
        (bytes([0x33]), "group wire type"),
    ):
        with pytest.raises(Exception):
            ChatMessage.FromString(bad)  # protobuf refuses it too
        assert "error" in js({"decode": bad.hex()}), what

    for fields in ({"contentType": 2**31}, {"duration": 1.5}, {"to": 5}):
        assert "error" in js({"encode": fields}), fields
