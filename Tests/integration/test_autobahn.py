"""Autobahn WebSocket conformance, cases 1–10, against the node's echo route.

`kosoku` (PyPI) runs the Autobahn TestSuite's own case files as a fuzzing client. The node is started
with `testing.echo_route` on, which mounts an echo handler at `/autobahn` behind the same WebSocket
pipeline and settings as `/ws`. Every case must end OK, NON-STRICT or INFORMATIONAL.

Self-contained (no conftest fixture): it starts `$SWITCHBOARD_BIN serve` itself on a free port.
`AUTOBAHN_CASES` (comma-separated ids or globs, e.g. `5.*,7.7.*`) narrows the run while debugging.
Sections 1–7 and 10 (there is no 8) take about 12 s; case 9 (messages up to 16 MiB) about 35 s on a debug build.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kosoku import FailureError, run_fuzzingclient

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BINARY = Path(os.environ.get("SWITCHBOARD_BIN") or REPO / ".build" / "debug" / "switchboard")
READY_TIMEOUT = float(os.environ.get("SWITCHBOARD_TEST_READY_TIMEOUT", "30"))
CASES = [c.strip() for c in os.environ.get("AUTOBAHN_CASES", "").split(",") if c.strip()] or [
    f"{n}.*" for n in (1, 2, 3, 4, 5, 6, 7, 9, 10)  # Autobahn has no section 8
]
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class EchoNode:
    """A `switchboard serve` process with the Autobahn echo route, on a free loopback port."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.stdout = workdir / "stdout.log"
        self.stderr = workdir / "stderr.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not BINARY.exists():
            raise AssertionError(f"switchboard binary not found at {BINARY} (swift build, or set SWITCHBOARD_BIN)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env.update(
            SWITCHBOARD_JWT_SECRET="autobahn-test-secret-0123456789abcdef",
            SWITCHBOARD_TESTING_ECHO_ROUTE="true",
            # Case 9 sends messages of up to 16 MiB.
            SWITCHBOARD_WEBSOCKET_MAX_MESSAGE_BYTES=str(16 * 1024 * 1024),
        )
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = _free_port()
            with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
                self.proc = subprocess.Popen(
                    [
                        str(BINARY), "serve",
                        "--host", "127.0.0.1",
                        "--port", str(self.port),
                        "--database", f"sqlite:{self.workdir / 'db.sqlite'}",
                    ],
                    env=env,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                )
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _healthy(self.port):
                    return
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.stop()
                raise AssertionError(
                    f"node not healthy within {READY_TIMEOUT:.0f}s\n{_tail(self.stdout)}\n{_tail(self.stderr)}"
                )
        raise AssertionError(f"node exited with {self.proc.returncode}\n{_tail(self.stdout)}\n{_tail(self.stderr)}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _describe(result) -> str:
    return (
        f"case {result.case_id}: behavior={result.behavior.value} close={result.behavior_close.value}\n"
        f"  description: {result.description}\n"
        f"  expectation: {result.expectation}\n"
        f"  result: {result.result}\n"
        f"  close: {result.result_close} (server sent {result.remote_close_code} {result.remote_close_reason!r})"
    )


@pytest.mark.timeout(900)
def test_autobahn_cases_1_to_10(tmp_path: Path) -> None:
    node = EchoNode(tmp_path)
    node.start()
    try:
        started = time.monotonic()
        try:
            results = asyncio.run(run_fuzzingclient(f"ws://127.0.0.1:{node.port}/autobahn", CASES))
        except FailureError as failure:
            results = failure.results
        elapsed = time.monotonic() - started
        assert node.proc is not None and node.proc.poll() is None, (
            f"node died during the run\n{_tail(node.stdout)}\n{_tail(node.stderr)}"
        )
    finally:
        node.stop()

    counts: dict[str, int] = {}
    for result in results:
        key = f"{result.behavior.value}/{result.behavior_close.value}"
        counts[key] = counts.get(key, 0) + 1
    print(f"autobahn: {len(results)} cases in {elapsed:.1f}s: {counts}")

    failed = [r for r in results if r.behavior.value not in PASSING or r.behavior_close.value not in PASSING]
    assert results, "kosoku ran no cases"
    assert not failed, f"{len(failed)} Autobahn case(s) failed:\n" + "\n".join(_describe(r) for r in failed)
