"""Call records of a cluster in one PostgreSQL (deploy/local-cluster up 2 --postgres): a call whose
transitions run on two nodes leaves one record, which either node serves at /api/calls."""

from __future__ import annotations

import pytest

from local_cluster import cluster_fixture
from switchboard_client import http_get, make_token, wait_until
from test_nginx import full_call, two_on_different_nodes

pytestmark = pytest.mark.cluster

cluster = cluster_fixture(2, postgres=True)


def test_a_call_across_nodes_has_one_record_in_the_shared_database(cluster):
    alice, alice_node, bob, bob_node = two_on_different_nodes(cluster, "pg")
    assert alice_node != bob_node
    call_id = full_call(alice, bob)  # invite recorded by alice's node, accept by bob's, hangup by alice's

    def record_via(node_id: str, user: str) -> dict | None:
        token = make_token(user, secret=cluster.secret)
        calls = http_get(cluster.node(node_id)["url"], "/api/calls", token=token).json()["calls"]
        matching = [c for c in calls if c["call_id"] == call_id]
        assert len(matching) <= 1, f"one record per call: {matching}"
        return matching[0] if matching and matching[0]["status"] == 3 else None

    # Records are written behind the signals: wait for the hangup's snapshot.
    record = wait_until(lambda: record_via(bob_node, alice.user), 10, "the hung-up record on bob's node")
    assert record["caller_id"] == alice.user and record["callee_id"] == bob.user
    assert record["start_time"] is not None and record["end_time"] is not None
    assert record["end_reason"] == "user-hangup"  # the default reason (PROTOCOL.md §8)
    # The same single row, seen by the callee through the caller's node.
    assert record_via(alice_node, bob.user) == record
