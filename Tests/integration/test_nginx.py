"""Cluster mode behind real nginx (ip_hash), started by deploy/local-cluster: 3 nodes, one Redis.

Clients connect through nginx from 127.0.N.1 (N = their ip_hash group, see local_cluster.source):
they spread over the nodes, reach each other across nodes, come back to the same node when they
reconnect, and move to another node when theirs dies.
"""

from __future__ import annotations

import json

import pytest

from local_cluster import LocalCluster, cluster_fixture, source
from switchboard_client import Client, unique_user, wait_until

pytestmark = pytest.mark.cluster

# Fast heartbeats so that a killed node is declared dead (3 silent heartbeats) within ~1.5 s.
cluster = cluster_fixture(3, env={"SWITCHBOARD_REDIS_HEARTBEAT_INTERVAL": "500ms"})

GROUPS = range(1, 9)  # 127.0.1.1 … 127.0.8.1: eight ip_hash buckets over three nodes

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}


def candidate(i: int) -> dict:
    return {"candidate": f"candidate:{i} 1 udp 2122260223 192.0.2.{i} {50000 + i} typ host",
            "sdpMid": "0", "sdpMLineIndex": 0}


def place(cluster: LocalCluster, group: int, prefix: str = "user") -> tuple[Client, str]:
    """Connects a new user from group `group`'s address; returns it and the node it landed on."""
    client = cluster.connect(unique_user(f"{prefix}{group}"), src=source(group), name=f"{prefix} {group}")
    node = cluster.wait_presence(client.user, lambda n: n is not None, "online")
    assert node in cluster.node_ids, f"{client.user} is on unknown node {node!r}"
    return client, node


def two_on_different_nodes(cluster: LocalCluster, prefix: str) -> tuple[Client, str, Client, str]:
    first, first_node = place(cluster, GROUPS[0], prefix)
    for group in GROUPS[1:]:
        other, other_node = place(cluster, group, prefix)
        if other_node != first_node:
            return first, first_node, other, other_node
    raise AssertionError(f"every group landed on {first_node}: ip_hash does not spread")


def full_call(caller: Client, callee: Client) -> str:
    """invite → ringing → accept → offer/answer/ice (both ways, in order) → hangup; returns callId."""
    caller.send_signal(callee.user, "call-invite", callType="video")
    invite = callee.expect_signal("call-invite")
    assert invite.sender == caller.user and invite.to == callee.user
    call_id = invite.json["callId"]
    assert isinstance(call_id, str) and call_id
    ringing = caller.expect_notice("call-ringing")
    assert ringing["callId"] == call_id and ringing["to"] == callee.user

    callee.send_signal(caller.user, "call-accept", callId=call_id)
    assert caller.expect_signal("call-accept").json["callId"] == call_id

    caller.send_signal(callee.user, "offer", callId=call_id, offer=OFFER)
    got = callee.expect_signal("offer")
    assert got.json["offer"] == OFFER and got.json["from"] == caller.user
    callee.send_signal(caller.user, "answer", callId=call_id, answer=ANSWER)
    assert caller.expect_signal("answer").json["answer"] == ANSWER

    for i in range(3):
        caller.send_signal(callee.user, "ice-candidate", callId=call_id, candidate=candidate(i))
        callee.send_signal(caller.user, "ice-candidate", callId=call_id, candidate=candidate(10 + i))
    for i in range(3):  # in the order sent, across the nodes
        assert callee.expect_signal("ice-candidate").json["candidate"] == candidate(i)
        assert caller.expect_signal("ice-candidate").json["candidate"] == candidate(10 + i)

    caller.send_signal(callee.user, "call-hangup", callId=call_id)
    hangup = callee.expect_signal("call-hangup")
    assert hangup.json["callId"] == call_id and hangup.sender == caller.user
    return call_id


def call_event(cluster: LocalCluster, event: str, call_id: str) -> dict:
    """The call event log line `event` for `call_id`, from whichever node wrote it."""

    def find() -> dict | None:
        for path in cluster.run_dir.glob("node-*/stdout.log"):
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{") and call_id in line:
                    rec = json.loads(line)
                    if rec.get("event") == event and rec.get("call_id") == call_id:
                        return rec
        return None

    return wait_until(find, 5, f"{event} log line for {call_id}")


# ---------------------------------------------------------------------------------------------


def test_clients_spread_over_nodes_by_source_address(cluster):
    placed = {group: place(cluster, group, "spread")[1] for group in GROUPS}
    nodes = set(placed.values())
    assert len(nodes) >= 2, f"ip_hash put every group on one node: {placed}"

    # ip_hash hashes the first three octets: another address of the same /24 lands alike.
    for group in (GROUPS[0], GROUPS[1]):
        client = cluster.connect(unique_user("same24"), src=f"127.0.{group}.77")
        cluster.wait_presence(client.user, lambda n, want=placed[group]: n == want, f"on {placed[group]}")

    if cluster.mode == "cluster":
        assert int(cluster.redis_cli("HLEN", "webrtc:presence")) >= len(GROUPS)
        assert cluster.status()["redis"]["presence"] >= len(GROUPS)


def test_reconnect_from_same_address_lands_on_same_node(cluster):
    for group in (GROUPS[0], GROUPS[2], GROUPS[4]):
        client, node = place(cluster, group, "again")
        client.close()
        cluster.wait_presence(client.user, lambda n: n is None, "offline after close")
        again = cluster.connect(client.user, src=source(group))
        assert cluster.wait_presence(again.user, lambda n: n is not None, "online again") == node


def test_call_across_nodes_through_nginx(cluster):
    alice, alice_node, bob, bob_node = two_on_different_nodes(cluster, "xcall")
    assert alice_node != bob_node

    # A direct message crosses the nodes too.
    alice.send(to=bob.user, content="hello from the other node")
    msg = bob.recv()
    assert msg.content == "hello from the other node" and msg.sender == alice.user

    call_id = full_call(alice, bob)
    full_call(bob, alice)  # and the other way round

    # The caller's ip in the call event log is the client's address, from nginx's X-Forwarded-For.
    invite = call_event(cluster, "webrtc_call_invite", call_id)
    assert invite["caller"] == alice.user and invite["callee"] == bob.user
    assert invite["metadata"]["ip"] == source(GROUPS[0]), invite


def test_killed_node_clients_reconnect_elsewhere_and_can_be_called(cluster):
    """SIGKILL one node: its users reconnect through nginx to another node and can be called."""
    placed = {group: place(cluster, group, "kill") for group in GROUPS}
    by_node: dict[str, list[int]] = {}
    for group, (_, node) in placed.items():
        by_node.setdefault(node, []).append(group)
    victim = max(by_node, key=lambda n: len(by_node[n]))
    victim_groups = by_node[victim]
    caller_group = next((g for g in GROUPS if placed[g][1] != victim), None)
    assert caller_group is not None, f"every group is on {victim}: {by_node}"
    # One more user on the victim (same /24 as one of its groups) that will not reconnect.
    stayer = cluster.connect(unique_user("stayer"), src=f"127.0.{victim_groups[0]}.99")
    cluster.wait_presence(stayer.user, lambda n: n == victim, f"on {victim}")

    cluster.kill_node(victim)
    for group in victim_groups:
        placed[group][0].expect_close(None, timeout=10)  # nginx drops the proxied socket
    stayer.expect_close(None, timeout=10)

    moved = []
    for group in victim_groups:
        client = cluster.connect(placed[group][0].user, src=source(group))
        node = cluster.wait_presence(client.user, lambda n: n is not None and n != victim,
                                     f"online on a node other than {victim}")
        assert node in cluster.node_ids
        moved.append(client)

    caller = placed[caller_group][0]
    for callee in moved:
        caller.send_signal(callee.user, "call-invite", callType="audio")
        call_id = callee.expect_signal("call-invite").json["callId"]
        assert caller.expect_notice("call-ringing")["callId"] == call_id
        callee.send_signal(caller.user, "call-accept", callId=call_id)
        assert caller.expect_signal("call-accept").json["callId"] == call_id
        callee.send_signal(caller.user, "call-hangup", callId=call_id)
        assert caller.expect_signal("call-hangup").json["callId"] == call_id

    # The dead node stops heartbeating: it leaves webrtc:nodes, and presence entries still naming
    # it (the user who did not reconnect) are removed.
    wait_until(lambda: cluster.redis_cli("ZSCORE", "webrtc:nodes", victim) == "", 10,
               f"{victim} removed from webrtc:nodes")
    cluster.wait_presence(stayer.user, lambda n: n is None, f"offline after {victim} died")

    status = cluster.status()
    assert not status["ok"]
    assert [n["alive"] for n in status["nodes"] if n["id"] == victim] == [False]
