"""A real HTTP server standing in for the app's backend (PROTOCOL.md §10), on a free loopback port.

It verifies every request's signature (`X-Switchboard-Timestamp`, `X-Switchboard-Signature`) and keeps
what it was sent. Permission questions (`POST /permission`) are answered by `decide(question)`, which
returns an `Answer`; call events (`POST /events/<name>`) are taken (204) unless `events_fail[name]` still
counts failures to give (500) or `events_down` holds the name (503).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

HOOK_SECRET = "switchboard-hook-test-secret-0123456789abcdef"


def signature_ok(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """The check a backend makes: HMAC-SHA256 over `timestamp + "." + body`, timestamp within 5 minutes."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: {"allow": True})
    delay: float = 0.0


@dataclass
class Request:
    path: str
    body: dict
    signed: bool
    at: float
    status: int = 0


class HookBackend:
    def __init__(self, secret: str = HOOK_SECRET):
        self.secret = secret
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.decide: Callable[[dict], Answer] = lambda question: Answer()
        self.events_fail: dict[str, int] = {}
        self.events_down: set[str] = set()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signed = signature_ok(backend.secret, self.headers.get("X-Switchboard-Timestamp", ""), raw,
                                      self.headers.get("X-Switchboard-Signature", ""))
                request = Request(self.path, json.loads(raw), signed, time.monotonic())
                answer = backend._answer(request) if signed else Answer(401, {"error": "bad signature"})
                request.status = answer.status
                with backend.lock:
                    backend.requests.append(request)
                if answer.delay:
                    time.sleep(answer.delay)
                data = b"" if answer.status == 204 else json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the node gave up waiting and closed the connection

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, request: Request) -> Answer:
        if request.path == "/permission":
            return self.decide(request.body)
        name = request.path.removeprefix("/events/")
        with self.lock:
            if name in self.events_down:
                return Answer(503, {})
            if self.events_fail.get(name, 0) > 0:
                self.events_fail[name] -= 1
                return Answer(500, {})
        return Answer(204)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def permission_questions(self, caller: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests
                    if r.path == "/permission" and (caller is None or r.body.get("caller") == caller)]

    def events(self, name: str | None = None, call_id: str | None = None, taken_only: bool = True) -> list[Request]:
        """Event requests (to `/events/<name>`, or any), of one call, by default only those answered 2xx."""
        with self.lock:
            return [r for r in self.requests if r.path.startswith("/events/")
                    and (name is None or r.path == f"/events/{name}")
                    and (call_id is None or r.body.get("call_id") == call_id)
                    and (not taken_only or 200 <= r.status < 300)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
