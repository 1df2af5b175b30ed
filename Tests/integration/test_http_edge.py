"""The HTTP edge (PROTOCOL.md §9): what a connection that has not upgraded can make a node hold.

- `server.request_timeout`: idle sockets, a slowloris and an idle keep-alive connection are closed
  within the timeout (measured); an upgraded WebSocket is not.
- A malformed request is answered 400 and closed at once.
- Pending-connection limits: with the node at a low fd limit and 400 idle sockets held open (from
  one address, and from several), `/healthz` is served and a real upgrade + message round trip works.
- `X-Forwarded-For` is believed only from `server.trusted_proxies`.
- `metrics.port`: `/metrics` on its own listener, 404 on the main port.
- A `jwt_secret` shorter than 32 bytes stops start-up with an error naming the key.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BINARY, Node, _free_port
from switchboard_client import Client, http_get, make_token, unique_user, wait_until

MARGIN = 1.5  # seconds beyond the configured timeout that a close may take (event loop, test polling)


# ---------------------------------------------------------------------------------------------
# Raw sockets


def open_socket(node: Node, src: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=5, source_address=(src, 0))
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the node has closed `sock` (EOF or reset); drains anything it sent first."""
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True


def time_to_close(sock: socket.socket, since: float, limit: float, tick=None) -> float:
    """Seconds from `since` until the node closes `sock` (at most `limit`); `tick()` runs meanwhile."""
    deadline = since + limit
    while time.monotonic() < deadline:
        if tick:
            tick()
        select.select([sock], [], [], 0.05)
        if closed_by_server(sock):
            return time.monotonic() - since
    raise AssertionError(f"socket still open {limit:.1f}s after it was opened")


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One HTTP response (head + Content-Length body) from a non-blocking socket."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        select.select([sock], [], [], 0.05)
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        buf += chunk
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) >= length:
                return buf
    raise AssertionError(f"no complete HTTP response within {timeout}s: {buf!r}")


def edge_log(node: Node) -> dict:
    return node.wait_for_log(lambda r: r.get("message", "").startswith(("HTTP edge limits", "server.max_pending")),
                             "the HTTP edge limits line")


# ---------------------------------------------------------------------------------------------
# server.request_timeout


def test_idle_slowloris_and_keepalive_sockets_closed_within_request_timeout(node_factory):
    timeout = 1.0
    node = node_factory(SWITCHBOARD_SERVER_REQUEST_TIMEOUT="1s")

    idle = open_socket(node)
    idle_at = time.monotonic()
    elapsed_idle = time_to_close(idle, idle_at, timeout + MARGIN)

    # Slowloris: a request head that never ends, one byte every 0.2 s (5 bytes per timeout).
    slow = open_socket(node)
    slow_at = time.monotonic()
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    trickle = iter(b"X-Slow: " + b"a" * 1000)
    sent = [0]
    last = [slow_at]

    def one_byte() -> None:
        if time.monotonic() - last[0] >= 0.2:
            try:
                slow.send(bytes([next(trickle)]))
                sent[0] += 1
            except OSError:
                pass
            last[0] = time.monotonic()

    elapsed_slow = time_to_close(slow, slow_at, timeout + MARGIN, tick=one_byte)

    # Keep-alive: a request answered, then nothing: closed a timeout after the response.
    keep = open_socket(node)
    keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(keep).startswith(b"HTTP/1.1 200")
    answered_at = time.monotonic()
    elapsed_keep = time_to_close(keep, answered_at, timeout + MARGIN)

    print(f"\nrequest_timeout {timeout}s: idle socket closed after {elapsed_idle:.2f}s, slowloris "
          f"({sent[0]} bytes trickled) after {elapsed_slow:.2f}s, idle keep-alive {elapsed_keep:.2f}s after its response")
    for what, elapsed in (("idle", elapsed_idle), ("slowloris", elapsed_slow), ("keep-alive", elapsed_keep)):
        assert timeout - 0.1 <= elapsed <= timeout + MARGIN, f"{what} closed after {elapsed:.2f}s"
    assert sent[0] >= 3, "the slowloris kept sending bytes while it waited"
    assert http_get(node.http_url, "/healthz").status == 200


def test_request_timeout_restarts_with_each_request(node_factory):
    """The timeout bounds each wait for a head, not a connection's life: a keep-alive client that
    asks every 0.4 s is served on one connection for 3 timeouts."""
    node = node_factory(SWITCHBOARD_SERVER_REQUEST_TIMEOUT="1s")
    sock = open_socket(node)
    start = time.monotonic()
    answered = 0
    while time.monotonic() - start < 3.0:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        answered += 1
        select.select([sock], [], [], 0.4)  # the client's think time (nothing is expected meanwhile)
        assert not closed_by_server(sock), f"closed after {answered} requests in {time.monotonic() - start:.1f}s"
    print(f"\n{answered} requests on one keep-alive connection over {time.monotonic() - start:.1f}s (request_timeout 1s)")
    assert answered >= 6


def test_request_timeout_default_is_10s(node_factory):
    node = node_factory()
    assert edge_log(node)["request_timeout"] == "10s"
    sock = open_socket(node)
    elapsed = time_to_close(sock, time.monotonic(), 10 + MARGIN)
    print(f"\ndefault request_timeout: an idle socket was closed after {elapsed:.2f}s")
    assert 9.9 <= elapsed <= 10 + MARGIN


def test_upgraded_websocket_is_not_subject_to_request_timeout(node_factory, connect):
    node = node_factory(SWITCHBOARD_SERVER_REQUEST_TIMEOUT="1s")
    alice = connect(node, unique_user("alice"))
    idle = open_socket(node)
    opened = time.monotonic()
    time_to_close(idle, opened, 1 + MARGIN)  # the timeout fired for the plain socket...
    while time.monotonic() - opened < 2.5:   # ...and the WebSocket outlives 2.5 timeouts
        select.select([], [], [], 0.1)
    alice.heartbeat()
    assert alice.is_open


def test_graceful_shutdown_does_not_wait_for_idle_sockets(node_factory):
    node = node_factory(SWITCHBOARD_SERVER_REQUEST_TIMEOUT="60s")
    socks = [open_socket(node) for _ in range(5)]
    keep = open_socket(node)
    keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(keep).startswith(b"HTTP/1.1 200")
    start = time.monotonic()
    problems = node.stop()  # SIGTERM; the node has 10 s to stop
    elapsed = time.monotonic() - start
    print(f"\nSIGTERM with 5 idle sockets and an idle keep-alive one (request_timeout 60s): exited after {elapsed:.2f}s")
    assert not problems, problems
    assert elapsed < 5, "shutdown waited for idle connections"
    assert all(closed_by_server(s) for s in socks + [keep])


# ---------------------------------------------------------------------------------------------
# Malformed requests


def test_malformed_request_answered_400_and_closed(node_factory):
    # A long request timeout: the close must come from the error, not from the timeout.
    node = node_factory(SWITCHBOARD_SERVER_REQUEST_TIMEOUT="30s")

    sock = open_socket(node)
    sent_at = time.monotonic()
    sock.sendall(b"HELLO\r\n\r\n")
    response = read_response(sock)
    elapsed = time_to_close(sock, sent_at, 5)
    print(f"\n`HELLO`: {response.splitlines()[0]!r}, closed after {elapsed * 1000:.0f} ms")
    assert response.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in response.lower()

    # The same on a keep-alive connection after a good request: one 400, then the close.
    sock = open_socket(node)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(sock).startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n")
    rest = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        select.select([sock], [], [], 0.05)
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        rest += chunk
    else:
        raise AssertionError("not closed within 5s of the malformed request")
    assert rest.startswith(b"HTTP/1.1 400 ") and rest.count(b"HTTP/1.1") == 1, rest

    # A malformed upgrade-looking request too; the node serves on.
    sock = open_socket(node)
    sock.sendall(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: -5\r\n\r\n")
    assert read_response(sock).startswith(b"HTTP/1.1 400 ")
    time_to_close(sock, time.monotonic(), 5)
    assert http_get(node.http_url, "/healthz").status == 200


# ---------------------------------------------------------------------------------------------
# Pending-connection limits at a low fd limit


NOFILE = 256


def node_fds(node: Node) -> int:
    return len(os.listdir(f"/proc/{node.proc.pid}/fd"))


def hold_idle_sockets(node: Node, sources: list[str], count: int) -> list[socket.socket]:
    socks = []
    for i in range(count):
        socks.append(open_socket(node, sources[i % len(sources)]))
    return socks


def open_ones(socks: list[socket.socket]) -> list[int]:
    return [i for i, s in enumerate(socks) if not closed_by_server(s)]


@pytest.mark.parametrize("sources", [["127.0.0.2"], [f"127.0.0.{n}" for n in range(2, 7)]], ids=["one-address", "five-addresses"])
def test_idle_sockets_never_starve_healthz_or_websockets(node_factory, connect, sources):
    node = node_factory(
        launcher=["prlimit", f"--nofile={NOFILE}:{NOFILE}"],
        SWITCHBOARD_SERVER_REQUEST_TIMEOUT="60s",  # the sockets stay idle for the whole test: eviction, not the timeout
    )
    limits = edge_log(node)
    total, per_address = int(limits["max_pending_connections"]), int(limits["max_pending_connections_per_address"])
    assert int(limits["nofile_soft"]) == NOFILE
    assert total == (NOFILE - 64) // 2 and per_address == 64, limits
    baseline = node_fds(node)

    socks = hold_idle_sockets(node, sources, 400)
    expected = min(total, per_address * len(sources))
    held = wait_until(lambda: (lambda o: o if len(o) == expected else None)(open_ones(socks)), 10,
                      f"the node to hold exactly {expected} of the 400 idle sockets")
    fds = node_fds(node)
    print(f"\nnofile {NOFILE}: limits {per_address}/address, {total} in all; 400 idle sockets from "
          f"{len(sources)} address(es): node holds {len(held)}, closed {400 - len(held)}; node fds {baseline} "
          f"at start, {fds} now")
    assert fds < NOFILE - 32, f"the node is near its fd limit: {fds}"
    # The oldest gave way: what is left is among the newest (accept order may differ slightly
    # between event loops).
    assert min(held) >= 400 - expected - 32, f"old sockets survived: {held[:10]}…"
    per_source: dict[str, int] = {}
    for i in held:
        per_source[sources[i % len(sources)]] = per_source.get(sources[i % len(sources)], 0) + 1
    assert max(per_source.values()) <= per_address, per_source

    # Newcomers are served, from a fresh address and from an attacking one.
    for src in ("127.0.0.1", sources[0]):
        sock = open_socket(node, src)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200"), f"/healthz from {src}"
        sock.close()

    # A real upgrade and a message round trip.
    alice = connect(node, unique_user("alice"), source_address=(sources[-1], 0))
    bob = connect(node, unique_user("bob"))
    alice.send(to=bob.user, content="through the siege")
    msg = bob.recv()
    assert msg.content == "through the siege" and msg.sender == alice.user
    assert node_fds(node) < NOFILE - 32
    for s in socks:
        s.close()


def rss_kib(node: Node) -> int:
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_partial_request_heads_from_one_address_cost_bounded_memory(node_factory):
    """One address sends 200 connections' worth of 48 KiB unfinished request heads: it keeps at most
    its 64 connections, and the node's RSS grows by a few MiB, not by what was sent."""
    node = node_factory(SWITCHBOARD_SERVER_REQUEST_TIMEOUT="3s")
    before = rss_kib(node)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (48 * 1024)
    socks = []
    for _ in range(200):
        sock = open_socket(node, "127.0.0.9")
        try:
            sock.sendall(head)  # non-blocking: 48 KiB fits the socket buffers
        except (BlockingIOError, ConnectionResetError, BrokenPipeError):
            pass
        socks.append(sock)
    wait_until(lambda: len(open_ones(socks)) == 64, 10, "64 connections of 127.0.0.9 held")
    peak = rss_kib(node)
    wait_until(lambda: not open_ones(socks), 3 + MARGIN + 1, "the request timeout to close the rest")
    after = rss_kib(node)
    print(f"\n200 × 48 KiB unfinished heads from one address: node RSS {before // 1024} MiB before, "
          f"{peak // 1024} MiB while 64 were held, {after // 1024} MiB after they timed out")
    assert peak - before < 32 * 1024, f"RSS grew by {(peak - before) // 1024} MiB"
    assert http_get(node.http_url, "/healthz").status == 200


def test_connections_from_a_trusted_proxy_count_only_in_the_total(node_factory):
    node = node_factory(
        SWITCHBOARD_SERVER_REQUEST_TIMEOUT="60s",
        SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS_PER_ADDRESS="4",
        SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS="30",
        SWITCHBOARD_SERVER_TRUSTED_PROXIES="127.0.0.1",
    )
    proxied = hold_idle_sockets(node, ["127.0.0.1"], 10)
    direct = hold_idle_sockets(node, ["127.0.0.2"], 10)
    wait_until(lambda: len(open_ones(direct)) == 4, 5, "4 direct sockets held")
    assert len(open_ones(proxied)) == 10, "a trusted proxy's connections are not limited per address"
    # The total still binds them: 30 in all, the oldest idle giving way.
    more = hold_idle_sockets(node, ["127.0.0.1"], 20)
    wait_until(lambda: len(open_ones(proxied + direct + more)) == 30, 5, "30 sockets held in all")
    print(f"\nproxied held {len(open_ones(proxied))}+{len(open_ones(more))}, direct {len(open_ones(direct))} (limits 4/address, 30 in all)")
    assert len(open_ones(more)) == 20 and len(open_ones(direct)) <= 4
    for s in proxied + direct + more:
        s.close()


# ---------------------------------------------------------------------------------------------
# X-Forwarded-For


def invite_ip(node: Node, caller: Client, callee: Client) -> str:
    caller.send_signal(callee.user, "call-invite", callType="audio")
    call_id = callee.expect_signal("call-invite").json["callId"]
    rec = node.wait_for_log(lambda r: r.get("event") == "webrtc_call_invite" and r.get("call_id") == call_id,
                            f"invite log line for {call_id}")
    caller.send_signal(callee.user, "call-hangup", callId=call_id)
    callee.expect_signal("call-hangup")
    return rec["metadata"]["ip"]


def test_forwarded_for_ignored_from_untrusted_peers(node_factory, connect):
    node = node_factory()  # server.trusted_proxies: none
    bob = connect(node, unique_user("bob"))
    mallory = connect(node, unique_user("mallory"), extra_headers={"X-Forwarded-For": "203.0.113.9"},
                      source_address=("127.0.0.3", 0))
    assert invite_ip(node, mallory, bob) == "127.0.0.3"


def test_forwarded_for_believed_from_a_trusted_proxy(node_factory, connect):
    node = node_factory(SWITCHBOARD_SERVER_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    bob = connect(node, unique_user("bob"), source_address=("127.0.0.4", 0))
    # Through the proxy (127.0.0.1): the right-most untrusted entry, not the client-written first one.
    alice = connect(node, unique_user("alice"),
                    extra_headers={"X-Forwarded-For": "198.51.100.66, 203.0.113.9, 10.1.2.3"})
    assert invite_ip(node, alice, bob) == "203.0.113.9"
    # Not through it: the header is the client's own and ignored.
    carol = connect(node, unique_user("carol"), extra_headers={"X-Forwarded-For": "203.0.113.10"},
                    source_address=("127.0.0.5", 0))
    assert invite_ip(node, carol, bob) == "127.0.0.5"


# ---------------------------------------------------------------------------------------------
# metrics.port


def test_metrics_on_their_own_port_and_not_on_the_main_one(node_factory):
    metrics_port = _free_port()
    node = node_factory(SWITCHBOARD_METRICS_PORT=str(metrics_port), SWITCHBOARD_SERVER_REQUEST_TIMEOUT="1s")
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    wait_until(lambda: node.log_records() and any(r.get("message") == "metrics listening" for r in node.log_records()),
               10, "the metrics listener")
    resp = http_get(metrics_url, "/metrics")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"switchboard_websocket_connections" in resp.body
    assert http_get(node.http_url, "/metrics").status == 404
    assert http_get(metrics_url, "/healthz").status == 404  # the metrics listener serves nothing else
    assert http_get(node.http_url, "/healthz").status == 200
    # The metrics listener is guarded like the main one.
    sock = socket.create_connection(("127.0.0.1", metrics_port), timeout=5)
    sock.setblocking(False)
    elapsed = time_to_close(sock, time.monotonic(), 1 + MARGIN)
    print(f"\n/metrics on :{metrics_port}, 404 on the main port; an idle metrics socket closed after {elapsed:.2f}s")
    assert elapsed >= 0.9


def test_metrics_stay_on_the_main_port_by_default(node):
    assert http_get(node.http_url, "/metrics").status == 200


# ---------------------------------------------------------------------------------------------
# jwt_secret


def start_with_secret(tmp_path: Path, secret: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["SWITCHBOARD_JWT_SECRET"] = secret
    return subprocess.run(
        [str(BINARY), "serve", "--host", "127.0.0.1", "--port", "0", "--database", f"sqlite:{tmp_path / 'c.sqlite'}"],
        env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )


def test_short_jwt_secret_stops_startup(tmp_path, node_factory):
    secret = "short-secret-only-31-bytes-long"
    assert len(secret.encode()) == 31
    proc = start_with_secret(tmp_path, secret)
    print(f"\n31-byte secret: exit {proc.returncode}, stderr {proc.stderr.strip()!r}")
    assert proc.returncode != 0
    assert "jwt_secret" in proc.stderr and "at least 32 bytes" in proc.stderr
    assert secret not in proc.stderr + proc.stdout
    # 32 bytes is enough.
    ok = node_factory(SWITCHBOARD_JWT_SECRET="k" * 32)
    assert http_get(ok.http_url, "/healthz").status == 200
