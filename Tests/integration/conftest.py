"""Fixtures: real `switchboard serve` node processes on loopback, and clients for them.

- `node`: one node per test module, default configuration (fast).
- `node_factory(**env)`: a fresh node for this test, with configuration overrides given as
  environment variables (`SWITCHBOARD_CALLS_RING_TIMEOUT="1s"`, ...); `launcher=[...]` runs it
  under another command (`["prlimit", "--nofile=256:256"]`).
- `connect(node, ...)`: an authenticated `Client` closed at teardown.

The binary is `$SWITCHBOARD_BIN`, default `<repo>/.build/debug/switchboard`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
pytest_plugins = ["cluster"]  # cluster.py: redis-server and multi-node fixtures (test_cluster_*.py)

from switchboard_client import (  # noqa: E402
    SECRET,
    Client,
    http_get,
    make_token,
    unique_user,
    wait_until,
)

REPO = HERE.parents[1]
BINARY = Path(os.environ.get("SWITCHBOARD_BIN") or REPO / ".build" / "debug" / "switchboard")
READY_TIMEOUT = float(os.environ.get("SWITCHBOARD_TEST_READY_TIMEOUT", "30"))
STOP_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeCrashed(AssertionError):
    pass


class Node:
    """One `switchboard serve` process, its log files and its SQLite database."""

    def __init__(self, workdir: Path, node_id: str, env: dict[str, str], secret: str = SECRET,
                 launcher: list[str] | None = None):
        self.workdir = workdir
        self.node_id = node_id
        self.secret = secret
        self.launcher = list(launcher or [])  # run the node under this, e.g. ["prlimit", "--nofile=256:256"]
        self.overrides = dict(env)
        self.db_path = workdir / "calls.sqlite"
        self.log_path = workdir / "stdout.log"
        self.err_path = workdir / "stderr.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "Node":
        if not BINARY.exists():
            raise AssertionError(
                f"switchboard binary not found at {BINARY} (build it with `swift build`, "
                "or set SWITCHBOARD_BIN)"
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env["SWITCHBOARD_JWT_SECRET"] = self.secret
        env.update(self.overrides)
        last_error = ""
        for _attempt in range(3):
            self.port = _free_port()
            cmd = self.launcher + [
                str(BINARY), "serve",
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--node-id", self.node_id,
                "--database", f"sqlite:{self.db_path}",
            ] + self.serve_args()
            with open(self.log_path, "ab") as out, open(self.err_path, "ab") as err:
                self.proc = subprocess.Popen(
                    cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=self.workdir
                )
            try:
                self._wait_ready()
                return self
            except NodeCrashed as exc:
                last_error = str(exc)
                if "address already in use" not in last_error.lower():
                    raise
                # Lost the race for the free port: try another one.
        raise AssertionError(f"node {self.node_id} could not bind a port: {last_error}")

    def serve_args(self) -> list[str]:
        """Flags beyond the defaults (subclasses add e.g. `--redis`)."""
        return []

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise NodeCrashed(
                    f"node {self.node_id} exited with code {self.proc.returncode} during startup\n"
                    + self.tail()
                )
            try:
                if http_get(self.http_url, "/healthz", timeout=1).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"node {self.node_id} not ready (GET /healthz != 200) within {READY_TIMEOUT}s\n"
                    + self.tail()
                )
            time.sleep(0.05)  # readiness polling interval, bounded by the deadline

    def stop(self) -> list[str]:
        """SIGTERM, then SIGKILL after a bound. Returns problems (crash, no graceful stop)."""
        problems: list[str] = []
        proc = self.proc
        if proc is None:
            return problems
        self.proc = None
        code = proc.poll()
        if code is not None:
            problems.append(f"node {self.node_id} crashed during the test (exit code {code})")
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                problems.append(f"node {self.node_id} did not stop within {STOP_TIMEOUT}s of SIGTERM")
            else:
                if code not in (0, -signal.SIGTERM):
                    problems.append(f"node {self.node_id} exited with code {code} after SIGTERM")
        if problems:
            problems.append(self.tail())
        return problems

    def tail(self, lines: int = 40) -> str:
        def last(path: Path) -> str:
            try:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            except FileNotFoundError:
                return "(none)"

        return (
            f"--- {self.log_path} (last {lines} lines) ---\n{last(self.log_path)}\n"
            f"--- {self.err_path} (last {lines} lines) ---\n{last(self.err_path)}"
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def __repr__(self) -> str:
        return f"Node({self.node_id} at {self.http_url}, logs {self.workdir})"

    # -- logs --------------------------------------------------------------------------------

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON object line of the node's standard output so far."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                records.append(obj)
        return records

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 5.0) -> dict:
        def find() -> dict | None:
            for rec in self.log_records():
                if predicate(rec):
                    return rec
            return None

        try:
            return wait_until(find, timeout, f"log line: {what}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.tail(20)}") from None

    # -- call records --------------------------------------------------------------------------

    def api_calls(self, user: str) -> list[dict[str, Any]]:
        resp = http_get(self.http_url, "/api/calls", token=make_token(user, secret=self.secret))
        assert resp.status == 200, f"GET /api/calls as {user}: HTTP {resp.status} {resp.body!r}"
        body = resp.json()
        assert isinstance(body, dict) and isinstance(body.get("calls"), list), f"bad /api/calls body: {body}"
        return body["calls"]

    def wait_for_call_record(self, user: str, call_id: str, status: int, timeout: float = 5.0) -> dict:
        """Polls `GET /api/calls` as `user` until the record `call_id` has `status`."""
        seen: list[Any] = []

        def find() -> dict | None:
            for rec in self.api_calls(user):
                if rec.get("call_id") == call_id:
                    seen[:] = [rec]
                    if rec.get("status") == status:
                        return rec
            return None

        try:
            return wait_until(find, timeout, f"call record {call_id} with status {status}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen: {seen}") from None

    def db_call_record(self, call_id: str) -> dict[str, Any] | None:
        """The `call_records` row for `call_id`, read straight from the SQLite file."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM call_records WHERE call_id = ?", (call_id,)).fetchone()
            return dict(row) if row is not None else None
        finally:
            conn.close()


class NodeFactory:
    def __init__(self, tmp_path_factory: pytest.TempPathFactory, prefix: str):
        self.tmp_path_factory = tmp_path_factory
        self.prefix = prefix
        self.nodes: list[Node] = []

    def __call__(self, node_id: str | None = None, launcher: list[str] | None = None, **env: str) -> Node:
        for key in env:
            assert key.startswith("SWITCHBOARD_"), f"configuration overrides are env vars: {key}"
        node_id = node_id or f"{self.prefix}-{len(self.nodes) + 1}"
        workdir = self.tmp_path_factory.mktemp(node_id)
        node = Node(workdir, node_id, {k: str(v) for k, v in env.items()}, launcher=launcher)
        self.nodes.append(node)
        return node.start()

    def stop_all(self) -> None:
        problems: list[str] = []
        for node in self.nodes:
            problems += node.stop()
        self.nodes.clear()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def node_factory(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[NodeFactory]:
    """Fresh nodes for one test, for special configuration: `node_factory(SWITCHBOARD_X="1s")`."""
    factory = NodeFactory(tmp_path_factory, f"node-{request.node.name[:40]}".replace("[", "-").replace("]", ""))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Node]:
    """One node with default configuration, shared by the tests of a module.

    A module can set `NODE_ENV = {...}` for overrides that all its tests share.
    """
    factory = NodeFactory(tmp_path_factory, f"node-{request.module.__name__.split('.')[-1]}")
    env = getattr(request.module, "NODE_ENV", {})
    started = factory(**env)
    yield started
    factory.stop_all()


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    """`connect(node, user=None, name=None, via="query", token=None, **client_kwargs)` → Client."""
    opened: list[Client] = []

    def _connect(
        node: Node,
        user: str | None = None,
        name: str | None = None,
        via: str = "query",
        token: str | None = None,
        **kwargs: Any,
    ) -> Client:
        user = user or unique_user()
        token = token or make_token(user, name=name, secret=node.secret)
        client = Client(node.ws_url, token, via, user=user, **kwargs)
        opened.append(client)
        return client

    yield _connect
    for client in opened:
        client.close()


@pytest.fixture
def pair(node: Node, connect: Callable[..., Client]) -> tuple[Client, Client]:
    """Two connected users on the module's node: (alice, bob) with display names."""
    return connect(node, unique_user("alice"), name="Alice"), connect(node, unique_user("bob"), name="Bob")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On a failing test, attach the tail of every node's logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("node", "node_factory"):
            value = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            nodes = [value] if isinstance(value, Node) else getattr(value, "nodes", [])
            for n in nodes:
                report.sections.append((f"node {n.node_id} logs", n.tail(25)))
