"""`switchboard-bench idle`, `upgrades` and `storm` (issue 10), briefly, against a real node: each finishes
its work without a failure and reports every field scripts/bench-scenarios and BENCHMARKS.md read, so the
scenarios do not rot. No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import BINARY
from switchboard_client import SECRET

BENCH = BINARY.parent / "switchboard-bench"
#: All connections come from 127.0.0.1 and each user calls far above a human's rate (README "Limits and abuse").
NODE_ENV = {
    "SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND": "1000000",
    "SWITCHBOARD_LIMITS_INVITES_PER_MINUTE": "1000000",
    "SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND": "1000000",
    "SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS_PER_ADDRESS": "100000",
    "SWITCHBOARD_SERVER_MAX_PENDING_CONNECTIONS": "100000",
}


def bench(node, *args: str) -> dict:
    """Runs one scenario against `node` and returns its JSON report."""
    assert BENCH.exists(), f"{BENCH} not built (swift build)"
    assert node.proc is not None
    done = subprocess.run(
        [str(BENCH), *args, "--url", node.ws_url, "--secret", SECRET, "--pid", str(node.proc.pid), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def numbers(report: dict, *keys: str) -> None:
    for key in keys:
        assert isinstance(report.get(key), (int, float)), f"{key} missing from {report}"


def test_idle_connections_open_and_rss_is_reported(node) -> None:
    report = bench(node, "idle", "--connections", "200", "--settle", "0.2")
    assert report["connections"] == 200 and report["open"] == 200
    numbers(report, "connect_s", "connections_per_s", "server_rss_kib_before", "server_rss_kib_after",
            "kib_per_connection", "server_open_file_limit")
    assert report["server_rss_kib_after"] > report["server_rss_kib_before"]


def test_upgrades_complete_without_failures(node) -> None:
    report = bench(node, "upgrades", "--seconds", "1", "--concurrency", "4")
    assert report["completed"] > 0 and report["failed"] == 0, report["failures"]
    numbers(report, "upgrades_per_s", "p50_us", "p99_us", "server_cpu_s", "upgrades_per_server_cpu_s")


@pytest.mark.parametrize("call_ids", [[], ["--client-call-ids"]], ids=["server-call-ids", "client-call-ids"])
def test_storm_completes_every_call(node, call_ids: list[str]) -> None:
    report = bench(node, "storm", "--rate", "5", "--seconds", "2", "--pairs", "5", *call_ids)
    assert report["client_call_ids"] == bool(call_ids)
    assert report["started"] == 10 and report["completed"] == 10 and report["failed"] == 0, report["failures"]
    numbers(report, "accept_p50_us", "accept_p99_us", "candidates_p50_us", "candidates_p99_us", "server_cpu_s",
            "calls_per_server_cpu_s")
    assert report["accept_p50_us"] <= report["candidates_p50_us"]
