"""The seed's key indicators (PROTOCOL.md §8) through a real Prometheus.

A node of its own (its counters start at zero) and Debian's `prometheus`, started here with a generated
config that scrapes the node every second. Four calls with known outcomes; then each KPI expression
the README documents (read from its "Key indicators" section) is evaluated by Prometheus'
`/api/v1/query` and must equal what the calls' records say.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from switchboard_client import wait_until
from conftest import REPO

PROMETHEUS = shutil.which("prometheus")


def documented_kpis() -> dict[str, str]:
    """kpi name → the PromQL under its `<!-- kpi:NAME -->` marker in README.md."""
    text = (REPO / "README.md").read_text()
    found = dict(re.findall(r"<!-- kpi:([a-z-]+) -->.*?```promql\n(.*?)\n```", text, re.S))
    assert set(found) == {"success-rate", "connection-time", "call-duration", "error-rate"}, found.keys()
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, workdir: Path, target: str):
        assert PROMETHEUS, "prometheus is not installed (apt-get install prometheus)"
        self.port = _free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: switchboard\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        wait_until(self._ready, 30, "prometheus /-/ready")

    def _ready(self) -> bool:
        assert self.proc.poll() is None, "prometheus exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def query(self, promql: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def kpi_node(tmp_path_factory):
    from conftest import NodeFactory

    factory = NodeFactory(tmp_path_factory, "node-kpis")
    yield factory()
    factory.stop_all()


@pytest.fixture(scope="module")
def prometheus(kpi_node, tmp_path_factory):
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{kpi_node.port}")
    yield server
    server.stop()


def iso_ms(text: str) -> int:
    """Unix ms of an `/api/calls` time (`2026-12-01T17:00:00.123Z`)."""
    from datetime import datetime

    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def call(caller, callee, *, connected_by=(), end: str | None = None, reason: str | None = None) -> str:
    """One call: invite, then accept and `call-connected` from `connected_by` and a hangup, or a reject."""
    caller.send_signal(callee.user, "call-invite", callType="audio")
    call_id = json.loads(callee.expect_signal("call-invite").content)["callId"]
    caller.expect_notice("call-ringing")
    if end == "reject":
        callee.send_signal(caller.user, "call-reject", callId=call_id)
        caller.expect_signal("call-reject")
        return call_id
    callee.send_signal(caller.user, "call-accept", callId=call_id)
    caller.expect_signal("call-accept")
    for party in connected_by:
        party.send_signal(caller.user if party is callee else callee.user, "call-connected", callId=call_id)
        party.heartbeat()  # answered after the node handled the call-connected (one sender's order)
    fields = {"reason": reason} if reason else {}
    caller.send_signal(callee.user, "call-hangup", callId=call_id, **fields)
    hangup = json.loads(callee.expect_signal("call-hangup").content)
    assert hangup["reason"] == (reason or "user-hangup")
    return call_id


def test_each_documented_kpi_matches_the_calls(kpi_node, prometheus, connect):
    kpis = documented_kpis()
    # Every series the expressions use exists, at 0, in a scrape before the first call.
    wait_until(lambda: prometheus.scalar("sum(switchboard_call_connection_seconds_count)") == 0
               and prometheus.scalar('sum(switchboard_call_end_reasons_total{reason="ice-failed"})') == 0,
               20, "a first scrape of the node")

    alice = connect(kpi_node, user="kpi-alice")
    bob = connect(kpi_node, user="kpi-bob")
    ids = [
        call(alice, bob, connected_by=(alice, bob)),  # connected, user-hangup
        call(alice, bob, connected_by=(bob,), reason="ice-failed"),  # connected, then ICE failed
        call(alice, bob, reason="ice-failed"),  # accepted, never connected
        call(alice, bob, end="reject"),  # rang only
    ]

    def final_records():
        records = {r["call_id"]: r for r in kpi_node.api_calls(alice.user)}
        done = [records.get(i) for i in ids]
        return done if all(r and r["status"] in (2, 3) for r in done) else None

    records = wait_until(final_records, 10, "the four calls' final records")
    connected = [r for r in records if r["connected_time"]]
    assert len(connected) == 2
    connection_time = sum(iso_ms(r["connected_time"]) - iso_ms(r["created_at"]) for r in connected) / 2 / 1000
    answered = [r for r in records if r["start_time"]]
    duration = sum(iso_ms(r["end_time"]) - iso_ms(r["start_time"]) for r in answered) / len(answered) / 1000
    expected = {"success-rate": 2 / 4, "error-rate": 2 / 3, "connection-time": connection_time, "call-duration": duration}

    # Wait for a scrape that saw every call end; then each documented expression gives the calls' values.
    wait_until(lambda: prometheus.scalar("sum(switchboard_call_end_reasons_total)") == 4
               and prometheus.scalar("sum(switchboard_calls_connected_total)") == 2,
               20, "a scrape after the calls")
    measured = {name: prometheus.scalar(expr) for name, expr in kpis.items()}
    print("KPIs from Prometheus:", measured, "expected:", expected)
    for name, value in expected.items():
        assert measured[name] == pytest.approx(value, rel=1e-6, abs=1e-6), f"{name}: {kpis[name]}"


def test_grafana_dashboard_charts_exactly_the_documented_kpis():
    dashboard = json.loads((REPO / "deploy" / "grafana" / "switchboard-kpis.json").read_text())
    charted = sorted(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    assert charted == sorted(documented_kpis().values())
