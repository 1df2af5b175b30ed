"""Faults: a node killed, Redis restarted, the subscriber connections killed, Redis paused (PROTOCOL.md §6).

Every test gets its own redis-server (it is killed, restarted or paused here). Times that the
contract bounds are measured and printed (`pytest -s` shows them) as well as asserted.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from cluster import (
    NODES,
    candidate,
    check_stream,
    final_record,
    hang_up,
    inbox,
    invite,
    is_error,
    presence_api,
    start_call,
    stream_across,
    wait_call_state_released,
    wait_final_record,
)
from switchboard_client import Client, make_token, metric, unique_user, upgrade_request, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

HB = 0.3  # heartbeat interval for these tests: a node silent for 3 × 0.3 s is dead
FAST = {"SWITCHBOARD_REDIS_HEARTBEAT_INTERVAL": "300ms"}
MARGIN = 2.0  # on top of the contract's bounds: reaper period, scheduling, a debug build


@pytest.fixture
def redis_server(fresh_redis_server):
    """Overrides the per-module Redis of cluster.py: each fault test gets its own."""
    return fresh_redis_server


def test_killed_node_users_go_offline_and_calls_end(cluster_factory, join, redis_server):
    grace = 1.0
    nodes = cluster_factory(2, SWITCHBOARD_CALLS_RECONNECT_GRACE="1s", **FAST)
    n1, n2 = nodes
    alice, carol = join(n1, unique_user("alice")), join(n1, unique_user("carol"))
    bob = join(n2, unique_user("bob"))
    call_id = start_call(alice, bob)

    killed = time.monotonic()
    n1.kill()

    # Its users are offline within 3 heartbeats + margin, in Redis and for the surviving node.
    limit = 3 * HB + MARGIN
    wait_until(lambda: redis_server.presence_of(alice.user) is None and redis_server.presence_of(carol.user) is None,
               limit, f"presence of n1's users removed within {limit}s")
    print(f"n1's users removed from presence {time.monotonic() - killed:.2f}s after SIGKILL")
    for user in (alice.user, carol.user):
        body = presence_api(n2, user)
        assert body["online"] is False, body
    assert redis_server.presence_of(bob.user) == "n2", "the reaper removed a user of a live node"

    # The surviving party of the call is told, once the dead party's grace is over.
    limit = 3 * HB + grace + MARGIN
    body = bob.expect_notice("call-hangup", timeout=max(0.1, killed + limit - time.monotonic()))
    print(f"bob got call-hangup {time.monotonic() - killed:.2f}s after SIGKILL (bound {limit:.1f}s)")
    assert body["callId"] == call_id and body["reason"] == "peer-disconnected", body
    rec = wait_final_record(nodes, call_id, 3)
    assert rec.get("end_reason") == "peer-disconnected", rec

    # Invites and messages to the dead node's users (alice was in the call, carol was not): offline,
    # at once. All four are tried before asserting, so that a failure shows the whole picture.
    dave = join(n2)
    answers = {}
    for target in (carol, alice):
        t = time.monotonic()
        dave.send_signal(target.user, "call-invite", callType="audio")
        answers[f"invite {target.user}"] = (dave.expect_notice("call-failed", timeout=6), time.monotonic() - t)
    for target in (alice, carol):
        t = time.monotonic()
        dave.send(to=target.user, content="there?")
        answers[f"text to {target.user}"] = (dave.expect_notice("error", timeout=6), time.monotonic() - t)
    for what, (body, took) in answers.items():
        print(f"{what}: {body['reason']} after {took:.2f}s")
    wrong = {what: (body, round(took, 2)) for what, (body, took) in answers.items() if body["reason"] != "offline"}
    assert not wrong, f"expected reason offline for users of the dead node, got {wrong}"
    for what, (body, took) in answers.items():
        if what.startswith("invite"):
            assert body["message"] == "用户离线", body

    # bob is free again.
    wait_call_state_released(redis_server, bob.user)
    again = start_call(bob, dave)
    hang_up(dave, bob, again)


def test_killed_callers_node_ends_a_ringing_call(cluster_factory, join, redis_server):
    """The caller's node dies while the call rings: the callee is not left ringing (and busy) forever."""
    grace = 1.0
    nodes = cluster_factory(2, SWITCHBOARD_CALLS_RECONNECT_GRACE="1s", **FAST)
    n1, n2 = nodes
    alice, bob = join(n1), join(n2)
    call_id = invite(alice, bob)
    killed = time.monotonic()
    n1.kill()
    limit = 3 * HB + grace + MARGIN
    body = bob.expect_notice("call-hangup", timeout=limit)
    print(f"ringing callee got call-hangup {time.monotonic() - killed:.2f}s after SIGKILL (bound {limit:.1f}s)")
    assert body["callId"] == call_id and body["reason"] in ("peer-disconnected", "timeout"), body
    wait_until(lambda: (r := final_record(nodes, call_id)) and r["status"] in (3, 4), 5,
               "final record status 3 or 4")
    wait_call_state_released(redis_server, bob.user)
    carol = join(n2)
    again = invite(carol, bob)
    hang_up(carol, bob, again)


def test_redis_restart(cluster_factory, join, redis_server):
    nodes = cluster_factory(2, **FAST)
    n1, n2 = nodes
    a1, a2 = join(n1, unique_user("a1")), join(n1, unique_user("a2"))
    b, c = join(n2, unique_user("b")), join(n2, unique_user("c"))
    pids = [n.pid for n in nodes]
    expected_presence = {a1.user: "n1", a2.user: "n1", b.user: "n2", c.user: "n2"}
    assert redis_server.presence() == expected_presence
    ongoing = start_call(a2, c)  # a call across nodes, active while Redis goes away

    redis_server.kill()
    down = time.monotonic()
    wait_until(lambda: all(n.readyz() == 503 for n in nodes), 5, "/readyz 503 on both nodes")
    print(f"/readyz 503 on both nodes {time.monotonic() - down:.2f}s after Redis died")

    # Same-node messages still flow.
    a1.send(to=a2.user, content="local during the outage")
    got = a2.recv()
    assert got.content == "local during the outage" and got.sender == a1.user, got
    a2.send(to=a1.user, content="local reply")
    assert a1.recv().content == "local reply"

    # Anything that needs the other node is refused with `unavailable`, in bounded time.
    call_id = f"outage-{unique_user('c')}"
    a1.send_signal(b.user, "call-invite", callType="audio", callId=call_id)
    body = a1.expect_notice("call-failed", timeout=8)
    assert body["reason"] == "unavailable" and body["to"] == b.user, body
    assert isinstance(body.get("message"), str) and body["message"], body
    a2.send(to=b.user, content="cross-node during the outage")
    a2.expect_error("unavailable", timeout=8)
    b.send(to=a1.user, content="the other way")
    b.expect_error("unavailable", timeout=8)
    a2.send_signal(c.user, "offer", callId=ongoing, offer={"type": "offer", "sdp": "v=0\r\n"})
    a2.expect_error("unavailable", timeout=8)
    # b and c got none of it (absence check, bounded: everything above was answered already).
    b.expect_no_message(within=0.3)
    c.expect_no_message(within=0.05)

    redis_server.start()  # a new, empty redis-server on the same port
    up = time.monotonic()
    wait_until(lambda: all(n.readyz() == 200 for n in nodes), 10, "/readyz 200 on both nodes")
    ready = time.monotonic() - up
    seen: list[dict] = []
    try:
        wait_until(lambda: seen.append(redis_server.presence()) or seen[-1] == expected_presence, 10,
                   "HGETALL webrtc:presence shows every connected user again")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last: {seen[-1] if seen else None}, expected {expected_presence}") from None
    print(f"after the restart: ready in {ready:.2f}s, presence restored in {time.monotonic() - up:.2f}s")
    wait_until(lambda: set(redis_server.nodes()) == {"n1", "n2"}, 5, f"both nodes back in {NODES}")
    for n in nodes:
        wait_until(lambda n=n: redis_server.numsub(inbox(n.node_id)) >= 1, 5, f"{n.node_id} resubscribed")
    assert [n.pid for n in nodes] == pids and all(n.alive for n in nodes), "a node restarted"

    # The call that was going on survives: its signals flow again, it ends as usual.
    c.send_signal(a2.user, "answer", callId=ongoing, answer={"type": "answer", "sdp": "v=0\r\n"})
    assert a2.expect_signal("answer").json["callId"] == ongoing
    a2.send_signal(c.user, "ice-candidate", callId=ongoing, candidate=candidate(1))
    assert c.expect_signal("ice-candidate").json["callId"] == ongoing
    hang_up(c, a2, ongoing)
    wait_final_record(nodes, ongoing, 3)

    # Cross-node calls and messages work again.
    call_id = start_call(b, a1, "video")
    a1.send_signal(b.user, "offer", callId=call_id, offer={"type": "offer", "sdp": "v=0\r\n"})
    assert b.expect_signal("offer").json["callId"] == call_id
    hang_up(a1, b, call_id)
    wait_final_record(nodes, call_id, 3)
    b.send(to=a2.user, content="after the restart")
    assert a2.recv().content == "after the restart"
    a2.send(to=b.user, content="and back")
    assert b.recv().content == "and back"


def test_subscriber_killed_recovers_quickly(cluster_factory, join, redis_server):
    nodes = cluster_factory(2, SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="100000", **FAST)
    n1, n2 = nodes
    a, b = join(n1), join(n2)
    a.send(to=b.user, content="before")
    assert b.recv().content == "before"

    killed = redis_server.cli("CLIENT", "KILL", "TYPE", "pubsub")
    t0 = time.monotonic()
    assert killed >= 2, f"CLIENT KILL TYPE pubsub killed {killed} connections (expected both nodes')"

    # Probe both ways every 50 ms until a probe arrives in each direction.
    sent = 0
    first: dict[str, float] = {}
    delivered: dict[str, list[int]] = {a.user: [], b.user: []}
    errors: dict[str, int] = {a.user: 0, b.user: 0}
    other: list = []

    def read(client, peer) -> None:
        while (msg := client.try_recv(0.025)) is not None:
            if msg.contentType == 1 and msg.sender == peer.user and msg.content.startswith("probe:"):
                delivered[client.user].append(int(msg.content.split(":")[1]))
                first.setdefault(client.user, time.monotonic() - t0)
            elif is_error(msg, "unavailable"):
                errors[client.user] += 1
            else:
                other.append(msg)

    while len(first) < 2:
        assert time.monotonic() - t0 < 10, f"no cross-node delivery 10 s after the kill: {delivered}, {errors}"
        a.send(to=b.user, content=f"probe:{sent}")
        b.send(to=a.user, content=f"probe:{sent}")
        sent += 1
        read(b, a)
        read(a, b)
    recovery = max(first.values())
    print(f"cross-node delivery back {recovery:.2f}s after CLIENT KILL TYPE pubsub "
          f"(a→b {first[b.user]:.2f}s, b→a {first[a.user]:.2f}s)")
    assert recovery < 3.0, f"delivery took {recovery:.2f}s to come back"
    for n in nodes:
        assert redis_server.numsub(inbox(n.node_id)) >= 1, f"{n.node_id} not resubscribed"

    # Every probe is accounted for: delivered (in order, once) or its sender told `unavailable`.
    def settled() -> bool:
        read(b, a)
        read(a, b)
        return all(len(delivered[u]) + errors[p] >= sent for u, p in ((b.user, a.user), (a.user, b.user)))

    wait_until(settled, 8, "every probe delivered or reported", interval=0)
    for _ in range(10):  # 0.5 s more (absence check): late duplicates or extra errors would show
        read(b, a)
        read(a, b)
    assert not other, f"unexpected messages: {other[:5]!r}"
    for receiver, sender in ((b.user, a.user), (a.user, b.user)):
        got = delivered[receiver]
        print(f"{sender}→{receiver}: sent {sent}, delivered {len(got)}, unavailable {errors[sender]}")
        assert got == sorted(set(got)), f"{sender}→{receiver}: out of order or duplicated: {got}"
        assert len(got) + errors[sender] == sent, (
            f"{sender}→{receiver}: sent {sent}, delivered {len(got)}, unavailable errors {errors[sender]}")


def test_subscriber_killed_mid_stream_loses_nothing_silently(cluster_factory, join, redis_server):
    nodes = cluster_factory(2, SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="100000", **FAST)
    n1, n2 = nodes
    a, b = join(n1), join(n2)
    killed: list[int] = []
    results = stream_across([(a, b), (b, a)], count=300, fault_at=60, pace=0.005,
                            fault=lambda: killed.append(redis_server.cli("CLIENT", "KILL", "TYPE", "pubsub")))
    assert killed and killed[0] >= 2, f"CLIENT KILL TYPE pubsub killed {killed}"
    check_stream(results)
    # And it flows afterwards.
    a.send(to=b.user, content="after")
    assert b.recv().content == "after"
    b.send(to=a.user, content="after too")
    assert a.recv().content == "after too"


def test_redis_paused(cluster_factory, join, redis_server):
    # Heartbeat 1 s here: 3 heartbeats (3 s) outlast the 1.5 s pause, which must not make the nodes
    # look dead to each other; what is tested is the traffic during and after the pause.
    nodes = cluster_factory(2, SWITCHBOARD_REDIS_HEARTBEAT_INTERVAL="1s",
                            SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="100000")
    n1, n2 = nodes
    a, b = join(n1), join(n2)
    paused_at: list[float] = []

    def pause() -> None:
        assert redis_server.cli("CLIENT", "PAUSE", 1500, "ALL") == "OK"
        paused_at.append(time.monotonic())

    results = stream_across([(a, b), (b, a)], count=400, fault_at=50, pace=0.005, fault=pause)
    print(f"stream ended {time.monotonic() - paused_at[0]:.2f}s after the pause began")
    check_stream(results)

    # Everything flows after the pause: presence intact, messages, a call.
    assert redis_server.presence() == {a.user: "n1", b.user: "n2"}
    assert all(n.readyz() == 200 for n in nodes)
    a.send(to=b.user, content="after the pause")
    assert b.recv().content == "after the pause"
    call_id = invite(b, a)
    a.send_signal(b.user, "call-accept", callId=call_id)
    assert b.expect_signal("call-accept").json["callId"] == call_id
    hang_up(b, a, call_id)
    wait_final_record(nodes, call_id, 3)


def test_pause_longer_than_three_heartbeats_heals(cluster_factory, join, redis_server):
    """Redis stalls for 1.5 s, longer than 3 heartbeats (0.9 s): when it resumes, a node may reap the
    other, whose heartbeat was merely queued. Either way the cluster must heal by itself: every live
    node's users are back in presence and reachable, within a few heartbeats."""
    nodes = cluster_factory(2, **FAST)
    n1, n2 = nodes
    a, b = join(n1), join(n2)
    expected = {a.user: "n1", b.user: "n2"}
    assert redis_server.cli("CLIENT", "PAUSE", 1500, "ALL") == "OK"
    paused = time.monotonic()
    # Wait for the pause to end: the first command that Redis answers after it.
    redis_server.cli("SET", "webrtc:test:after-pause", "1", timeout=10)
    resumed = time.monotonic()
    resumed_ms = time.time() * 1000
    print(f"Redis answered again {resumed - paused:.2f}s after CLIENT PAUSE")
    # Healed: each node has beaten (and so reaped) at least twice since the pause ended, and
    # presence holds every connected user on their node.
    limit = 3 * HB + MARGIN
    seen: list = []

    def healed() -> bool:
        presence, beats = redis_server.presence(), redis_server.nodes()
        seen.append((presence, beats))
        return presence == expected and all(beats.get(n, 0) >= resumed_ms + 2 * HB * 1000 for n in ("n1", "n2"))

    try:
        wait_until(healed, limit, "both nodes beating again and both users back in presence")
    except AssertionError as exc:
        presence, beats = seen[-1] if seen else (None, None)
        raise AssertionError(f"{exc}; presence {presence} (expected {expected}); heartbeats "
                             f"{ {n: round(v - resumed_ms) for n, v in (beats or {}).items()} } ms after the pause")
    print(f"healed {time.monotonic() - resumed:.2f}s after the pause")
    a.send(to=b.user, content="after the stall")
    got = b.recv()
    assert got.content == "after the stall", got
    b.send(to=a.user, content="and back")
    assert a.recv().content == "and back"
    call_id = start_call(a, b)
    hang_up(b, a, call_id)


def test_an_upgrade_abandoned_before_its_101_gives_its_place_back(cluster_factory, redis_server):
    """The 101 waits until the session is registered in Redis (PROTOCOL.md §9). A client whose
    connection is reset meanwhile (Redis paused) frees its place among `websocket.max_connections` and
    its session at once, while Redis is still paused, and is never in the presence hash; the one place is
    the next user's once Redis is back."""
    (node,) = cluster_factory(1, SWITCHBOARD_WEBSOCKET_MAX_CONNECTIONS="1")
    gone = unique_user("gone")
    connections = f'switchboard_websocket_connections{{node="{node.node_id}"}}'
    sessions = f'switchboard_sessions{{node="{node.node_id}"}}'
    paused_until = time.monotonic() + 5
    assert redis_server.cli("CLIENT", "PAUSE", 5000, "ALL") == "OK"
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    sock.sendall(upgrade_request(node.http_url, f"/ws?token={make_token(gone)}"))
    wait_until(lambda: metric(node, connections) == 1 and metric(node, sessions) == 1, 2,
               "the upgrade admitted, its 101 waiting for Redis")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset
    wait_until(lambda: metric(node, connections) == 0 and metric(node, sessions) == 0, 2,
               "the place and the session given back once the connection was reset")
    assert time.monotonic() < paused_until, "given back only once Redis answered"

    late_user = unique_user("late")
    late = Client(node.ws_url, make_token(late_user), user=late_user, open_timeout=10)  # after the pause
    try:
        node.redis.wait_presence(late_user, node.node_id)
        assert redis_server.presence_of(gone) is None
    finally:
        late.close()
