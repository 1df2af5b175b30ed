"""`GET /metrics` (PROTOCOL.md section 7, docs/METRICS.md): Prometheus counters of a real node.

The module's node is shared by its tests, so each test compares a scrape taken after it acted with
one taken before. Counters are updated before the message that reports the action is sent, so a
client that has received that message can scrape at once.
"""

from __future__ import annotations

import re

from switchboard_client import http_get, unique_user, wait_until

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


def scrape(node) -> dict[str, float]:
    """Every sample of `/metrics`, by series (`name{labels}` as the node writes it)."""
    resp = http_get(node.http_url, "/metrics")
    assert resp.status == 200
    text = resp.body.decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        assert match.group(1) not in samples, f"duplicate series {match.group(1)}"
        samples[match.group(1)] = float(match.group(2))
    return samples


class Delta:
    """What changed between a scrape at construction and one at `take()`."""

    def __init__(self, node):
        self.node = node
        self.before = scrape(node)

    def take(self) -> dict[str, float]:
        after = scrape(self.node)
        return {key: value - self.before.get(key, 0.0) for key, value in after.items()}


def call(alice, bob) -> str:
    """alice calls bob, who accepts; they negotiate; returns the callId."""
    alice.send_signal(bob.user, "call-invite", callType="video")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    alice.send_signal(bob.user, "offer", callId=call_id, offer={"type": "offer", "sdp": "v=0\r\n"})
    bob.expect_signal("offer")
    bob.send_signal(alice.user, "answer", callId=call_id, answer={"type": "answer", "sdp": "v=0\r\n"})
    alice.expect_signal("answer")
    for _ in range(2):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate={"candidate": "c", "sdpMid": "0"})
        bob.expect_signal("ice-candidate")
    return call_id


def test_metrics_content_type_is_prometheus_text(node):
    resp = http_get(node.http_url, "/metrics")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4"), resp.headers
    text = resp.body.decode()
    for family, kind in [
        ("switchboard_signals_total", "counter"),
        ("switchboard_calls_total", "counter"),
        ("switchboard_errors_total", "counter"),
        ("switchboard_messages_relayed_total", "counter"),
        ("switchboard_call_invite_to_accept_seconds", "histogram"),
        ("switchboard_call_duration_seconds", "histogram"),
        ("switchboard_websocket_connections", "gauge"),
    ]:
        assert f"# TYPE {family} {kind}\n" in text, family


def test_an_answered_call_counts_signals_outcomes_and_times(node, connect):
    alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
    delta = Delta(node)
    call_id = call(alice, bob)
    bob.send_signal(alice.user, "call-hangup", callId=call_id)
    alice.expect_signal("call-hangup")
    d = delta.take()

    assert d['switchboard_signals_total{type="call-invite"}'] == 1
    assert d['switchboard_signals_total{type="call-accept"}'] == 1
    assert d['switchboard_signals_total{type="offer"}'] == 1
    assert d['switchboard_signals_total{type="answer"}'] == 1
    assert d['switchboard_signals_total{type="ice-candidate"}'] == 2
    assert d['switchboard_signals_total{type="call-hangup"}'] == 1
    assert d['switchboard_signals_total{type="call-reject"}'] == 0
    assert d['switchboard_messages_relayed_total{route="local"}'] == 7
    assert d['switchboard_messages_relayed_total{route="remote"}'] == 0

    assert d['switchboard_calls_total{status="invite"}'] == 1
    assert d['switchboard_calls_total{status="accepted"}'] == 1
    assert d['switchboard_calls_total{status="hung_up"}'] == 1
    assert d['switchboard_calls_total{status="rejected"}'] == 0
    assert d['switchboard_calls_total{status="failed"}'] == 0

    # Answered within milliseconds: one observation, in the smallest bucket.
    assert d["switchboard_call_invite_to_accept_seconds_count"] == 1
    assert d['switchboard_call_invite_to_accept_seconds_bucket{le="0.5"}'] == 1
    assert d["switchboard_call_duration_seconds_count"] == 1
    assert d['switchboard_call_duration_seconds_bucket{le="1.0"}'] == 1
    assert sum(v for k, v in d.items() if k.startswith("switchboard_errors_total")) == 0


def test_rejected_and_failed_calls_count_by_status(node, connect):
    alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
    delta = Delta(node)
    alice.send_signal(bob.user, "call-invite")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    bob.send_signal(alice.user, "call-reject", callId=call_id)
    alice.expect_signal("call-reject")
    alice.send_signal(unique_user("ghost"), "call-invite")
    failed = alice.expect_notice("call-failed")
    assert failed["reason"] == "offline"
    d = delta.take()

    assert d['switchboard_signals_total{type="call-invite"}'] == 2
    assert d['switchboard_calls_total{status="invite"}'] == 1
    assert d['switchboard_calls_total{status="rejected"}'] == 1
    assert d['switchboard_calls_total{status="failed"}'] == 1
    assert d['switchboard_calls_total{status="accepted"}'] == 0
    assert d['switchboard_errors_total{notice="call-failed",reason="offline"}'] == 1
    assert d["switchboard_call_invite_to_accept_seconds_count"] == 0


def test_bad_messages_count_as_errors_by_reason(node, connect):
    alice = connect(node, unique_user("alice"))
    delta = Delta(node)
    alice.send_text("not a protobuf frame")
    alice.expect_error("invalid-message")
    alice.send(to=unique_user("nobody"), content="hello?")
    alice.expect_error("offline")
    alice.send_signal(unique_user("nobody"), "call-teleport")
    alice.expect_error("unknown-signal")
    d = delta.take()

    assert d['switchboard_errors_total{notice="error",reason="invalid-message"}'] == 1
    assert d['switchboard_errors_total{notice="error",reason="offline"}'] == 1
    assert d['switchboard_errors_total{notice="error",reason="unknown-signal"}'] == 1
    assert sum(v for k, v in d.items() if k.startswith("switchboard_errors_total")) == 3
    assert d['switchboard_messages_relayed_total{route="local"}'] == 0


def test_connection_gauges_follow_connects_and_disconnects(node, connect):
    series = [
        f'switchboard_websocket_connections{{node="{node.node_id}"}}',
        f'switchboard_sessions{{node="{node.node_id}"}}',
    ]

    def gauges_are(value: float):
        samples = scrape(node)
        return all(samples.get(name) == value for name in series)

    # Earlier tests' clients close at their teardown; the node may still be closing them.
    wait_until(lambda: gauges_are(0), 5, "no connections left from earlier tests")
    alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
    wait_until(lambda: gauges_are(2), 5, "two connections")
    alice.close()
    wait_until(lambda: gauges_are(1), 5, "one connection after a close")
    bob.drop()
    wait_until(lambda: gauges_are(0), 5, "no connection after a drop")
