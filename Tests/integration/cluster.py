"""Cluster fixtures: a real `redis-server` and several `switchboard serve` nodes on it (PROTOCOL.md §6).

Loaded as a pytest plugin (`pytest_plugins = ["cluster"]` in conftest.py), so its fixtures and
hooks are available to every test module.

- `RedisServer`: a real `redis-server` on a free port on 127.0.0.1 (`--save "" --appendonly no`, in a
  tmp dir): `start()`, `stop()` (SIGTERM), `kill()` (SIGKILL), `restart()` (a new, empty server on the
  SAME port), `cli(*args)` (a raw RESP client: one short connection per command).
- `redis_server`: one Redis per test module. Modules that inject faults into Redis override it with
  `fresh_redis_server` (one per test).
- `cluster_factory(n, **env)`: starts n nodes `n1`, `n2`, … on `redis_server` and returns them as a
  list; a second call adds more (`n3`, …). Every node runs until teardown, which stops everything
  even when the test failed. `n1` gets Redis as the `--redis` flag, the others as
  `SWITCHBOARD_REDIS_URL`, so both ways of configuring it are exercised.
- `join(node, user=None, name=None)`: connect a user to a node and wait (with a deadline) until
  `webrtc:presence` says that user is on that node, so that other nodes can route to them.
- Helpers: `presence_api`, `final_record` / `wait_final_record` (the latest `updated_at` among the
  nodes' SQLite databases), `simultaneously` (run callables at the same moment from threads),
  `drain`, `stream_across` (numbered cross-node messages with a fault injected part-way),
  `rss_bytes` / `RssSampler` (a node process's resident memory, and its peak over a block).
"""

from __future__ import annotations

import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest

from conftest import READY_TIMEOUT, Node, NodeCrashed, _free_port
from switchboard_client import (
    Client,
    Received,
    http_get,
    make_token,
    unique_user,
    wait_until,
)

REDIS_SERVER = shutil.which("redis-server")
REDIS_READY_TIMEOUT = 10.0

PRESENCE = "webrtc:presence"
NODES = "webrtc:nodes"
SIGNALS = "webrtc:signals"


def inbox(node_id: str) -> str:
    """A node's own pub/sub channel."""
    return f"{SIGNALS}:{node_id}"


def user_call_key(user: str) -> str:
    return f"webrtc:user-call:{user}"


def call_key(call_id: str) -> str:
    return f"webrtc:call:{call_id}"


# ---------------------------------------------------------------------------------------------
# A raw RESP client


class RedisReplyError(Exception):
    """Redis answered with an error reply (`-ERR …`)."""


def _encode_command(args: Sequence[Any]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        else:
            data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_reply(f) -> Any:
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"truncated redis reply: {line!r}")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisReplyError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("truncated redis bulk reply")
        data = data[:-2]
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read_reply(f) for _ in range(n)]
    raise ConnectionError(f"unexpected redis reply: {line!r}")


def resp_command(port: int, *args: Any, timeout: float = 5.0, password: str | None = None) -> Any:
    """Runs one command on a fresh connection to 127.0.0.1:port; returns the decoded reply.
    With `password`, the connection sends `AUTH password` first (a server with `requirepass`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with sock.makefile("rb") as f:
            if password is not None:
                sock.sendall(_encode_command(["AUTH", password]))
                _read_reply(f)
            sock.sendall(_encode_command(args))
            return _read_reply(f)


# ---------------------------------------------------------------------------------------------
# redis-server


class RedisServer:
    """A real `redis-server` process on 127.0.0.1, with an empty, non-persistent dataset."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "redis.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        return f"RedisServer(127.0.0.1:{self.port}, pid {self.proc.pid if self.proc else None})"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "RedisServer":
        """Starts redis-server: on a free port the first time, on the same port afterwards."""
        assert REDIS_SERVER, "redis-server is not on PATH"
        assert not self.alive, "redis-server is already running"
        fixed_port = self.port != 0
        last = ""
        for _attempt in range(1 if fixed_port else 3):
            if not fixed_port:
                self.port = _free_port()
            cmd = [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--dbfilename", f"never-{self.port}.rdb",
                "--daemonize", "no",
                "--protected-mode", "no",
                "--logfile", str(self.log_path),
            ]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT, cwd=self.workdir)
            self.starts += 1
            try:
                self._wait_ready()
                return self
            except NodeCrashed as exc:
                last = str(exc)
                if fixed_port and "address already in use" in last.lower():
                    # The old listener may linger for a moment after SIGKILL: a bounded retry.
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:
                        time.sleep(0.1)  # waiting for the kernel to free the port, bounded
                        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                                     stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.STDOUT, cwd=self.workdir)
                        try:
                            self._wait_ready()
                            return self
                        except NodeCrashed as again:
                            last = str(again)
                    break
        raise AssertionError(f"redis-server could not start on port {self.port}: {last}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + REDIS_READY_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise NodeCrashed(
                    f"redis-server exited with code {self.proc.returncode} during startup\n{self.tail()}"
                )
            try:
                if resp_command(self.port, "PING", timeout=1) == "PONG":
                    return
            except (OSError, ConnectionError, RedisReplyError):
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"redis-server not answering PING within {REDIS_READY_TIMEOUT}s\n"
                                     + self.tail())
            time.sleep(0.02)  # readiness polling interval, bounded by the deadline

    def stop(self) -> None:
        """SIGTERM (nothing is saved: `--save ""`), SIGKILL after 5 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: Redis vanishes at once, its dataset with it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait()

    def restart(self) -> "RedisServer":
        """A new, empty redis-server on the same port (the running one, if any, is killed first)."""
        self.kill()
        return self.start()

    def tail(self, lines: int = 20) -> str:
        try:
            text = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            text = "(none)"
        return f"--- {self.log_path} (last {lines} lines) ---\n{text}"

    # -- commands ----------------------------------------------------------------------------

    def cli(self, *args: Any, timeout: float = 5.0, password: str | None = None) -> Any:
        """One Redis command, e.g. `cli("HGET", "webrtc:presence", user)`; error replies raise.
        `password`: AUTH first (while the test has set `requirepass`)."""
        return resp_command(self.port, *args, timeout=timeout, password=password)

    def presence(self) -> dict[str, str]:
        flat = self.cli("HGETALL", PRESENCE) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def presence_of(self, user: str) -> str | None:
        return self.cli("HGET", PRESENCE, user)

    def nodes(self) -> dict[str, float]:
        flat = self.cli("ZRANGE", NODES, 0, -1, "WITHSCORES") or []
        return {k: float(v) for k, v in zip(flat[0::2], flat[1::2])}

    def numsub(self, channel: str) -> int:
        reply = self.cli("PUBSUB", "NUMSUB", channel)
        return int(reply[1])

    def wait_presence(self, user: str, node_id: str | None, timeout: float = 5.0) -> None:
        """Waits until `HGET webrtc:presence user` is `node_id` (None: the entry is gone)."""
        seen: list[Any] = []

        def check() -> bool:
            value = self.presence_of(user)
            seen[:] = [value]
            return value == node_id

        try:
            wait_until(check, timeout, f"HGET {PRESENCE} {user} == {node_id!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {seen[0] if seen else '?'!r}") from None


# ---------------------------------------------------------------------------------------------
# Cluster nodes


class ClusterNode(Node):
    """A node in cluster mode: ready when /readyz is 200, it heartbeats and its subscriber is up."""

    def __init__(self, workdir: Path, node_id: str, env: dict[str, str], redis: RedisServer,
                 redis_flag: bool):
        super().__init__(workdir, node_id, env)
        self.redis = redis
        self.redis_flag = redis_flag
        if not redis_flag:
            self.overrides["SWITCHBOARD_REDIS_URL"] = redis.url
        self.killed = False

    def serve_args(self) -> list[str]:
        return ["--redis", self.redis.url] if self.redis_flag else []

    def start(self) -> "ClusterNode":
        super().start()
        self._wait_cluster_ready()
        return self

    def _wait_cluster_ready(self) -> None:
        steps: list[tuple[str, Callable[[], bool]]] = [
            ("GET /readyz == 200", lambda: http_get(self.http_url, "/readyz", timeout=1).status == 200),
            (f"ZSCORE {NODES} {self.node_id} present",
             lambda: self.redis.cli("ZSCORE", NODES, self.node_id) is not None),
            (f"a subscriber on {inbox(self.node_id)}", lambda: self.redis.numsub(inbox(self.node_id)) >= 1),
            (f"a subscriber on {SIGNALS}", lambda: self.redis.numsub(SIGNALS) >= 1),
        ]
        for what, check in steps:
            def probe(check: Callable[[], bool] = check) -> bool:
                assert self.alive, f"node {self.node_id} exited (code {self.proc.poll() if self.proc else '?'})"
                try:
                    return check()
                except (OSError, ConnectionError):
                    return False

            try:
                wait_until(probe, READY_TIMEOUT, f"node {self.node_id}: {what}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{self.tail(30)}") from None

    # -- faults ------------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL: the node vanishes without any cleanup."""
        proc, self.proc = self.proc, None
        assert proc is not None and proc.poll() is None, f"node {self.node_id} is not running"
        proc.kill()
        proc.wait()
        self.killed = True

    def terminate(self) -> subprocess.Popen[bytes]:
        """SIGTERM; returns the process (the test waits for it). Teardown leaves it alone."""
        proc, self.proc = self.proc, None
        assert proc is not None and proc.poll() is None, f"node {self.node_id} is not running"
        proc.send_signal(signal.SIGTERM)
        return proc

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def readyz(self) -> int:
        return http_get(self.http_url, "/readyz", timeout=3).status


class ClusterFactory:
    """`cluster_factory(n, **env)` → [n1, …, nn]; later calls add nodes with the next ids."""

    def __init__(self, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory):
        self.redis = redis
        self.tmp_path_factory = tmp_path_factory
        self.nodes: list[ClusterNode] = []

    def __call__(self, n: int = 2, **env: Any) -> list[ClusterNode]:
        return [self.add(**env) for _ in range(n)]

    def add(self, node_id: str | None = None, **env: Any) -> ClusterNode:
        for key in env:
            assert key.startswith("SWITCHBOARD_"), f"configuration overrides are env vars: {key}"
        node_id = node_id or f"n{len(self.nodes) + 1}"
        workdir = self.tmp_path_factory.mktemp(node_id)
        node = ClusterNode(workdir, node_id, {k: str(v) for k, v in env.items()}, self.redis,
                           redis_flag=(node_id == "n1"))
        self.nodes.append(node)
        try:
            return node.start()
        except BaseException:
            # Reported here already: teardown should not report the same dead node again.
            proc, node.proc = node.proc, None
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            raise

    def stop_all(self) -> None:
        problems: list[str] = []
        for node in self.nodes:
            problems += node.stop()
        self.nodes.clear()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------------
# Fixtures


def _redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for a module's tests (each test's cluster flushes it first)."""
    yield from _redis(tmp_path_factory)


@pytest.fixture
def fresh_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that kill, restart or pause it."""
    yield from _redis(tmp_path_factory)


@pytest.fixture
def cluster_factory(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFactory]:
    if not redis_server.alive:
        redis_server.start()  # a previous test of the module left it down
    redis_server.cli("FLUSHALL")  # the previous test's nodes are stopped: start from an empty dataset
    factory = ClusterFactory(redis_server, tmp_path_factory)
    yield factory
    factory.stop_all()


@pytest.fixture
def join(connect: Callable[..., Client]) -> Callable[..., Client]:
    """`join(node, user=None, name=None, **kw)` → a connected Client, once presence shows it on `node`."""

    def _join(node: ClusterNode, user: str | None = None, name: str | None = None, **kw: Any) -> Client:
        client = connect(node, user or unique_user(), name=name, **kw)
        node.redis.wait_presence(client.user, node.node_id)
        return client

    return _join


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On a failing cluster test, attach every node's log tail and the Redis log."""
    outcome = yield
    report = outcome.get_result()
    if report.when in ("call", "setup") and report.failed and hasattr(item, "funcargs"):
        factory = item.funcargs.get("cluster_factory")
        for n in getattr(factory, "nodes", []):
            report.sections.append((f"node {n.node_id} logs", n.tail(25)))
        redis = item.funcargs.get("redis_server")
        if isinstance(redis, RedisServer):
            report.sections.append(("redis log", redis.tail(15)))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: runs several nodes over a real redis-server")
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")


# ---------------------------------------------------------------------------------------------
# Helpers


def rss_bytes(pid: int) -> int:
    """A process's resident set size in bytes (`VmRSS` in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Samples a process's RSS from a thread every `interval` seconds while in a `with` block;
    `peak` is the highest value seen (also read once on entry and on exit)."""

    def __init__(self, pid: int, interval: float = 0.005):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            self.peak = max(self.peak, rss_bytes(self.pid))
            self.samples += 1
        except (OSError, AssertionError):
            pass  # the process is gone: the test notices that itself

    def _run(self) -> None:
        while not self._stop.wait(self.interval):  # the sampling period, not a synchronisation
            self._sample()

    def __enter__(self) -> "RssSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()


def presence_api(node: Node, user: str) -> dict[str, Any]:
    """`GET /api/presence/{user}` on `node`, as some other authenticated user."""
    resp = http_get(node.http_url, f"/api/presence/{user}", token=make_token(unique_user("observer")))
    assert resp.status == 200, f"GET /api/presence/{user} on {node.node_id}: HTTP {resp.status} {resp.body!r}"
    body = resp.json()
    assert isinstance(body, dict) and body.get("user") == user, f"bad presence body: {body}"
    return body


def db_rows(nodes: Sequence[Node], call_id: str) -> dict[str, dict[str, Any]]:
    """node id → the `call_records` row for `call_id` in that node's SQLite file (absent: left out)."""
    rows: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if not node.db_path.exists():
            continue
        try:
            row = node.db_call_record(call_id)
        except sqlite3.OperationalError:
            continue  # no table yet
        if row is not None:
            rows[node.node_id] = row
    return rows


def final_record(nodes: Sequence[Node], call_id: str) -> dict[str, Any] | None:
    """The cluster's final record of a call: the row with the latest `updated_at` among the nodes'
    databases (fixed-width ISO-8601 text, so text order is time order). On a tie the higher status
    wins (the terminal states are the higher numbers)."""
    rows = list(db_rows(nodes, call_id).values())
    if not rows:
        return None
    return max(rows, key=lambda r: (r["updated_at"], r["status"]))


def wait_final_record(nodes: Sequence[Node], call_id: str, status: int, timeout: float = 5.0) -> dict[str, Any]:
    """Waits until the cluster's final record of `call_id` has `status`; then checks that every
    node's row has its times in order (created ≤ updated, start ≤ end)."""
    try:
        rec = wait_until(lambda: (r := final_record(nodes, call_id)) is not None and r["status"] == status and r,
                         timeout, f"final record of {call_id} with status {status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; rows per node: {db_rows(nodes, call_id)}") from None
    for node_id, row in db_rows(nodes, call_id).items():
        assert row["created_at"] <= row["updated_at"], f"{node_id}: updated before created: {row}"
        if row["start_time"] is not None and row["end_time"] is not None:
            assert row["start_time"] <= row["end_time"], f"{node_id}: call ended before it started: {row}"
    return rec


def simultaneously(*actions: Callable[[], Any]) -> list[Any]:
    """Runs the callables in threads released by one barrier; returns their results, re-raises errors."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(i: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait(5)
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    if errors:
        raise errors[0]
    return results


def drain(clients: Sequence[Client], within: float) -> dict[str, list[Received]]:
    """Everything the clients receive during `within` seconds (absence checks: keep `within` short)."""
    got: dict[str, list[Received]] = {c.user: [] for c in clients}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for c in clients:
            while (msg := c.try_recv(0.02)) is not None:
                got[c.user].append(msg)
    return got


def is_error(msg: Received, reason: str | None = None) -> bool:
    return (msg.contentType == 6 and msg.sender == "" and isinstance(msg.json, dict)
            and msg.json.get("type") == "error" and (reason is None or msg.json.get("reason") == reason))


@dataclass
class StreamResult:
    """What happened to a numbered stream `src` → `dst`."""
    src: str
    dst: str
    sent: int
    delivered: list[int] = field(default_factory=list)  # sequence numbers as received by dst
    unavailable: int = 0  # `unavailable` errors received by src
    unexpected: list[Received] = field(default_factory=list)

    @property
    def accounted(self) -> int:
        return len(self.delivered) + self.unavailable

    def __str__(self) -> str:
        return (f"{self.src}→{self.dst}: sent {self.sent}, delivered {len(self.delivered)}, "
                f"unavailable errors {self.unavailable}, unexpected {len(self.unexpected)}")


def stream_across(pairs: Sequence[tuple[Client, Client]], count: int, fault_at: int,
                  fault: Callable[[], Any], pace: float, settle: float = 15.0) -> list[StreamResult]:
    """Sends `count` numbered text messages along each (src, dst) pair, interleaved, and calls
    `fault()` just before message `fault_at`. Then reads until every message is accounted for
    (delivered to dst, or an `unavailable` error to src) or `settle` seconds pass, and finally
    listens a little longer so that late duplicates or extra errors would be seen."""
    tag = unique_user("s")
    results = [StreamResult(src.user, dst.user, count) for src, dst in pairs]
    for i in range(count):
        if i == fault_at:
            fault()
        for src, dst in pairs:
            src.send(to=dst.user, content=f"{tag}:{src.user}:{i}")
        time.sleep(pace)  # the send rate of the stream (spreads it over the fault), not a synchronisation

    clients: dict[str, Client] = {}
    for src, dst in pairs:
        clients[src.user] = src
        clients[dst.user] = dst
    by_src = {r.src: r for r in results}
    by_dst_src = {(r.dst, r.src): r for r in results}

    def take(user: str, msg: Received) -> None:
        if msg.contentType == 1 and msg.content.startswith(f"{tag}:"):
            _, sender, seq = msg.content.rsplit(":", 2)
            r = by_dst_src.get((user, sender))
            if r is not None and msg.sender == sender:
                r.delivered.append(int(seq))
                return
        if is_error(msg, "unavailable") and user in by_src:
            by_src[user].unavailable += 1
            return
        for r in results:
            if r.src == user or r.dst == user:
                r.unexpected.append(msg)
                break

    def poll(window: float) -> None:
        for user, c in clients.items():
            while (msg := c.try_recv(window)) is not None:
                take(user, msg)
                window = 0

    deadline = time.monotonic() + settle
    while any(r.accounted < r.sent for r in results) and time.monotonic() < deadline:
        poll(0.05)
    # Absence check: 0.5 s more to catch duplicates or errors that follow a delivery.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        poll(0.05)
    return results


def check_stream(results: Sequence[StreamResult]) -> None:
    """Every message delivered in order without duplicates, or its sender told `unavailable`."""
    for r in results:
        print(r)
        assert not r.unexpected, f"{r}: unexpected messages {r.unexpected[:5]!r}"
        assert r.delivered == sorted(set(r.delivered)), (
            f"{r}: delivered out of order or duplicated: {r.delivered}"
        )
        assert all(0 <= s < r.sent for s in r.delivered), f"{r}: bogus sequence numbers {r.delivered}"
        assert r.accounted == r.sent, (
            f"{r}: {r.sent - r.accounted} message(s) neither delivered nor reported "
            f"(missing: {sorted(set(range(r.sent)) - set(r.delivered))[:40]}…)"
            if r.accounted < r.sent else f"{r}: more deliveries + errors than messages sent"
        )


# ---------------------------------------------------------------------------------------------
# Call helpers (the same flow as test_calls.py, for clients on any nodes)

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}


def candidate(i: int) -> dict:
    return {"candidate": f"candidate:{i} 1 udp 2122260223 192.0.2.{i % 250} {50000 + i} typ host",
            "sdpMid": "0", "sdpMLineIndex": 0}


def invite(caller: Client, callee: Client, call_type: str = "audio", **extra: Any) -> str:
    """caller invites callee; checks the relayed invite and the ringing notice; returns the callId."""
    caller.send_signal(callee.user, "call-invite", callType=call_type, **extra)
    got = callee.expect_signal("call-invite")
    call_id = got.json.get("callId")
    assert isinstance(call_id, str) and call_id, f"relayed invite has no callId: {got!r}"
    assert got.sender == caller.user and got.to == callee.user, got
    ringing = caller.expect_notice("call-ringing")
    assert ringing["callId"] == call_id and ringing["to"] == callee.user, ringing
    return call_id


def start_call(caller: Client, callee: Client, call_type: str = "audio", **extra: Any) -> str:
    call_id = invite(caller, callee, call_type, **extra)
    callee.send_signal(caller.user, "call-accept", callId=call_id)
    accept = caller.expect_signal("call-accept")
    assert accept.json["callId"] == call_id and accept.sender == callee.user, accept
    return call_id


def hang_up(by: Client, other: Client, call_id: str) -> None:
    by.send_signal(other.user, "call-hangup", callId=call_id)
    got = other.expect_signal("call-hangup")
    assert got.json["callId"] == call_id and got.sender == by.user, got


def wait_call_state_released(redis: RedisServer, *users: str, timeout: float = 5.0) -> None:
    """Waits until no `webrtc:user-call:<user>` key is left for the users (they are free again)."""
    keys = [user_call_key(u) for u in users]
    try:
        wait_until(lambda: redis.cli("EXISTS", *keys) == 0, timeout, f"{keys} deleted")
    except AssertionError as exc:
        left = {k: redis.cli("GET", k) for k in keys}
        raise AssertionError(f"{exc}; still there: {left}") from None


def gather(clients: Sequence[Client], done: Callable[[dict[str, list[Received]]], bool],
           timeout: float = 5.0, then: float = 0.3) -> dict[str, list[Received]]:
    """Reads what the clients receive until `done(received)` holds (deadline `timeout`), then
    `then` seconds more: an absence check, so that duplicates or extra notices would be seen."""
    got: dict[str, list[Received]] = {c.user: [] for c in clients}
    deadline = time.monotonic() + timeout
    while not done(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s; received so far: {got!r}")
        for c in clients:
            while (msg := c.try_recv(0.02)) is not None:
                got[c.user].append(msg)
    for user, extra in drain(clients, then).items():
        got[user] += extra
    return got


def of_type(msgs: Sequence[Received], signal_type: str) -> list[Received]:
    """The signals or notices of JSON type `signal_type` among `msgs`."""
    return [m for m in msgs if m.contentType == 6 and m.signal_type == signal_type]
