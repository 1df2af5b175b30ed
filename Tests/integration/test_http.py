"""HTTP endpoints (PROTOCOL.md section 7)."""

from __future__ import annotations

import pytest

from switchboard_client import http_get, make_token, unique_user, wait_until


def test_healthz(node):
    assert http_get(node.http_url, "/healthz").status == 200


def test_readyz_single_node(node):
    assert http_get(node.http_url, "/readyz").status == 200


def test_metrics_is_prometheus_text(node):
    resp = http_get(node.http_url, "/metrics")
    assert resp.status == 200
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp.headers


def test_unknown_path_is_404(node):
    assert http_get(node.http_url, "/no-such-endpoint").status == 404


def test_presence_of_online_user(node, connect):
    alice = connect(node)
    resp = http_get(node.http_url, f"/api/presence/{alice.user}", token=make_token(unique_user("obs")))
    assert resp.status == 200
    body = resp.json()
    assert body["user"] == alice.user
    assert body["online"] is True
    assert body["node"] == node.node_id


def test_presence_of_offline_user(node):
    ghost = unique_user("ghost")
    resp = http_get(node.http_url, f"/api/presence/{ghost}", token=make_token(unique_user("obs")))
    assert resp.status == 200
    body = resp.json()
    assert body["user"] == ghost
    assert body["online"] is False
    assert body.get("node") is None


def test_presence_goes_offline_after_disconnect(node, connect):
    alice = connect(node)
    token = make_token(unique_user("obs"))
    alice.close()

    def offline():
        body = http_get(node.http_url, f"/api/presence/{alice.user}", token=token).json()
        return body["online"] is False and body.get("node") is None

    wait_until(offline, 5, f"{alice.user} offline in /api/presence")


def test_presence_goes_offline_after_the_client_vanishes(node, connect):
    """A client whose TCP connection ends without a WebSocket close frame is gone too."""
    alice = connect(node)
    token = make_token(unique_user("obs"))
    alice.drop()

    def offline():
        body = http_get(node.http_url, f"/api/presence/{alice.user}", token=token).json()
        return body["online"] is False

    wait_until(offline, 5, f"{alice.user} offline in /api/presence after its socket dropped")


@pytest.mark.parametrize("path", ["/api/presence/someone", "/api/calls"])
@pytest.mark.parametrize(
    "auth",
    [None, "Bearer not-a-jwt", "Bearer " + make_token("x", exp_in=-60),
     "Bearer " + make_token("x", secret="another-secret-0123456789abcdef0123456789"), "Basic dXNlcjpwYXNz"],
    ids=["none", "malformed", "expired", "wrong-secret", "basic"],
)
def test_api_requires_a_valid_bearer_token(node, path, auth):
    headers = {"Authorization": auth} if auth else None
    resp = http_get(node.http_url, path, headers=headers)
    assert resp.status == 401, f"{path} with {auth!r}: HTTP {resp.status}"


def test_calls_of_user_without_calls_is_empty(node):
    assert node.api_calls(unique_user("nobody")) == []


def test_calls_lists_only_the_users_own_records(node, connect):
    alice, bob, carol = connect(node), connect(node), connect(node)
    alice.send_signal(bob.user, "call-invite", callType="audio")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    bob.send_signal(alice.user, "call-reject", callId=call_id)
    alice.expect_signal("call-reject")
    node.wait_for_call_record(alice.user, call_id, 2)
    assert all(r["call_id"] != call_id for r in node.api_calls(carol.user))
    for r in node.api_calls(alice.user):
        assert alice.user in (r["caller_id"], r["callee_id"]), r
