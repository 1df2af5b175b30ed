"""Per-user rate limits and the connection limit (PROTOCOL.md sections 4, 7)."""

from __future__ import annotations

import time

from websockets.exceptions import InvalidStatus

from switchboard_client import (
    Client,
    assert_notice,
    connect_expecting_status,
    http_get,
    make_token,
    raw_upgrade,
    unique_user,
    wait_until,
)


def test_invite_rate_limit(node_factory, connect):
    node = node_factory(SWITCHBOARD_LIMITS_INVITES_PER_MINUTE="2")
    alice, bob = connect(node), connect(node)
    for _ in range(2):
        alice.send_signal(bob.user, "call-invite", callType="audio")
        call_id = bob.expect_signal("call-invite").json["callId"]
        alice.expect_notice("call-ringing")
        alice.send_signal(bob.user, "call-hangup", callId=call_id)
        bob.expect_signal("call-hangup")
    alice.send_signal(bob.user, "call-invite", callType="audio")
    body = alice.expect_notice("call-failed")
    assert body["reason"] == "rate-limited"
    assert body["to"] == bob.user
    # Refused: bob never saw it, and other users' invites are not affected (the limit is per user).
    alice.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker"
    carol = connect(node)
    carol.send_signal(bob.user, "call-invite", callType="audio")
    bob.expect_signal("call-invite")
    carol.expect_notice("call-ringing")


def test_message_rate_limit(node_factory, connect):
    node = node_factory(SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="5", SWITCHBOARD_LIMITS_MESSAGES_BURST="5")
    alice, bob = connect(node), connect(node)
    burst = 40
    for i in range(burst):
        alice.send(to=bob.user, content=f"burst-{i}")
    # alice is told she is rate limited.
    assert_notice(alice.recv(), alice.user, "error")["reason"] == "rate-limited"

    # The connection stays usable: once the budget refills, a message gets through.
    # Bounded polling: each round sends one message and waits (briefly) for it at bob's end.
    relayed: list[str] = []
    deadline = time.monotonic() + 10
    delivered = None
    attempt = 0
    while delivered is None:
        assert time.monotonic() < deadline, "alice's messages were still refused 10 s after the burst"
        alice.send(to=bob.user, content=f"after-{attempt}")
        attempt += 1
        while (msg := bob.try_recv(0.5)) is not None:
            if msg.content.startswith("after-"):
                delivered = msg
                break
            relayed.append(msg.content)
    assert delivered.sender == alice.user

    assert 0 < len(relayed) < burst, f"{len(relayed)} of {burst} burst messages relayed"
    indices = [int(c.split("-")[1]) for c in relayed]
    assert indices == sorted(indices), "relayed messages must stay in order"

    # Everything alice got meanwhile is rate-limited errors; a heartbeat within her budget is
    # answered (heartbeats count against the budget too: one over it gets no answer).
    deadline = time.monotonic() + 10
    while True:
        assert time.monotonic() < deadline, "no heartbeat answered 10 s after the burst"
        alice.send(type="heatbeat", content="ping")
        msg = alice.try_recv(0.5)
        if msg is not None and msg.type == "heatbeat":
            assert msg.content == "pong"
            break
        if msg is not None:
            assert assert_notice(msg, alice.user, "error")["reason"] == "rate-limited"
    assert alice.is_open()


def test_rate_limit_is_per_user(node_factory, connect):
    node = node_factory(SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="5", SWITCHBOARD_LIMITS_MESSAGES_BURST="5")
    alice, bob, carol = connect(node), connect(node), connect(node)
    for i in range(30):
        alice.send(to=bob.user, content=f"burst-{i}")
    assert alice.recv().json["reason"] == "rate-limited"
    carol.send(to=bob.user, content="from carol")
    while (msg := bob.recv()).sender != carol.user:
        assert msg.sender == alice.user
    assert msg.content == "from carol"


def test_max_connections(node_factory, connect):
    node = node_factory(SWITCHBOARD_WEBSOCKET_MAX_CONNECTIONS="2")
    a, b = connect(node), connect(node)
    assert connect_expecting_status(node.ws_url, make_token(unique_user("third"))) == 503
    assert raw_upgrade(node.http_url, f"/ws?token={make_token(unique_user('fourth'))}").status == 503
    # The two admitted sessions are unaffected, and HTTP endpoints still answer.
    a.send(to=b.user, content="still here")
    assert b.recv().content == "still here"
    assert http_get(node.http_url, "/healthz").status == 200

    # A slot frees up when a session ends.
    a.close()
    user = unique_user("late")

    def admitted() -> Client | None:
        try:
            return Client(node.ws_url, make_token(user), user=user)
        except InvalidStatus as exc:
            assert exc.response.status_code == 503, exc
            return None

    late = wait_until(admitted, 5, "a connection slot after one session closed")
    try:
        late.send(to=b.user, content="late but in")
        assert b.recv().content == "late but in"
    finally:
        late.close()


def test_an_echo_connection_holds_a_slot_until_it_closes(node_factory):
    """The echo route (`testing.echo_route`) takes a connection slot too, and gives it back on close."""
    from websockets.sync.client import connect as ws_connect

    node = node_factory(SWITCHBOARD_TESTING_ECHO_ROUTE="true", SWITCHBOARD_WEBSOCKET_MAX_CONNECTIONS="1")
    url = node.ws_url.rsplit("/", 1)[0] + "/autobahn"

    def echo(url: str):
        # websockets 17: the connection itself, not a context manager
        return ws_connect(url, proxy=None, compression=None, legacy=True)

    first = echo(url)
    first.send(b"ping")
    assert first.recv() == b"ping"
    try:
        echo(url).close()
        raise AssertionError("a second connection was admitted beyond websocket.max_connections")
    except InvalidStatus as exc:
        assert exc.response.status_code == 503
    first.close()

    def admitted():
        try:
            return echo(url)
        except InvalidStatus as exc:
            assert exc.response.status_code == 503, exc
            return None

    second = wait_until(admitted, 5, "the slot back after the echo connection closed")
    second.send(b"again")
    assert second.recv() == b"again"
    second.close()
