"""PROTOCOL.md §10 across two nodes on one redis-server: blocks set on one node hold on the other, the
permission hook in cluster mode, and each call event posted by exactly one node."""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import pytest

from hook_backend import HOOK_SECRET, Answer, HookBackend
from switchboard_client import TEXT, http_request, make_token, unique_user, wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def backend() -> Iterator[HookBackend]:
    server = HookBackend()
    server.decide = lambda q: Answer(200, {"allow": not q["caller"].startswith("deny")})
    yield server
    server.close()


@pytest.fixture
def nodes(cluster_factory, backend):
    return [
        cluster_factory.add(
            node_id,
            SWITCHBOARD_HOOKS_INVITE_URL=f"{backend.url}/permission",
            SWITCHBOARD_HOOKS_EVENTS_URL=f"{backend.url}/events/{node_id}",
            SWITCHBOARD_HOOKS_SECRET=HOOK_SECRET,
        )
        for node_id in ("n1", "n2")
    ]


def blocks_api(node, owner: str, method: str, user: str):
    return http_request(node.http_url, method, f"/api/blocks/{user}", token=make_token(owner, secret=node.secret))


def test_a_block_set_on_one_node_refuses_from_the_other(nodes, join, redis_server):
    n1, n2 = nodes
    bob = join(n1, unique_user("bob"))
    alice = join(n2, unique_user("alice"))
    # bob's list changed through the node alice is on; bob's own node must know at once.
    assert blocks_api(n2, bob.user, "PUT", alice.user).status == 204
    assert redis_server.cli("SMEMBERS", f"webrtc:blocks:{bob.user}") == [alice.user]
    alice.send_signal(bob.user, "call-invite", callType="audio")
    failed = alice.expect_notice("call-failed")
    assert failed["reason"] == "forbidden", failed
    alice.send(to=bob.user, content="hello", contentType=TEXT)
    alice.expect_error("forbidden")
    bob.expect_no_message(within=0.3)
    # Lifted through bob's node: alice's next message arrives.
    assert blocks_api(n1, bob.user, "DELETE", alice.user).status == 204
    alice.send(to=bob.user, content="again", contentType=TEXT)
    assert bob.recv().content == "again"


def test_a_denied_invite_across_nodes_never_reaches_the_callee(nodes, join, redis_server, backend):
    n1, n2 = nodes
    caller = join(n1, unique_user("deny"))
    callee = join(n2, unique_user("bob"))
    call_id = f"c-{unique_user()}"
    caller.send_signal(callee.user, "call-invite", callType="audio", callId=call_id)
    failed = caller.expect_notice("call-failed")
    assert failed["reason"] == "forbidden" and failed["callId"] == call_id, failed
    callee.expect_no_message(within=0.3)
    assert n1.wait_for_call_record(caller.user, call_id, status=5)["end_reason"] == "forbidden"
    wait_until(lambda: redis_server.cli("GET", f"webrtc:user-call:{callee.user}") is None, 3, "the call let go")


def test_each_event_of_a_call_arrives_from_exactly_one_node(nodes, join, backend):
    n1, n2 = nodes
    alice = join(n1, unique_user("alice"))
    bob = join(n2, unique_user("bob"))
    alice.send_signal(bob.user, "call-invite", callType="audio")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    alice.send_signal(bob.user, "call-hangup", callId=call_id)
    bob.expect_signal("call-hangup")

    def posted() -> list[tuple[str, str]]:
        return [(r.path.removeprefix("/events/"), r.body["event"]) for r in backend.events(call_id=call_id)]

    wait_until(lambda: len(posted()) >= 4, 5, "the call's events")
    counts = Counter(event for _, event in posted())
    assert counts == {"webrtc_call_invite": 1, "webrtc_call_ringing": 1, "webrtc_call_accept": 1,
                      "webrtc_call_hangup": 1}, posted()
    by_node = {node: [e for n, e in posted() if n == node] for node in ("n1", "n2")}
    # Each from the node that logged it: the caller's for invite, ringing and her hangup, the callee's
    # for his accept.
    assert by_node == {"n1": ["webrtc_call_invite", "webrtc_call_ringing", "webrtc_call_hangup"],
                       "n2": ["webrtc_call_accept"]}, by_node
