"""What one hostile or broken client can make a node hold, and that it never costs anyone else
(PROTOCOL.md section 9): real node processes, real sockets, the node's RSS from /proc.

Each attack runs while a well-behaved pair keeps completing calls on the same node.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest
from websockets.exceptions import InvalidStatus

from chatmessage_pb2 import ChatMessage
from cluster import RssSampler, rss_bytes
from switchboard_client import (
    Client,
    RawWebSocket,
    assert_notice,
    http_get,
    make_token,
    unique_user,
    wait_until,
)
from test_calls import ANSWER, OFFER, candidate, invite, start_call

MIB = 1024 * 1024
#: PROTOCOL.md section 9: "one attacking client costs a node at most tens of MiB".
ATTACK_RSS_BOUND = 64 * MIB
#: Linux TCP states (include/net/tcp_states.h): reset, or the peer's FIN received.
TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8
#: The well-behaved pair calls as fast as it can during an attack.
PAIR_LIMITS = {"SWITCHBOARD_LIMITS_INVITES_PER_MINUTE": "100000"}


def mib(n: float) -> str:
    return f"{n / MIB:.1f} MiB"


def complete_call(caller: Client, callee: Client) -> None:
    """Invite, accept, offer, answer, one candidate each way, hangup: all delivered."""
    call_id = start_call(caller, callee)
    caller.send_signal(callee.user, "offer", callId=call_id, offer=OFFER)
    callee.expect_signal("offer")
    callee.send_signal(caller.user, "answer", callId=call_id, answer=ANSWER)
    caller.expect_signal("answer")
    caller.send_signal(callee.user, "ice-candidate", callId=call_id, candidate=candidate(1))
    callee.expect_signal("ice-candidate")
    caller.send_signal(callee.user, "call-hangup", callId=call_id)
    callee.expect_signal("call-hangup")


class CallsMeanwhile:
    """A well-behaved pair completing calls in a thread while a `with` block attacks the node."""

    def __init__(self, caller: Client, callee: Client, pause: float = 0.0):
        """`pause` paces the calls (seconds between two), for a pair that must keep within the default budget."""
        self.caller, self.callee, self.pause = caller, callee, pause
        self.completed = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                complete_call(self.caller, self.callee)
                self.completed += 1
                self._stop.wait(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by __exit__
            self.error = exc

    def __enter__(self) -> "CallsMeanwhile":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert self.error is None, f"the well-behaved pair failed during the attack: {self.error!r}"
        assert self.completed >= 1, "the well-behaved pair completed no call during the attack"


def non_reading_client(node, user: str | None = None) -> RawWebSocket:
    """An upgraded client with a small receive buffer that never reads."""
    raw = RawWebSocket(node.http_url, make_token(user or unique_user("deaf")))
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.sock.settimeout(0.2)
    return raw


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One client frame (masked, final), as RawWebSocket.send_frame writes it."""
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
    return header + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def flood(raw: RawWebSocket, frames: list[tuple[int, bytes]], seconds: float) -> tuple[int, bool]:
    """Sends `frames` over and over, for at most `seconds`, without reading (in batches of 64, so that Python
    keeps up with the node); returns (bytes sent, whether the node stopped taking them: a send that
    could not complete for 0.2 s, or the node closed the connection)."""
    batch = b"".join(masked_frame(op, payload) for op, payload in frames) * (64 // len(frames) or 1)
    sent, stalled = 0, False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stalled:
        try:
            raw.sock.sendall(batch)
            sent += len(batch)
        except (socket.timeout, TimeoutError):
            stalled = True
        except OSError:
            return sent, True  # closed by the node: it takes nothing more either
    return sent, stalled


def closed_by_node(raw: RawWebSocket, timeout: float) -> bool:
    """Whether the node ends the TCP connection within `timeout`, seen in the kernel's state of the
    client's socket (TCP_INFO), without reading: reading would drain what the node holds for it."""
    def ended() -> bool:
        state = raw.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        return state in (TCP_CLOSE, TCP_CLOSE_WAIT)

    try:
        wait_until(ended, timeout, "the node to end the connection", interval=0.1)
        return True
    except AssertionError:
        return False


def settled_rss(node, baseline: int, margin: int, timeout: float = 15) -> int:
    """Waits until the node's RSS is back under `baseline + margin`; returns it."""
    seen = [0]

    def back() -> bool:
        seen[0] = rss_bytes(node.proc.pid)
        return seen[0] <= baseline + margin

    wait_until(back, timeout, f"node RSS back under {mib(baseline + margin)}", interval=0.25)
    return seen[0]


# -- a client that does not read ------------------------------------------------------------


@pytest.mark.slow
def test_non_reading_clients_cost_a_bounded_amount(node_factory, connect):
    """Four clients send pings (each answered by a pong of the same size), heartbeats and text to an
    offline user as fast as they can and read nothing: once the kernel's buffers are full, the node
    stops reading from them, holds at most about a MiB each, closes them (1008 write timeout, or 1001
    pong timeout, then a TCP reset when the close cannot be delivered), and gives the memory back. Budgets are lifted so that backpressure alone bounds it."""
    node = node_factory(
        SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="1000000",
        SWITCHBOARD_LIMITS_MESSAGES_BURST="1000000",
        SWITCHBOARD_WEBSOCKET_WRITE_TIMEOUT="3s",
        # When the node's own output fits in the kernel's buffers, TCP stalls both ways and the node
        # holds nothing; the unanswered ping ends such a connection.
        SWITCHBOARD_WEBSOCKET_PING_INTERVAL="5s",
        SWITCHBOARD_WEBSOCKET_PONG_TIMEOUT="2s",
        **PAIR_LIMITS,
    )
    alice, bob = connect(node), connect(node)
    complete_call(alice, bob)  # warm up: the baseline includes a call's allocations
    baseline = rss_bytes(node.proc.pid)

    heartbeat = ChatMessage(type="heatbeat", content="ping").SerializeToString()
    to_offline = ChatMessage(to=unique_user("ghost"), content="x" * 4000, contentType=1, messageType=1).SerializeToString()
    frames = [(RawWebSocket.OP_PING, b"p" * 125)] * 30 + [(RawWebSocket.OP_BINARY, heartbeat), (RawWebSocket.OP_BINARY, to_offline)]
    attackers = [non_reading_client(node) for _ in range(4)]
    results: list[tuple[int, bool]] = [(0, False)] * len(attackers)

    def attack(i: int) -> None:
        results[i] = flood(attackers[i], frames, seconds=10)

    started = time.monotonic()
    with RssSampler(node.proc.pid) as sampler, CallsMeanwhile(alice, bob) as calls:
        threads = [threading.Thread(target=attack, args=(i,)) for i in range(len(attackers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        closed = [closed_by_node(raw, timeout=3 + 2 + 10) for raw in attackers]
    elapsed = time.monotonic() - started
    growth = sampler.peak - baseline
    print(f"non-reading x4: sent {[mib(s) for s, _ in results]}, node stopped reading: {[st for _, st in results]}; "
          f"RSS baseline {mib(baseline)}, peak {mib(sampler.peak)} (+{mib(growth)}); all closed after {elapsed:.1f}s; "
          f"{calls.completed} calls completed meanwhile")
    assert all(stalled for _, stalled in results), "the node kept reading from a client that does not read"
    assert all(closed), f"not every non-reading client was closed: {closed}"
    assert growth < ATTACK_RSS_BOUND, f"RSS grew by {mib(growth)} under four non-reading clients"
    after = settled_rss(node, baseline, margin=16 * MIB)
    print(f"RSS after they left: {mib(after)}")
    for raw in attackers:
        raw.close()


@pytest.mark.slow
def test_recipient_that_does_not_read_is_closed_at_max_pending_bytes(node_factory, connect):
    """A sender relays 200 x 512 KiB to a recipient that reads nothing: the node holds at most
    max_pending_bytes for it (plus a message), closes it, and the sender hears `offline` after."""
    node = node_factory(
        SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="1000",
        SWITCHBOARD_WEBSOCKET_MAX_PENDING_BYTES=str(2 * MIB),
        SWITCHBOARD_WEBSOCKET_WRITE_TIMEOUT="30s",  # the byte cap must act, not the timer
        **PAIR_LIMITS,
    )
    alice, bob = connect(node), connect(node)
    sender = connect(node)
    deaf_user = unique_user("deaf")
    deaf = non_reading_client(node, deaf_user)
    baseline = rss_bytes(node.proc.pid)
    big = "y" * (512 * 1024)
    with RssSampler(node.proc.pid) as sampler, CallsMeanwhile(alice, bob) as calls:
        for _ in range(200):
            sender.send(to=deaf_user, content=big)
        assert closed_by_node(deaf, timeout=10), "the recipient over max_pending_bytes was not closed"
        # The node forgot the recipient: the sender is told it is offline.
        sender.send(to=deaf_user, content="anyone there?")
        while (msg := sender.recv()).json.get("reason") != "offline":
            assert_notice(msg, sender.user, "error")
    growth = sampler.peak - baseline
    print(f"deaf recipient: RSS baseline {mib(baseline)}, peak {mib(sampler.peak)} (+{mib(growth)}); "
          f"{calls.completed} calls meanwhile")
    assert growth < ATTACK_RSS_BOUND
    settled_rss(node, baseline, margin=16 * MIB)
    deaf.close()


# -- per-user limits ------------------------------------------------------------------------


def bytes_read_by(pid: int) -> int:
    """What a process has read with read(2) and friends, sockets included (`rchar` in /proc/PID/io)."""
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/PID/io")


def test_client_flooding_over_its_budget_is_held_back_by_tcp(node_factory, connect):
    """With the default budget, a client that keeps sending after its budget is gone is read only a few
    times a second (PROTOCOL.md section 9): the node stops reading it until its budget has refilled a
    little, so it costs a bounded amount of reading, while the others are served as usual."""
    node = node_factory(**PAIR_LIMITS)  # the default message budget; the pair paces itself within it
    alice, bob = connect(node), connect(node)
    complete_call(alice, bob)
    flooder = non_reading_client(node)
    to_offline = ChatMessage(to=unique_user("ghost"), content="flood", contentType=1, messageType=1).SerializeToString()
    frames = [(RawWebSocket.OP_PING, b"p" * 60), (RawWebSocket.OP_BINARY, to_offline)]
    seconds = 4.0
    read_before = bytes_read_by(node.proc.pid)
    sent = 0
    with CallsMeanwhile(alice, bob, pause=0.2) as calls:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            n, _ = flood(flooder, frames, deadline - time.monotonic())
            sent += n
    node_read = bytes_read_by(node.proc.pid) - read_before
    print(f"over-budget flood for {seconds:.0f}s: client sent {mib(sent)}, the node read {mib(node_read)} "
          f"(everyone's traffic included); {calls.completed} calls completed meanwhile")
    # At most a few reads of 4 x 64 KiB a second, plus the burst's 400 frames and the pair's calls.
    assert node_read < 8 * MIB, f"the node read {mib(node_read)} from a client over its budget in {seconds}s"
    flooder.close()


def test_budget_follows_the_user_across_reconnects(node_factory, connect):
    node = node_factory(SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="1", SWITCHBOARD_LIMITS_MESSAGES_BURST="10")
    bob = connect(node)
    user = unique_user("alice")
    alice = connect(node, user, sync=False)
    for i in range(10):
        alice.send(to=bob.user, content=f"m{i}")
    assert [bob.recv().content for _ in range(10)] == [f"m{i}" for i in range(10)]
    alice.close()
    # A new connection of the same user starts with the budget the old one left: empty.
    alice = connect(node, user, sync=False)
    alice.send(to=bob.user, content="after reconnect")
    assert assert_notice(alice.recv(), user, "error")["reason"] == "rate-limited"
    bob.expect_no_message(0.3)


def test_over_budget_pings_and_heartbeats_get_no_answer(node_factory, connect):
    node = node_factory(SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="1", SWITCHBOARD_LIMITS_MESSAGES_BURST="3")
    raw = RawWebSocket(node.http_url, make_token(unique_user("pinger")))
    try:
        for _ in range(3):
            raw.send_frame(RawWebSocket.OP_PING, b"in budget")
            assert raw.read_frame(2) == (RawWebSocket.OP_PONG, b"in budget")
        raw.send_frame(RawWebSocket.OP_PING, b"over")
        raw.send_message(ChatMessage(type="heatbeat", content="ping"))
        frames = []
        try:
            while True:
                frames.append(raw.read_frame(0.5))
        except TimeoutError:
            pass
        assert all(op != RawWebSocket.OP_PONG for op, _ in frames), f"an over-budget ping was answered: {frames}"
        for op, payload in frames:  # at most the one rate-limited notice
            msg = ChatMessage()
            msg.ParseFromString(payload)
            assert msg.type != "heatbeat", "an over-budget heartbeat was answered"
        assert len(frames) <= 1
    finally:
        raw.close()


def test_rate_limited_notices_at_most_once_a_second(node_factory, connect):
    node = node_factory(SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="1", SWITCHBOARD_LIMITS_MESSAGES_BURST="1")
    alice, bob = connect(node, sync=False), connect(node)
    started = time.monotonic()
    for i in range(300):
        alice.send(to=bob.user, content=f"flood-{i}")
    elapsed = time.monotonic() - started
    notices = []
    while (msg := alice.try_recv(0.5)) is not None:
        notices.append(assert_notice(msg, alice.user, "error")["reason"])
    print(f"300 messages in {elapsed:.2f}s over a 1/s budget: {len(notices)} rate-limited notices")
    assert notices and set(notices) == {"rate-limited"}
    assert len(notices) <= int(elapsed) + 2


def test_ice_burst_of_a_real_call_passes_with_the_defaults(node, connect):
    """PROTOCOL.md section 9: after invite and accept, an offer, an answer and 300 candidates sent
    back to back are all delivered with the default limits."""
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    bob.send_signal(alice.user, "answer", callId=call_id, answer=ANSWER)
    for i in range(300):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i % 250))
    assert bob.expect_signal("offer").json["callId"] == call_id
    got = [bob.expect_signal("ice-candidate").json["candidate"]["candidate"] for _ in range(300)]
    assert got == [candidate(i % 250)["candidate"] for i in range(300)]
    assert alice.expect_signal("answer").json["callId"] == call_id
    alice.expect_no_message(0.3)


# -- upgrades and connection slots ----------------------------------------------------------


@pytest.mark.slow
def test_one_token_reconnecting_never_keeps_others_out(node_factory, connect):
    """One user reconnects 200 times as fast as it can (from its own address); with
    max_connections nearly used up, everyone else is always admitted: a replaced session frees its
    slot at once, and the reconnecting user alone is refused (429)."""
    node = node_factory(SWITCHBOARD_WEBSOCKET_MAX_CONNECTIONS="4", **PAIR_LIMITS)
    alice, bob = connect(node), connect(node)
    user = unique_user("churn")
    token = make_token(user)
    statuses: dict[int, int] = {}
    others_refused: list[int] = []
    admitted_others = 0
    sockets: list[Client] = []
    for i in range(200):
        try:
            sockets.append(Client(node.ws_url, token, user=user, sync=False, source_address=("127.0.0.2", 0)))
            statuses[101] = statuses.get(101, 0) + 1
        except InvalidStatus as exc:
            statuses[exc.response.status_code] = statuses.get(exc.response.status_code, 0) + 1
        if i % 20 == 19:
            other = unique_user("other")
            try:
                c = Client(node.ws_url, make_token(other), user=other)
                c.close()
                admitted_others += 1
            except InvalidStatus as exc:
                others_refused.append(exc.response.status_code)
    print(f"200 reconnects of one token: {statuses}; others admitted {admitted_others}, refused {others_refused}")
    assert others_refused == [], "another user was refused while one token reconnected"
    assert admitted_others == 10
    assert statuses.get(503, 0) == 0
    assert statuses.get(429, 0) > 0, "the reconnecting token was never limited"
    assert set(statuses) <= {101, 429}
    complete_call(alice, bob)
    for c in sockets:
        c.close()


def test_upgrades_limited_per_user(node_factory):
    node = node_factory(SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND="2")
    user = unique_user("eager")
    token = make_token(user)
    codes = []
    clients = []
    for _ in range(6):
        try:
            clients.append(Client(node.ws_url, token, user=user, sync=False))
            codes.append(101)
        except InvalidStatus as exc:
            codes.append(exc.response.status_code)
    for c in clients:
        c.close()
    assert codes[:2] == [101, 101] and 429 in codes[2:], codes
    # Others are not affected.
    other = Client(node.ws_url, make_token(unique_user("calm")), sync=True)
    other.close()


def test_message_right_after_the_101_is_delivered(node_factory, connect):
    """300 times: a user connects, and the moment its client sees the 101 another user sends to it."""
    node = node_factory(SWITCHBOARD_LIMITS_UPGRADES_PER_SECOND="1000", SWITCHBOARD_LIMITS_MESSAGES_PER_SECOND="1000")
    alice = connect(node)
    for i in range(300):
        bob = connect(node, unique_user("new"), sync=False)
        alice.send(to=bob.user, content=f"hello {i}")
        assert bob.recv().content == f"hello {i}"
        bob.close()
    alice.expect_no_message(0.3)  # no `offline` error for any of them


# -- call ids and reasons -------------------------------------------------------------------


def test_call_id_naming_a_record_is_refused_and_the_record_keeps_its_parties(node_factory, connect):
    node = node_factory()
    alice, bob, mallory, carol = (connect(node) for _ in range(4))
    ended_id = unique_user("cid")
    start_call(alice, bob, callId=ended_id)
    alice.send_signal(bob.user, "call-hangup", callId=ended_id)
    bob.expect_signal("call-hangup")
    node.wait_for_call_record(alice.user, ended_id, status=3)

    live_id = unique_user("live")
    invite(alice, bob, callId=live_id)

    answers = []
    for call_id in (ended_id, live_id):
        mallory.send_signal(carol.user, "call-invite", callId=call_id, callType="audio")
        answers.append(mallory.expect_notice("call-failed"))
    assert [a["reason"] for a in answers] == ["forbidden", "forbidden"]
    # The same answer whether or not the call is live: only the id differs.
    assert {k: v for k, v in answers[0].items() if k != "callId"} == {k: v for k, v in answers[1].items() if k != "callId"}
    carol.expect_no_message(0.3)

    record = node.db_call_record(ended_id)
    assert (record["caller_id"], record["callee_id"], record["status"]) == (alice.user, bob.user, 3)
    assert any(r["call_id"] == ended_id for r in node.api_calls(bob.user)), "the victim's call vanished"
    assert not any(r["call_id"] in (ended_id, live_id) for r in node.api_calls(mallory.user))


@pytest.mark.parametrize("reason", ["x" * 900_000, "x" * 65, "Ice Failed", "ice_failed", ""])
def test_invalid_hangup_reason_is_refused_and_changes_nothing(node, connect, reason):
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    alice.send_signal(bob.user, "call-hangup", callId=call_id, reason=reason)
    assert alice.expect_error("invalid-signal")
    bob.expect_no_message(0.2)
    # The call is still active: signals flow, and a valid reason ends it and is stored.
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    bob.expect_signal("offer")
    alice.send_signal(bob.user, "call-hangup", callId=call_id, reason="ice-failed")
    assert bob.expect_signal("call-hangup").json["reason"] == "ice-failed"
    record = node.wait_for_call_record(alice.user, call_id, status=3)
    assert record["end_reason"] == "ice-failed"

