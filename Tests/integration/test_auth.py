"""Identity at the upgrade (PROTOCOL.md section 2)."""

from __future__ import annotations

import urllib.parse

import jwt
import pytest

from switchboard_client import (
    Client,
    connect_expecting_status,
    make_token,
    raw_upgrade,
    unique_user,
)


@pytest.mark.parametrize("via", ["query", "header", "protocol"])
def test_token_accepted(node, connect, via):
    alice = connect(node, unique_user("alice"), name="Alice", via=via)
    bob = connect(node, unique_user("bob"))
    # The session is live and is alice's: a message she sends arrives stamped with her id.
    alice.send(to=bob.user, content="hello")
    got = bob.recv()
    assert got.sender == alice.user
    assert got.content == "hello"
    if via == "protocol":
        # Browsers must see the subprotocol they offered echoed back.
        assert alice.subprotocol == f"bearer.{alice.token}"


def test_protocol_token_among_other_subprotocols(node, connect):
    """The bearer entry may come with other offered subprotocols; the server selects the bearer one."""
    user = unique_user("carol")
    token = make_token(user)
    c = Client(node.ws_url, None, user=user, subprotocols=["chat.v1", f"bearer.{token}"])
    try:
        assert c.subprotocol == f"bearer.{token}"
    finally:
        c.close()


def _bad_tokens() -> dict[str, str | None]:
    user = unique_user("mallory")
    return {
        "missing": None,
        "malformed": "not-a-jwt",
        "garbage-segments": "aaaa.bbbb.cccc",
        "wrong-secret": make_token(user, secret="some-other-secret-0123456789abcdef0123"),
        "expired": make_token(user, exp_in=-60),
        "no-sub": make_token(None),
        "no-exp": make_token(user, exp_in=None),
        "bad-sub-chars": make_token("bad user!"),
        "sub-too-long": make_token("u" * 65),
        "alg-none": jwt.encode({"sub": user, "exp": 9999999999}, None, algorithm="none"),
    }


BAD = _bad_tokens()


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_token_in_query_is_refused_with_401(node, kind):
    token = BAD[kind]
    path = "/ws" if token is None else f"/ws?token={urllib.parse.quote(token, safe='')}"
    resp = raw_upgrade(node.http_url, path)
    assert resp.status == 401, f"{kind}: expected HTTP 401, got {resp.status}"
    assert "upgrade" not in resp.headers.get("connection", "").lower()
    assert "sec-websocket-accept" not in resp.headers


@pytest.mark.parametrize("kind", ["malformed", "wrong-secret", "expired", "alg-none"])
def test_bad_token_in_header_is_refused_with_401(node, kind):
    resp = raw_upgrade(node.http_url, "/ws", {"Authorization": f"Bearer {BAD[kind]}"})
    assert resp.status == 401, f"{kind}: expected HTTP 401, got {resp.status}"
    assert "sec-websocket-accept" not in resp.headers


@pytest.mark.parametrize("kind", ["malformed", "wrong-secret", "expired"])
def test_bad_token_as_subprotocol_is_refused_with_401(node, kind):
    status = connect_expecting_status(node.ws_url, BAD[kind], via="protocol")
    assert status == 401, f"{kind}: expected HTTP 401, got {status}"


def test_websockets_client_sees_401_without_token(node):
    assert connect_expecting_status(node.ws_url, None) == 401


def test_refused_upgrade_leaves_the_node_serving(node, connect):
    raw_upgrade(node.http_url, "/ws?token=garbage")
    a, b = connect(node), connect(node)
    a.send(to=b.user, content="still serving")
    assert b.recv().content == "still serving"

