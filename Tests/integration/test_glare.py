"""Glare (PROTOCOL.md §8): two users invite each other at the same moment. Whichever invite the
node (cluster: Redis) takes first stands; the other caller gets `call-failed` reason `glare` naming
that call, which rings on and which they accept. Exactly one call, every time: on one node, and with
the two users on different nodes of a cluster.
"""

from __future__ import annotations

import pytest

from cluster import gather, of_type, simultaneously, wait_call_state_released
from switchboard_client import unique_user

REPS = 10


def failures(msgs):
    return [m for m in msgs if m.sender == "" and m.signal_type == "call-failed"]


def cross_invite(alice, bob) -> tuple:
    """Both invite each other at once; checks that exactly one call stands and is accepted by its
    callee. Returns the winner and the call's id."""
    ids = {alice.user: f"g-{unique_user('a')}", bob.user: f"g-{unique_user('b')}"}
    simultaneously(
        lambda: alice.send_signal(bob.user, "call-invite", callType="audio", callId=ids[alice.user]),
        lambda: bob.send_signal(alice.user, "call-invite", callType="audio", callId=ids[bob.user]),
    )

    def settled(g) -> bool:
        answered = all(of_type(g[c.user], "call-ringing") or failures(g[c.user]) for c in (alice, bob))
        return answered and any(of_type(g[c.user], "call-invite") for c in (alice, bob))

    got = gather([alice, bob], settled)
    ctx = "; ".join(f"{user} got {msgs!r}" for user, msgs in got.items())
    ringing = [c for c in (alice, bob) if of_type(got[c.user], "call-ringing")]
    assert len(ringing) == 1, f"{len(ringing)} calls ringing: {ctx}"
    winner = ringing[0]
    loser = bob if winner is alice else alice
    call_id = ids[winner.user]
    failed = failures(got[loser.user])
    assert len(failed) == 1, ctx
    assert failed[0].json["reason"] == "glare" and failed[0].json["callId"] == call_id, ctx
    assert failed[0].json["to"] == winner.user, ctx
    invites = of_type(got[loser.user], "call-invite")
    assert len(invites) == 1 and invites[0].json["callId"] == call_id, ctx
    assert not of_type(got[winner.user], "call-invite") and not failures(got[winner.user]), ctx

    # The standing call rings on: its callee accepts it.
    loser.send_signal(winner.user, "call-accept", callId=call_id)
    accepted = winner.expect_signal("call-accept")
    assert accepted.json["callId"] == call_id and accepted.sender == loser.user
    winner.send_signal(loser.user, "call-hangup", callId=call_id)
    assert loser.expect_signal("call-hangup").json["callId"] == call_id
    return winner, call_id


def test_cross_invites_on_one_node_make_one_call(node, connect):
    winners = set()
    for _ in range(REPS):
        alice, bob = connect(node, unique_user("alice")), connect(node, unique_user("bob"))
        winner, call_id = cross_invite(alice, bob)
        winners.add("alice" if winner is alice else "bob")
        node.wait_for_call_record(alice.user, call_id, 3)
        records = node.api_calls(alice.user)
        assert len(records) == 1, records  # one call, no failed record for the refused invite
        alice.close()
        bob.close()
    print(f"glare winners on one node over {REPS} runs: {sorted(winners)}")


@pytest.mark.cluster
def test_cross_invites_across_two_nodes_make_one_call(cluster_factory, join, redis_server):
    n1, n2 = cluster_factory(2)
    for rep in range(REPS):
        alice, bob = join(n1 if rep % 2 == 0 else n2, unique_user("alice")), join(n2 if rep % 2 == 0 else n1,
                                                                                 unique_user("bob"))
        cross_invite(alice, bob)
        wait_call_state_released(redis_server, alice.user, bob.user)
        alice.close()
        bob.close()
