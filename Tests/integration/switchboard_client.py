"""Test clients for a running Switchboard node (PROTOCOL.md).

- `Client`: a real WebSocket client (the `websockets` sync API) that speaks ChatMessage
  protobuf frames, with helpers that await events with timeouts (never fixed sleeps).
- `RawWebSocket`: a minimal RFC 6455 client on a plain socket, for what the library hides
  (counting server pings, never answering them, sending arbitrary frames).
- `make_token`: HS256 JWTs as the node expects them.
- `http_get` / `raw_upgrade`: plain HTTP against the node.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import re
import secrets
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import jwt
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chatmessage_pb2 import ChatMessage

SECRET = "switchboard-integration-test-secret-0123456789abcdef"
DEFAULT_USER_AGENT = "switchboard-integration-tests/1.0 (pytest)"
DEFAULT_TIMEOUT = 5.0

# Content types and message types (PROTOCOL.md section 1).
TEXT, FILE, IMAGE, VOICE, VIDEO, SIGNAL = 1, 2, 3, 4, 5, 6
DIRECT, GROUP = 1, 2

_counter = itertools.count(1)
_run = secrets.token_hex(3)


def unique_user(prefix: str = "user") -> str:
    """A user id unique within this test run (valid `sub`: `[A-Za-z0-9._@-]{1,64}`)."""
    return f"{prefix}-{_run}-{next(_counter)}"


def now_ms() -> int:
    return int(time.time() * 1000)


def make_token(
    sub: str | None,
    name: str | None = None,
    avatar: str | None = None,
    exp_in: float | None = 3600,
    secret: str = SECRET,
    algorithm: str = "HS256",
    **extra: Any,
) -> str:
    """An HS256 JWT with the claims of PROTOCOL.md section 2. `sub=None` / `exp_in=None` omit them."""
    claims: dict[str, Any] = dict(extra)
    if sub is not None:
        claims["sub"] = sub
    if name is not None:
        claims["name"] = name
    if avatar is not None:
        claims["avatar"] = avatar
    if exp_in is not None:
        claims["exp"] = int(time.time() + exp_in)
    return jwt.encode(claims, secret, algorithm=algorithm)


# ---------------------------------------------------------------------------------------------
# Received messages


class Received:
    """A decoded ChatMessage; attribute access goes to the protobuf message.

    `.sender` is the `from` field (a Python keyword); `.json` is the parsed `content` for
    signals (contentType 6) and None otherwise.
    """

    def __init__(self, pb: ChatMessage, raw: bytes):
        self.pb = pb
        self.raw = raw
        self.json: Any = None
        if pb.contentType == SIGNAL:
            try:
                self.json = json.loads(pb.content)
            except ValueError as exc:  # a signal with non-JSON content from the server is a bug
                raise AssertionError(f"signal content is not JSON: {pb.content!r}") from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pb, name)

    @property
    def sender(self) -> str:
        return getattr(self.pb, "from")

    @property
    def signal_type(self) -> str | None:
        return self.json.get("type") if isinstance(self.json, dict) else None

    def __repr__(self) -> str:
        fields = {
            f.name: v if not isinstance(v, bytes) or len(v) < 64 else f"<{len(v)} bytes>"
            for f, v in self.pb.ListFields()
        }
        if "content" in fields and isinstance(fields["content"], str) and len(fields["content"]) > 300:
            fields["content"] = fields["content"][:300] + "…"
        return f"Received({fields})"


def assert_notice(msg: Received, recipient: str, notice_type: str | None = None) -> dict:
    """Checks the shape of a server notice (PROTOCOL.md section 4) and returns its JSON."""
    assert msg.contentType == SIGNAL, f"notice must have contentType 6: {msg!r}"
    assert msg.messageType == DIRECT, f"notice must have messageType 1: {msg!r}"
    assert msg.sender == "", f"notice must come from the server (from \"\"): {msg!r}"
    assert msg.to == recipient, f"notice must be addressed to {recipient!r}: {msg!r}"
    assert isinstance(msg.json, dict), f"notice content must be a JSON object: {msg!r}"
    if notice_type is not None:
        assert msg.json.get("type") == notice_type, f"expected a {notice_type!r} notice, got {msg!r}"
    return msg.json


# ---------------------------------------------------------------------------------------------
# The WebSocket client


class Client:
    """One user's WebSocket session with a node.

    `via`: where the token goes — "query" (`?token=`), "header" (`Authorization: Bearer`) or
    "protocol" (`Sec-WebSocket-Protocol: bearer.<token>`).
    `sync`: after the upgrade, do one application heartbeat round trip, so that the server is
    known to be running this session's handler (and has registered it) before the test goes on.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        via: str = "query",
        *,
        user: str | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        sync: bool = True,
        open_timeout: float = DEFAULT_TIMEOUT,
        max_size: int | None = 2**24,
        extra_headers: dict[str, str] | None = None,
        **connect_kwargs: Any,
    ):
        self.url = url
        self.token = token
        self.user = user
        headers: dict[str, str] = dict(extra_headers or {})
        subprotocols = list(connect_kwargs.pop("subprotocols", None) or []) or None
        target = url
        if token is not None:
            if via == "query":
                sep = "&" if "?" in url else "?"
                target = f"{url}{sep}token={urllib.parse.quote(token, safe='')}"
            elif via == "header":
                headers["Authorization"] = f"Bearer {token}"
            elif via == "protocol":
                subprotocols = (subprotocols or []) + [f"bearer.{token}"]
            else:
                raise ValueError(f"unknown token placement {via!r}")
        self.ws: ClientConnection = connect(
            target,
            additional_headers=headers or None,
            subprotocols=subprotocols,
            user_agent_header=user_agent,
            compression=None,
            proxy=None,
            open_timeout=open_timeout,
            ping_interval=None,
            close_timeout=2,
            max_size=max_size,
            legacy=True,  # websockets 17: return the connection directly (no context manager)
            **connect_kwargs,
        )
        # PROTOCOL.md §8: the first frame after the upgrade is always the `ice-servers` notice.
        first = self.expect_signal("ice-servers")
        self.ice_servers: dict = json.loads(first.content)
        # What arrives before the pong (a session resuming a call: `call-resumed`, kept signals; §8)
        # is received after it, in order.
        self._early: list[Received] = []
        early: list[Received] = []
        if sync:
            self.send(type="heatbeat", content="ping")
            while not ((msg := self.recv()).type == "heatbeat" and msg.content == "pong"):
                early.append(msg)
        self._early = early

    # -- sending ------------------------------------------------------------------------------

    def send(self, **fields: Any) -> ChatMessage:
        """Sends one ChatMessage. Defaults: contentType 1 (text), messageType 1 (direct).

        `from` is a keyword in Python: pass it as `from_=` (or `**{"from": ...}`).
        """
        if "from_" in fields:
            fields["from"] = fields.pop("from_")
        fields.setdefault("contentType", TEXT)
        fields.setdefault("messageType", DIRECT)
        msg = ChatMessage(**fields)
        self.ws.send(msg.SerializeToString())
        return msg

    def send_signal(self, to: str, type: str, **json_fields: Any) -> dict:
        """Sends a WebRTC signal (contentType 6, messageType 1) with JSON content."""
        body = {"type": type, **json_fields}
        self.send(to=to, contentType=SIGNAL, messageType=DIRECT, content=json.dumps(body))
        return body

    def send_bytes(self, data: bytes) -> None:
        self.ws.send(data)

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    # -- receiving ----------------------------------------------------------------------------

    def recv(self, timeout: float = DEFAULT_TIMEOUT) -> Received:
        """The next message from the server; fails after `timeout` seconds."""
        if getattr(self, "_early", None):
            return self._early.pop(0)
        try:
            data = self.ws.recv(timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"{self.user or 'client'}: no message within {timeout}s") from None
        except ConnectionClosed as exc:
            raise AssertionError(
                f"{self.user or 'client'}: connection closed while waiting for a message "
                f"(close frame received: {exc.rcvd})"
            ) from exc
        assert isinstance(data, bytes), f"server sent a text frame: {data!r}"
        pb = ChatMessage()
        try:
            pb.ParseFromString(data)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError
            raise AssertionError(f"server sent a frame that is not a ChatMessage: {data[:80]!r}") from exc
        return Received(pb, data)

    def try_recv(self, timeout: float) -> Received | None:
        """The next message, or None if nothing arrives within `timeout` (for bounded polling)."""
        if getattr(self, "_early", None):
            return self._early.pop(0)
        try:
            data = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        assert isinstance(data, bytes), f"server sent a text frame: {data!r}"
        pb = ChatMessage()
        pb.ParseFromString(data)
        return Received(pb, data)

    def expect_signal(self, type: str, timeout: float = DEFAULT_TIMEOUT) -> Received:
        """The next message, which must be a signal/notice of JSON type `type`."""
        msg = self.recv(timeout)
        assert msg.contentType == SIGNAL, f"{self.user}: expected a {type!r} signal, got {msg!r}"
        assert msg.signal_type == type, f"{self.user}: expected a {type!r} signal, got {msg!r}"
        return msg

    def expect_notice(self, type: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The next message, which must be a server notice of JSON type `type` (shape checked)."""
        msg = self.expect_signal(type, timeout)
        assert self.user is not None, "expect_notice needs Client(user=...)"
        return assert_notice(msg, self.user, type)

    def expect_error(self, reason: str | Iterable[str], timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The next message, which must be an `error` notice with the given reason (or one of)."""
        body = self.expect_notice("error", timeout)
        reasons = {reason} if isinstance(reason, str) else set(reason)
        assert body.get("reason") in reasons, f"{self.user}: expected error reason {reasons}, got {body}"
        assert isinstance(body.get("message"), str), f"error notice needs a message: {body}"
        return body

    def expect_no_message(self, within: float = 0.3) -> None:
        """Asserts that nothing arrives within `within` seconds (absence only: use sparingly)."""
        assert not self._early, f"{self.user}: unexpected {self._early[0]!r}"
        try:
            data = self.ws.recv(timeout=within)
        except TimeoutError:
            return
        except ConnectionClosed as exc:
            raise AssertionError(f"{self.user}: connection closed (close frame: {exc.rcvd})") from exc
        pb = ChatMessage()
        try:
            pb.ParseFromString(data if isinstance(data, bytes) else data.encode())
            shown: Any = Received(pb, data) if isinstance(data, bytes) else data
        except Exception:  # noqa: BLE001
            shown = data
        raise AssertionError(f"{self.user}: expected no message, got {shown!r}")

    def expect_close(self, code: int | None, timeout: float = DEFAULT_TIMEOUT) -> list[Received]:
        """Waits for the server to close the connection with `code` (None: any close or drop).

        Returns the messages received before the close.
        """
        received: list[Received] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.user}: connection not closed within {timeout}s (received {received!r})"
                )
            try:
                data = self.ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                if code is not None:
                    got = exc.rcvd.code if exc.rcvd is not None else None
                    assert got == code, (
                        f"{self.user}: expected close code {code}, got {got} "
                        f"(close frame: {exc.rcvd}; messages before: {received!r})"
                    )
                return received
            if isinstance(data, bytes):
                pb = ChatMessage()
                pb.ParseFromString(data)
                received.append(Received(pb, data))
            if len(received) > 1000:
                raise AssertionError(f"{self.user}: too many messages while waiting for close")

    def heartbeat(self, type: str = "heatbeat", timeout: float = DEFAULT_TIMEOUT) -> Received:
        """One application heartbeat round trip (PROTOCOL.md section 3)."""
        self.send(type=type, content="ping")
        msg = self.recv(timeout)
        assert msg.type == type and msg.content == "pong", f"{self.user}: expected heartbeat reply, got {msg!r}"
        return msg

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    def is_open(self) -> bool:
        from websockets.protocol import State

        return self.ws.protocol.state is State.OPEN

    def drop(self) -> None:
        """Drops the TCP connection abruptly, without a closing handshake."""
        try:
            self.ws.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ws.socket.close()
        try:
            self.ws.close_socket()
        except Exception:  # noqa: BLE001
            pass

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - already closed or dropped
            pass


def connect_expecting_status(url: str, token: str | None, via: str = "query", **kw: Any) -> int:
    """Tries an upgrade that must be refused; returns the HTTP status of the refusal."""
    try:
        c = Client(url, token, via, sync=False, **kw)
    except InvalidStatus as exc:
        return exc.response.status_code
    c.close()
    raise AssertionError("the WebSocket upgrade was accepted but should have been refused")


# ---------------------------------------------------------------------------------------------
# HTTP


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    base: str,
    method: str,
    path: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HttpResponse:
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        h.setdefault("User-Agent", DEFAULT_USER_AGENT)
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def http_get(base: str, path: str, token: str | None = None, **kw: Any) -> HttpResponse:
    return http_request(base, "GET", path, token=token, **kw)


def metric(node, series: str) -> float:
    """One sample of the node's `/metrics` (`name{labels}` as the node writes it); 0 when it is absent."""
    text = http_get(node.http_url, "/metrics").body.decode()
    match = re.search(rf"^{re.escape(series)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def upgrade_request(base: str, path: str = "/ws", headers: dict[str, str] | None = None) -> bytes:
    """The bytes of a WebSocket upgrade request for `path` on `base` (a fresh key), `headers` added."""
    h = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    h.update(headers or {})
    parsed = urllib.parse.urlsplit(base)
    req = f"GET {path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\n"
    return (req + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode()


def raw_upgrade(base: str, path: str = "/ws", headers: dict[str, str] | None = None) -> HttpResponse:
    """A raw WebSocket upgrade request; returns the response (status 101 means upgraded)."""
    parsed = urllib.parse.urlsplit(base)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=DEFAULT_TIMEOUT)
    try:
        sock.sendall(upgrade_request(base, path, headers))
        head = _read_http_head(sock)
        status, headers_out = _parse_http_head(head)
        return HttpResponse(status, headers_out, b"")
    finally:
        sock.close()


def _read_http_head(sock: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before the HTTP response head ended: {buf!r}")
        buf += chunk
        if len(buf) > 65536:
            raise AssertionError("HTTP response head too long")
    return buf


def _parse_http_head(buf: bytes) -> tuple[int, dict[str, str]]:
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


# ---------------------------------------------------------------------------------------------
# A raw RFC 6455 client


class RawWebSocket:
    """A WebSocket client on a plain socket: sees every control frame, answers pings only if told.

    Frames: `read_frame(timeout)` → (opcode, payload) or None on EOF.
    """

    OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

    def __init__(self, base: str, token: str, user_agent: str = DEFAULT_USER_AGENT):
        parsed = urllib.parse.urlsplit(base)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=DEFAULT_TIMEOUT)
        path = f"/ws?token={urllib.parse.quote(token, safe='')}"
        self.sock.sendall(upgrade_request(base, path, {"User-Agent": user_agent}))
        head = _read_http_head(self.sock)
        status, _ = _parse_http_head(head)
        assert status == 101, f"upgrade refused: HTTP {status}"
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        self.closed = False
        self.close_code: int | None = None
        # PROTOCOL.md §8: the first frame after the upgrade is always the `ice-servers` notice.
        frame = self.read_frame(DEFAULT_TIMEOUT)
        assert frame is not None and frame[0] == self.OP_BINARY, f"first frame is not the ice-servers notice: {frame}"
        first = ChatMessage()
        first.ParseFromString(frame[1])
        self.ice_servers: dict = json.loads(first.content)
        assert self.ice_servers.get("type") == "ice-servers", f"first frame: {first}"

    def _read_exact(self, n: int, deadline: float) -> bytes | None:
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError from None
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, timeout: float) -> tuple[int, bytes] | None:
        """The next frame (opcode, payload); None when the server closed the TCP connection.

        Raises TimeoutError when nothing complete arrives within `timeout`.
        """
        deadline = time.monotonic() + timeout
        head = self._read_exact(2, deadline)
        if head is None:
            return None
        b0, b1 = head
        opcode = b0 & 0x0F
        masked = b1 & 0x80
        length = b1 & 0x7F
        if length == 126:
            ext = self._read_exact(2, deadline)
            if ext is None:
                return None
            length = struct.unpack("!H", ext)[0]
        elif length == 127:
            ext = self._read_exact(8, deadline)
            if ext is None:
                return None
            length = struct.unpack("!Q", ext)[0]
        mask = b""
        if masked:
            m = self._read_exact(4, deadline)
            if m is None:
                return None
            mask = m
        payload = self._read_exact(length, deadline) if length else b""
        if payload is None:
            return None
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        if opcode == self.OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        return opcode, payload

    def send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_message(self, msg: ChatMessage) -> None:
        self.send_frame(self.OP_BINARY, msg.SerializeToString())

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Waiting


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls `predicate` until it returns a truthy value, with a deadline; returns that value."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last: {last_exc})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)  # polling interval, bounded by the deadline above
