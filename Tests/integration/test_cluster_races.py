"""Races of call transitions between nodes: conflicting signals sent at the same moment from
different nodes must resolve to exactly one consistent outcome (PROTOCOL.md §3, §6).

Each race is repeated REPS times with fresh users on one 2-node cluster; the users swap nodes
between repetitions. Which side wins is up to timing; every repetition must be consistent, and the
outcomes seen are printed (`pytest -s`).
"""

from __future__ import annotations

from collections import Counter

import pytest

from cluster import (
    final_record,
    gather,
    hang_up,
    invite,
    is_error,
    of_type,
    simultaneously,
    start_call,
    wait_call_state_released,
    wait_final_record,
)
from switchboard_client import unique_user

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPS = 10


def notices(msgs, *types):
    return [m for m in msgs if m.contentType == 6 and m.sender == "" and m.signal_type in types]


def test_accept_races_hangup(cluster_factory, join, redis_server):
    nodes = cluster_factory(2)
    outcomes: Counter[str] = Counter()
    for rep in range(REPS):
        caller_node, callee_node = (nodes[0], nodes[1]) if rep % 2 == 0 else (nodes[1], nodes[0])
        alice, bob = join(caller_node, unique_user("alice")), join(callee_node, unique_user("bob"))
        call_id = invite(alice, bob)
        simultaneously(lambda: bob.send_signal(alice.user, "call-accept", callId=call_id),
                       lambda: alice.send_signal(bob.user, "call-hangup", callId=call_id))

        # Settled once bob has the hangup and one of the deciding events happened:
        # the accept reached alice (accept won) or bob was told no-call (hangup won).
        got = gather([alice, bob], lambda g: bool(of_type(g[bob.user], "call-hangup")) and bool(
            of_type(g[alice.user], "call-accept") or of_type(g[bob.user], "error")))
        a_msgs, b_msgs = got[alice.user], got[bob.user]
        ctx = f"rep {rep}: alice got {a_msgs!r}; bob got {b_msgs!r}"
        hangups = of_type(b_msgs, "call-hangup")
        assert len(hangups) == 1 and hangups[0].sender == alice.user and hangups[0].json["callId"] == call_id, ctx
        accepts = of_type(a_msgs, "call-accept")
        errors = [m for m in b_msgs if is_error(m)]
        assert len(accepts) + len(errors) == 1, f"not exactly one outcome: {ctx}"
        if accepts:
            outcome = "accept-then-hangup"
            assert accepts[0].json["callId"] == call_id and accepts[0].sender == bob.user, ctx
        else:
            outcome = "hangup-first"
            assert errors[0].json["reason"] == "no-call", ctx
        assert len(a_msgs) == len(accepts) and len(b_msgs) == 1 + len(errors), f"unexpected messages: {ctx}"
        outcomes[outcome] += 1

        rec = wait_final_record(nodes, call_id, 3)
        if outcome == "accept-then-hangup":
            assert rec["start_time"] is not None, f"{ctx}; record {rec}"
        wait_call_state_released(redis_server, alice.user, bob.user)
        alice.close()
        bob.close()
    print(f"accept vs hangup over {REPS} runs: {dict(outcomes)}")


def test_two_callers_invite_the_same_callee(cluster_factory, join, redis_server):
    nodes = cluster_factory(2)
    n1, n2 = nodes
    for rep in range(REPS):
        bob = join(nodes[rep % 2], unique_user("bob"))
        carol, dave = join(n1, unique_user("carol")), join(n2, unique_user("dave"))
        ids = {carol.user: f"c-{unique_user('carol')}", dave.user: f"c-{unique_user('dave')}"}
        simultaneously(
            lambda: carol.send_signal(bob.user, "call-invite", callType="audio", callId=ids[carol.user]),
            lambda: dave.send_signal(bob.user, "call-invite", callType="audio", callId=ids[dave.user]),
        )

        def settled(g) -> bool:
            answered = all(notices(g[c.user], "call-ringing", "call-failed") for c in (carol, dave))
            return answered and (not any(of_type(g[c.user], "call-ringing") for c in (carol, dave))
                                 or bool(of_type(g[bob.user], "call-invite")))

        got = gather([bob, carol, dave], settled)
        ctx = f"rep {rep}: " + "; ".join(f"{u} got {m!r}" for u, m in got.items())
        ringing = [c for c in (carol, dave) if of_type(got[c.user], "call-ringing")]
        assert len(ringing) == 1, f"{len(ringing)} callers ringing: {ctx}"
        winner = ringing[0]
        loser = dave if winner is carol else carol
        assert len(got[winner.user]) == 1, ctx
        ring = got[winner.user][0].json
        assert ring["type"] == "call-ringing" and ring["callId"] == ids[winner.user] and ring["to"] == bob.user, ctx
        assert len(got[loser.user]) == 1, ctx
        failed = got[loser.user][0].json
        assert failed["type"] == "call-failed" and failed["reason"] == "busy" and failed["to"] == bob.user, ctx
        invites = of_type(got[bob.user], "call-invite")
        assert len(got[bob.user]) == len(invites) == 1, f"the callee must get exactly one invite: {ctx}"
        assert invites[0].sender == winner.user and invites[0].json["callId"] == ids[winner.user], ctx
        loser_rec = final_record(nodes, ids[loser.user])
        assert loser_rec is None or loser_rec["status"] == 5, f"{ctx}; loser's record {loser_rec}"

        hang_up(winner, bob, ids[winner.user])
        wait_final_record(nodes, ids[winner.user], 3)
        wait_call_state_released(redis_server, bob.user, carol.user, dave.user)
        for c in (bob, carol, dave):
            c.close()


def test_crossed_invites(cluster_factory, join, redis_server):
    nodes = cluster_factory(2)
    n1, n2 = nodes
    outcomes: Counter[str] = Counter()
    for rep in range(REPS):
        alice, bob = join(n1, unique_user("alice")), join(n2, unique_user("bob"))
        ids = {alice.user: f"x-{unique_user('a')}", bob.user: f"x-{unique_user('b')}"}
        peer = {alice.user: bob, bob.user: alice}
        simultaneously(
            lambda: alice.send_signal(bob.user, "call-invite", callType="audio", callId=ids[alice.user]),
            lambda: bob.send_signal(alice.user, "call-invite", callType="audio", callId=ids[bob.user]),
        )

        def settled(g) -> bool:
            for c in (alice, bob):
                if not notices(g[c.user], "call-ringing", "call-failed"):
                    return False
                if of_type(g[c.user], "call-ringing") and not of_type(g[peer[c.user].user], "call-invite"):
                    return False
            return True

        got = gather([alice, bob], settled)
        ctx = f"rep {rep}: alice got {got[alice.user]!r}; bob got {got[bob.user]!r}"
        ringing = []
        for c in (alice, bob):
            other = peer[c.user]
            mine = notices(got[c.user], "call-ringing", "call-failed")
            assert len(mine) == 1, f"{c.user} must get one ringing or failed notice: {ctx}"
            invites_from_c = [m for m in of_type(got[other.user], "call-invite") if m.sender == c.user]
            if mine[0].signal_type == "call-ringing":
                ringing.append(c)
                assert mine[0].json["callId"] == ids[c.user], ctx
                assert len(invites_from_c) == 1 and invites_from_c[0].json["callId"] == ids[c.user], ctx
            else:
                # Glare (PROTOCOL.md §8): the later invite is refused, naming the call that stands.
                assert mine[0].json["reason"] == "glare" and mine[0].json["to"] == other.user, ctx
                assert mine[0].json["callId"] == ids[other.user], ctx
                assert invites_from_c == [], f"a refused invite was relayed: {ctx}"
        assert len(ringing) == 1, f"crossed invites must leave exactly one call: {ctx}"
        assert len(got[alice.user]) + len(got[bob.user]) == 2 + len(ringing), f"unexpected messages: {ctx}"

        caller = ringing[0]
        callee = peer[caller.user]
        call_id = ids[caller.user]
        outcomes[f"one rings ({'n1' if caller is alice else 'n2'} caller)"] += 1
        assert redis_server.cli("GET", f"webrtc:user-call:{callee.user}") == call_id, ctx
        callee.send_signal(caller.user, "call-reject", callId=call_id)
        rej = caller.expect_signal("call-reject")
        assert rej.json["callId"] == call_id, rej
        wait_final_record(nodes, call_id, 2)
        # No call is left behind.
        wait_call_state_released(redis_server, alice.user, bob.user)
        alice.close()
        bob.close()
    print(f"crossed invites over {REPS} runs: {dict(outcomes)}")


def test_double_accept(cluster_factory, join, redis_server):
    nodes = cluster_factory(2)
    for rep in range(REPS):
        caller_node, callee_node = (nodes[0], nodes[1]) if rep % 2 == 0 else (nodes[1], nodes[0])
        alice, bob = join(caller_node, unique_user("alice")), join(callee_node, unique_user("bob"))
        call_id = invite(alice, bob)
        simultaneously(lambda: bob.send_signal(alice.user, "call-accept", callId=call_id),
                       lambda: bob.send_signal(alice.user, "call-accept", callId=call_id))
        got = gather([alice, bob], lambda g: bool(of_type(g[alice.user], "call-accept") and g[bob.user]))
        ctx = f"rep {rep}: alice got {got[alice.user]!r}; bob got {got[bob.user]!r}"
        accepts = of_type(got[alice.user], "call-accept")
        assert len(got[alice.user]) == len(accepts) == 1, f"the caller must see exactly one accept: {ctx}"
        assert accepts[0].json["callId"] == call_id, ctx
        assert len(got[bob.user]) == 1 and is_error(got[bob.user][0]), ctx
        assert got[bob.user][0].json["reason"] in ("no-call", "invalid-signal"), ctx
        wait_final_record(nodes, call_id, 1)
        # The call is active once, and works.
        alice.send_signal(bob.user, "offer", callId=call_id, offer={"type": "offer", "sdp": "v=0\r\n"})
        assert bob.expect_signal("offer").json["callId"] == call_id
        hang_up(bob, alice, call_id)
        wait_final_record(nodes, call_id, 3)
        wait_call_state_released(redis_server, alice.user, bob.user)
        alice.close()
        bob.close()


def test_both_parties_hang_up_at_once(cluster_factory, join, redis_server):
    nodes = cluster_factory(2)
    n1, n2 = nodes
    outcomes: Counter[str] = Counter()
    for rep in range(REPS):
        alice, bob = join(n1, unique_user("alice")), join(n2, unique_user("bob"))
        call_id = start_call(alice, bob)
        simultaneously(lambda: alice.send_signal(bob.user, "call-hangup", callId=call_id),
                       lambda: bob.send_signal(alice.user, "call-hangup", callId=call_id))
        # One hangup ends the call and is relayed; the other matches no call any more.
        got = gather([alice, bob], lambda g: sum(len(of_type(m, "call-hangup")) for m in g.values()) >= 1
                     and sum(len([x for x in m if is_error(x)]) for m in g.values()) >= 1)
        ctx = f"rep {rep}: alice got {got[alice.user]!r}; bob got {got[bob.user]!r}"
        relayed = {u: of_type(m, "call-hangup") for u, m in got.items()}
        errors = {u: [x for x in m if is_error(x)] for u, m in got.items()}
        assert sum(map(len, relayed.values())) == 1, f"exactly one hangup must be relayed: {ctx}"
        loser = next(u for u, m in relayed.items() if m)  # got the other's hangup; their own was late
        winner = bob.user if loser == alice.user else alice.user
        assert errors[loser] and errors[loser][0].json["reason"] == "no-call" and len(errors[loser]) == 1, ctx
        assert got[winner] == [], f"the winner must get nothing: {ctx}"
        assert len(got[loser]) == 2, ctx
        outcomes[f"{'alice (n1)' if winner == alice.user else 'bob (n2)'} first"] += 1
        rec = wait_final_record(nodes, call_id, 3)
        assert rec["end_time"] is not None, rec
        wait_call_state_released(redis_server, alice.user, bob.user)
        alice.close()
        bob.close()
    print(f"simultaneous hangups over {REPS} runs: {dict(outcomes)}")
