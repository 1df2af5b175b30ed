"""deploy/local-cluster from the tests: redis-server, N nodes and nginx (ip_hash) on loopback.

- `LocalCluster`: `up()` / `down()` / `status()` around the script, clients that connect through
  nginx from a chosen source address, presence lookups, killing a node.
- `cluster_fixture(...)`: a module-scoped fixture (one cluster per test module), stopped at teardown.

nginx's ip_hash looks at the first three octets of an IPv4 address, so clients that should land
on different nodes connect from 127.0.N.1 with different N (`source(N)`); Linux routes all of
127.0.0.0/8 to the loopback interface, so binding those needs no setup.

The nodes run in cluster mode (`--redis`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from switchboard_client import SECRET, Client, http_get, make_token, unique_user, wait_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPT = REPO / "deploy" / "local-cluster"
BINARY = Path(os.environ.get("SWITCHBOARD_BIN") or REPO / ".build" / "debug" / "switchboard")



def source(n: int) -> str:
    """The loopback source address of client group `n`: 127.0.n.1 (its own ip_hash bucket)."""
    assert 1 <= n <= 254
    return f"127.0.{n}.1"


class LocalCluster:
    def __init__(
        self,
        run_dir: Path,
        nodes: int = 3,
        *,
        redis: bool = True,
        postgres: bool = False,
        env: dict[str, str] | None = None,
        secret: str = SECRET,
    ):
        self.run_dir = run_dir
        self.nodes = nodes
        self.redis = redis
        self.postgres = postgres
        self.secret = secret
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        self.env.update(
            SWITCHBOARD_BIN=str(BINARY),
            SWITCHBOARD_JWT_SECRET=secret,
            SWITCHBOARD_CLUSTER_READY_TIMEOUT=os.environ.get("SWITCHBOARD_TEST_READY_TIMEOUT", "60"),
        )
        self.env.update(env or {})
        self.clients: list[Client] = []
        self.state: dict[str, Any] = {}

    # -- the script ---------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(SCRIPT), *args, "--run-dir", str(self.run_dir)],
            env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"deploy/local-cluster {' '.join(args)} exited with {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc

    def up(self) -> "LocalCluster":
        if not BINARY.exists():
            raise AssertionError(f"switchboard binary not found at {BINARY} (swift build, or SWITCHBOARD_BIN)")
        args = ["up", str(self.nodes)]
        if not self.redis:
            args.append("--no-redis")
        if self.postgres:
            args.append("--postgres")
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            raise AssertionError(
                f"deploy/local-cluster up exited with {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        assert proc.stdout.strip().startswith("http://127.0.0.1:"), f"up printed no entry URL: {proc.stdout!r}"
        self.state = self.status()
        assert self.state["running"] and self.state["ok"], f"cluster not healthy after up: {self.state}"
        return self

    def down(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        self.run("down", timeout=120)

    def remove_files(self) -> None:
        """Removes what `up` left outside the run directory: PostgreSQL's files, which live in /tmp
        when the postgres user cannot reach the run directory (`deploy/local-cluster` keeps them
        across `down`, as an operator's call records)."""
        home_file = self.run_dir / "postgres.home"
        if home_file.exists():
            home = Path(home_file.read_text().strip())
            if self.run_dir not in home.parents:
                shutil.rmtree(home, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        proc = self.run("status", "--json", check=False)
        assert proc.returncode in (0, 1, 3), f"status --json exited with {proc.returncode}: {proc.stderr}"
        return json.loads(proc.stdout)

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.state["url"]

    @property
    def ws_url(self) -> str:
        return self.state["ws_url"]

    @property
    def mode(self) -> str:
        return self.state["mode"]

    def node(self, node_id: str) -> dict[str, Any]:
        for n in self.state["nodes"]:
            if n["id"] == node_id:
                return n
        raise AssertionError(f"no node {node_id} in {self.state['nodes']}")

    @property
    def node_ids(self) -> list[str]:
        return [n["id"] for n in self.state["nodes"]]

    # -- clients ------------------------------------------------------------------------------

    def connect(self, user: str | None = None, *, src: str = "127.0.0.1", name: str | None = None,
                **kwargs: Any) -> Client:
        """A client connected through nginx from source address `src` (closed at teardown)."""
        user = user or unique_user()
        token = make_token(user, name=name, secret=self.secret)
        client = Client(self.ws_url, token, user=user, source_address=(src, 0), **kwargs)
        self.clients.append(client)
        return client

    # -- presence -----------------------------------------------------------------------------

    def presence(self, user: str) -> str | None:
        """The node the user's live session is on (None: offline).

        Cluster mode: `/api/presence/{user}` through nginx (any node answers for the cluster),
        checked against `HGET webrtc:presence`. Without Redis: each node is asked directly, and at
        most one may know the user.
        """
        token = make_token(unique_user("presence-probe"), secret=self.secret)
        path = f"/api/presence/{urllib.parse.quote(user, safe='')}"
        if self.mode == "cluster":
            resp = http_get(self.url, path, token=token)
            assert resp.status == 200, f"GET {path} via nginx: HTTP {resp.status} {resp.body!r}"
            body = resp.json()
            assert body["user"] == user, body
            node = body["node"] if body["online"] else None
            in_redis = self.redis_cli("HGET", "webrtc:presence", user) or None
            assert node == in_redis, f"presence of {user}: API says {node!r}, webrtc:presence says {in_redis!r}"
            return node
        found = []
        for n in self.state["nodes"]:
            if not n["alive"]:
                continue
            try:
                resp = http_get(n["url"], path, token=token)
            except OSError:
                continue
            body = resp.json()
            if body.get("online"):
                assert body["node"] == n["id"], f"{n['id']} says {user} is on {body['node']}"
                found.append(n["id"])
        assert len(found) <= 1, f"{user} is online on several independent nodes: {found}"
        return found[0] if found else None

    def wait_presence(self, user: str, predicate: Callable[[str | None], bool], what: str,
                      timeout: float = 10.0) -> str | None:
        seen: list[str | None] = []

        def check() -> bool:
            node = self.presence(user)
            seen[:] = [node]
            return predicate(node)

        try:
            wait_until(check, timeout, f"presence of {user}: {what}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen: {seen}") from None
        return seen[0]

    # -- Redis and processes ------------------------------------------------------------------

    def redis_cli(self, *args: str) -> str:
        port = self.state["redis"]["port"]
        proc = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--raw", *args],
                              capture_output=True, text=True, timeout=10, check=True)
        return proc.stdout.strip()

    def kill_node(self, node_id: str, sig: int = signal.SIGKILL) -> None:
        node = self.node(node_id)
        assert node["pid"], f"{node_id} is not running: {node}"
        os.kill(node["pid"], sig)

        def gone() -> bool:
            try:
                os.kill(node["pid"], 0)
            except ProcessLookupError:
                return True
            # Reparented to init once the script that started it exited: gone when not a zombie.
            try:
                return Path(f"/proc/{node['pid']}/stat").read_text().split(") ")[1].startswith("Z")
            except (FileNotFoundError, IndexError):
                return True

        wait_until(gone, 10, f"{node_id} (pid {node['pid']}) to exit")

    def log_tails(self, lines: int = 25) -> str:
        out = []
        for path in sorted(self.run_dir.glob("node-*/std*.log")) + [self.run_dir / "nginx" / "error.log"]:
            try:
                text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            except FileNotFoundError:
                continue
            out.append(f"--- {path} ---\n{text}")
        return "\n".join(out)


def cluster_fixture(nodes: int = 3, *, redis: bool = True, postgres: bool = False,
                    env: dict[str, str] | None = None) -> Callable[..., Iterator[LocalCluster]]:
    """A module-scoped fixture: `cluster = cluster_fixture(3, env={...})` in a test module."""

    @pytest.fixture(scope="module")
    def _cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
        run_dir = tmp_path_factory.mktemp("local-cluster")
        cluster = LocalCluster(run_dir, nodes, redis=redis, postgres=postgres, env=env)
        try:
            cluster.up()
        except BaseException:
            cluster.run("down", check=False)
            raise
        try:
            yield cluster
        finally:
            cluster.down()
            cluster.remove_files()
            after = cluster.status()
            assert after == {"running": False, "run_dir": str(run_dir)}, f"still running after down: {after}"

    return _cluster
