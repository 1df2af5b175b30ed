"""Block lists on a single node (PROTOCOL.md §10): `PUT/DELETE/GET /api/blocks…` and what a block refuses.
Across two nodes: test_cluster_hooks.py."""

from __future__ import annotations

import pytest

from switchboard_client import FILE, TEXT, http_request, make_token, unique_user

NODE_ENV = {"SWITCHBOARD_BLOCKS_MAX_PER_USER": "3"}


def blocks_api(node, owner: str, method: str, user: str | None = None, token: str | None = "default"):
    path = "/api/blocks" if user is None else f"/api/blocks/{user}"
    token = make_token(owner, secret=node.secret) if token == "default" else token
    return http_request(node.http_url, method, path, token=token)


def test_a_block_refuses_invites_and_messages_until_it_is_lifted(node, connect):
    alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
    assert blocks_api(node, bob.user, "PUT", alice.user).status == 204
    assert blocks_api(node, bob.user, "PUT", alice.user).status == 204  # idempotent
    assert blocks_api(node, bob.user, "GET").json() == {"blocks": [alice.user]}

    alice.send_signal(bob.user, "call-invite", callType="audio")
    failed = alice.expect_notice("call-failed")
    assert failed["reason"] == "forbidden" and failed["to"] == bob.user, failed
    for content_type in (TEXT, FILE):
        alice.send(to=bob.user, content="hello", contentType=content_type)
        assert alice.expect_error("forbidden")["reason"] == "forbidden"
    bob.expect_no_message(within=0.3)
    # The block is one way: bob still reaches alice.
    bob.send(to=alice.user, content="hi", contentType=TEXT)
    assert alice.recv().content == "hi"

    assert blocks_api(node, bob.user, "DELETE", alice.user).status == 204
    assert blocks_api(node, bob.user, "DELETE", alice.user).status == 204  # idempotent
    assert blocks_api(node, bob.user, "GET").json() == {"blocks": []}
    alice.send(to=bob.user, content="again", contentType=TEXT)
    assert bob.recv().content == "again"


def test_a_block_does_not_end_a_call_in_progress(node, connect):
    alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
    alice.send_signal(bob.user, "call-invite", callType="audio")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    assert blocks_api(node, bob.user, "PUT", alice.user).status == 204
    alice.send_signal(bob.user, "offer", callId=call_id, offer={"type": "offer", "sdp": "v=0"})
    assert bob.expect_signal("offer").json["callId"] == call_id
    alice.send_signal(bob.user, "call-hangup", callId=call_id)
    bob.expect_signal("call-hangup")


def test_bad_requests_and_the_bound_on_a_list(node):
    owner = unique_user("owner")
    assert blocks_api(node, owner, "PUT", owner).status == 400  # oneself
    assert blocks_api(node, owner, "PUT", "not%20valid").status == 400
    assert blocks_api(node, owner, "PUT", "x" * 65).status == 400
    assert blocks_api(node, owner, "GET", token=None).status == 401
    assert blocks_api(node, owner, "PUT", "someone", token=None).status == 401
    assert blocks_api(node, owner, "DELETE", "someone", token="garbage").status == 401
    users = [unique_user("u") for _ in range(3)]
    for user in users:
        assert blocks_api(node, owner, "PUT", user).status == 204
    full = blocks_api(node, owner, "PUT", unique_user("u"))
    assert full.status == 409 and b"max_per_user" in full.body, full
    assert blocks_api(node, owner, "PUT", users[0]).status == 204  # already there: not an addition
    assert sorted(blocks_api(node, owner, "GET").json()["blocks"]) == sorted(users)
