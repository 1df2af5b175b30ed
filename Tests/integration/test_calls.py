"""Call signaling, outcomes, call records and call event logs (PROTOCOL.md sections 3-5, 7)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from switchboard_client import DEFAULT_USER_AGENT, SIGNAL, Client, unique_user

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}


def candidate(i: int) -> dict:
    return {"candidate": f"candidate:{i} 1 udp 2122260223 192.0.2.{i} {50000 + i} typ host",
            "sdpMid": "0", "sdpMLineIndex": 0}


def invite(caller: Client, callee: Client, call_type: str = "video", **extra) -> str:
    """caller invites callee; checks the relayed invite and the ringing notice; returns the callId."""
    caller.send_signal(callee.user, "call-invite", callType=call_type, **extra)
    got = callee.expect_signal("call-invite")
    call_id = got.json.get("callId")
    assert isinstance(call_id, str) and call_id, f"relayed invite has no callId: {got!r}"
    if "callId" in extra:
        assert call_id == extra["callId"], "a client-given callId must be kept"
    assert got.sender == caller.user and got.to == callee.user
    assert got.json["callType"] == call_type
    ringing = caller.expect_notice("call-ringing")
    assert ringing["callId"] == call_id
    assert ringing["to"] == callee.user
    return call_id


def start_call(caller: Client, callee: Client, call_type: str = "video", **extra) -> str:
    call_id = invite(caller, callee, call_type, **extra)
    callee.send_signal(caller.user, "call-accept", callId=call_id)
    accept = caller.expect_signal("call-accept")
    assert accept.json["callId"] == call_id
    return call_id


def parse_utc(value: str) -> datetime:
    assert isinstance(value, str), f"expected an ISO-8601 time string, got {value!r}"
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert dt.tzinfo is not None and dt.utcoffset() == timedelta(0), f"time is not UTC: {value!r}"
    return dt


RECORD_KEYS = {"call_id", "caller_id", "callee_id", "call_type", "status", "start_time", "end_time",
               "duration", "end_reason", "created_at", "updated_at"}


# ---------------------------------------------------------------------------------------------


def test_interop_python_client_completes_call(node, connect):
    """The whole flow in order, driven by plain Python WebSocket clients."""
    alice = connect(node, unique_user("alice"), name="Alice")
    bob = connect(node, unique_user("bob"), name="Bob")
    started = datetime.now(timezone.utc)

    # 1. invite (no callId: the server generates one) → callee gets the invite, caller gets ringing.
    alice.send_signal(bob.user, "call-invite", callType="video", appVersion="9.9")
    inv = bob.expect_signal("call-invite")
    assert inv.sender == alice.user and inv.fromUsername == "Alice" and inv.to == bob.user
    assert inv.json["from"] == alice.user and inv.json["fromName"] == "Alice"
    assert inv.json["callType"] == "video" and inv.json["appVersion"] == "9.9"
    call_id = inv.json["callId"]
    assert isinstance(call_id, str) and call_id
    ringing = alice.expect_notice("call-ringing")
    assert ringing["callId"] == call_id and ringing["to"] == bob.user
    node.wait_for_call_record(alice.user, call_id, 0)

    # 2. accept → relayed to the caller; record status 1.
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    acc = alice.expect_signal("call-accept")
    assert acc.json["callId"] == call_id and acc.json["from"] == bob.user and acc.json["fromName"] == "Bob"
    node.wait_for_call_record(alice.user, call_id, 1)

    # 3. offer / answer / ICE both ways, in order, unknown fields preserved.
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER, x_trace="t-1")
    off = bob.expect_signal("offer")
    assert off.json["offer"] == OFFER and off.json["x_trace"] == "t-1" and off.json["callId"] == call_id
    bob.send_signal(alice.user, "answer", callId=call_id, answer=ANSWER, x_trace="t-2")
    ans = alice.expect_signal("answer")
    assert ans.json["answer"] == ANSWER and ans.json["x_trace"] == "t-2"
    for i in range(5):
        alice.send_signal(bob.user, "ice-candidate", callId=call_id, candidate=candidate(i), seq=i)
        bob.send_signal(alice.user, "ice-candidate", callId=call_id, candidate=candidate(10 + i), seq=i)
    for i in range(5):
        got_b = bob.expect_signal("ice-candidate")
        assert got_b.json["candidate"] == candidate(i) and got_b.json["seq"] == i
        got_a = alice.expect_signal("ice-candidate")
        assert got_a.json["candidate"] == candidate(10 + i) and got_a.json["seq"] == i

    # 4. hangup → relayed; record status 3 with times and duration.
    alice.send_signal(bob.user, "call-hangup", callId=call_id)
    hup = bob.expect_signal("call-hangup")
    assert hup.json["callId"] == call_id and hup.json["from"] == alice.user
    rec = node.wait_for_call_record(alice.user, call_id, 3)
    finished = datetime.now(timezone.utc)
    assert RECORD_KEYS <= set(rec), f"missing keys: {RECORD_KEYS - set(rec)}"
    assert rec["caller_id"] == alice.user and rec["callee_id"] == bob.user
    assert rec["call_type"] == 2  # video
    start, end = parse_utc(rec["start_time"]), parse_utc(rec["end_time"])
    slack = timedelta(seconds=2)
    assert started - slack <= start <= end <= finished + slack
    assert isinstance(rec["duration"], int) and 0 <= rec["duration"] <= (finished - started).total_seconds() + 2
    parse_utc(rec["created_at"])
    parse_utc(rec["updated_at"])
    # The callee sees the same record among their own calls.
    assert any(r["call_id"] == call_id for r in node.api_calls(bob.user))

    # 5. the same row straight from the SQLite file.
    row = node.db_call_record(call_id)
    assert row is not None, "no call_records row in the SQLite database"
    assert row["status"] == 3
    assert row["caller_id"] == alice.user and row["callee_id"] == bob.user
    assert row["call_type"] == 2
    assert row["start_time"] is not None and row["end_time"] is not None
    assert row["duration"] is not None and row["duration"] >= 0

    # 6. the call is over: a further signal for it matches no call.
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    alice.expect_error("no-call")

    # 7. call events in the log.
    for event in ("webrtc_call_invite", "webrtc_call_accept", "webrtc_call_hangup"):
        node.wait_for_log(lambda r, e=event: r.get("event") == e and r.get("call_id") == call_id, event)


def test_client_given_call_id_is_kept(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = f"my-call-{unique_user('id')}"
    assert invite(alice, bob, "audio", callId=call_id) == call_id
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    assert alice.expect_signal("call-accept").json["callId"] == call_id
    bob.send_signal(alice.user, "call-hangup", callId=call_id)
    alice.expect_signal("call-hangup")
    rec = node.wait_for_call_record(alice.user, call_id, 3)
    assert rec["call_type"] == 1  # audio
    assert rec["callee_id"] == bob.user


def test_reject(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = invite(alice, bob, "audio")
    bob.send_signal(alice.user, "call-reject", callId=call_id, reason="busy-elsewhere")
    rej = alice.expect_signal("call-reject")
    assert rej.json["callId"] == call_id and rej.json["reason"] == "busy-elsewhere"
    assert rej.sender == bob.user
    node.wait_for_call_record(bob.user, call_id, 2)
    # The call is over: both are free for a new call, which gets a new callId.
    assert start_call(alice, bob) != call_id
    node.wait_for_log(lambda r: r.get("event") == "webrtc_call_reject" and r.get("call_id") == call_id,
                      "webrtc_call_reject")


def test_caller_hangs_up_while_ringing(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = invite(alice, bob)
    alice.send_signal(bob.user, "call-hangup", callId=call_id)
    assert bob.expect_signal("call-hangup").json["callId"] == call_id
    rec = node.wait_for_call_record(alice.user, call_id, 3)
    assert rec["end_time"] is not None


def test_callee_hangs_up_active_call(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    bob.send_signal(alice.user, "call-hangup", callId=call_id)
    assert alice.expect_signal("call-hangup").sender == bob.user
    rec = node.wait_for_call_record(bob.user, call_id, 3)
    assert rec["start_time"] is not None and rec["end_time"] is not None and rec["duration"] is not None


def test_ring_timeout(node_factory, connect):
    node = node_factory(SWITCHBOARD_CALLS_RING_TIMEOUT="1s")
    alice, bob = connect(node, name="Alice"), connect(node, name="Bob")
    call_id = invite(alice, bob, "audio")
    for party in (alice, bob):
        body = party.expect_notice("call-hangup", timeout=10)
        assert body["callId"] == call_id
        assert body["reason"] == "timeout"
    rec = node.wait_for_call_record(alice.user, call_id, 4)
    assert rec["status"] == 4
    node.wait_for_log(lambda r: r.get("event") == "webrtc_call_timeout" and r.get("call_id") == call_id,
                      "webrtc_call_timeout")
    # After the timeout the call is gone: accepting it now matches no call.
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    bob.expect_error("no-call")


def test_accepted_call_does_not_ring_out(node_factory, connect):
    node = node_factory(SWITCHBOARD_CALLS_RING_TIMEOUT="1s")
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    # Past the ring timeout (absence check): the active call must not be timed out.
    alice.expect_no_message(within=1.5)
    bob.expect_no_message(within=0.2)
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    assert bob.expect_signal("offer").json["callId"] == call_id
    node.wait_for_call_record(alice.user, call_id, 1)


def test_rejected_call_does_not_ring_out_later(node_factory, connect):
    node = node_factory(SWITCHBOARD_CALLS_RING_TIMEOUT="1s")
    alice, bob = connect(node), connect(node)
    call_id = invite(alice, bob)
    bob.send_signal(alice.user, "call-reject", callId=call_id)
    alice.expect_signal("call-reject")
    alice.expect_no_message(within=1.5)
    bob.expect_no_message(within=0.2)
    node.wait_for_call_record(alice.user, call_id, 2)


def test_only_the_callee_accepts_or_rejects(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = invite(alice, bob)
    for sig in ("call-accept", "call-reject"):
        alice.send_signal(bob.user, sig, callId=call_id)
        alice.expect_error({"no-call", "invalid-signal"})
    alice.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker", "the caller's accept/reject must not be relayed"
    node.wait_for_call_record(alice.user, call_id, 0)
    # The callee still can.
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    node.wait_for_call_record(alice.user, call_id, 1)


def test_accept_or_reject_of_an_active_call_is_refused(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    for sig in ("call-accept", "call-reject"):
        bob.send_signal(alice.user, sig, callId=call_id)
        bob.expect_error({"no-call", "invalid-signal"})
    bob.send(to=alice.user, content="marker")
    assert alice.recv().content == "marker", "accept/reject of an active call must not be relayed"
    node.wait_for_call_record(alice.user, call_id, 1)
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    assert bob.expect_signal("offer").json["callId"] == call_id


def test_callee_offline(node, connect):
    alice = connect(node)
    ghost = unique_user("ghost")
    call_id = f"offline-{unique_user('c')}"
    alice.send_signal(ghost, "call-invite", callType="audio", callId=call_id)
    body = alice.expect_notice("call-failed")
    assert body["reason"] == "offline"
    assert body["message"] == "用户离线"
    assert body["to"] == ghost
    # No record is required for an invite that never rang; if there is one it says "failed".
    assert all(r["status"] == 5 for r in node.api_calls(alice.user) if r["call_id"] == call_id)
    row = node.db_call_record(call_id)
    assert row is None or row["status"] == 5


def test_callee_busy(node, connect):
    alice, bob, carol = connect(node), connect(node), connect(node)
    call_id = invite(alice, bob)  # ringing counts as "in a call"
    carol.send_signal(bob.user, "call-invite", callType="audio")
    body = carol.expect_notice("call-failed")
    assert body["reason"] == "busy" and body["to"] == bob.user
    # Bob never saw carol's invite; his call with alice goes on.
    carol.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker"
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    carol.send_signal(alice.user, "call-invite", callType="audio")
    assert carol.expect_notice("call-failed")["reason"] == "busy"


def test_caller_already_in_a_call_is_busy(node, connect):
    alice, bob, carol = connect(node), connect(node), connect(node)
    start_call(alice, bob)
    alice.send_signal(carol.user, "call-invite", callType="audio")
    body = alice.expect_notice("call-failed")
    assert body["reason"] == "busy"
    alice.send(to=carol.user, content="marker")
    assert carol.recv().content == "marker", "carol must not get the refused invite"


def test_calling_yourself_is_forbidden(node, connect):
    alice = connect(node)
    alice.send_signal(alice.user, "call-invite", callType="audio")
    body = alice.expect_notice("call-failed")
    assert body["reason"] == "forbidden"
    assert isinstance(body["message"], str) and body["message"]


NO_CALL_SIGNALS = {
    "offer": {"offer": OFFER},
    "answer": {"answer": ANSWER},
    "ice-candidate": {"candidate": candidate(1)},
    "call-accept": {},
    "call-reject": {},
    "call-hangup": {},
}


@pytest.mark.parametrize("sig", list(NO_CALL_SIGNALS))
def test_signal_without_a_call_is_no_call(node, connect, sig):
    alice, bob = connect(node), connect(node)
    alice.send_signal(bob.user, sig, **NO_CALL_SIGNALS[sig])
    alice.expect_error("no-call")
    alice.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker", f"a {sig} matching no call must not be relayed"


@pytest.mark.parametrize("sig", list(NO_CALL_SIGNALS))
def test_signal_for_someone_elses_call_is_no_call(node, connect, sig):
    alice, bob, mallory = connect(node), connect(node), connect(node)
    call_id = start_call(alice, bob)
    for victim in (alice, bob):
        mallory.send_signal(victim.user, sig, callId=call_id, **NO_CALL_SIGNALS[sig])
        mallory.expect_error("no-call")
        mallory.send(to=victim.user, content="marker")
        assert victim.recv().content == "marker", f"{victim.user} got mallory's {sig}"
    # The real call is untouched.
    alice.send_signal(bob.user, "offer", callId=call_id, offer=OFFER)
    assert bob.expect_signal("offer").json["callId"] == call_id


def test_signal_with_wrong_call_id_between_parties_is_no_call(node, connect):
    alice, bob = connect(node), connect(node)
    start_call(alice, bob)
    alice.send_signal(bob.user, "offer", callId="no-such-call", offer=OFFER)
    alice.expect_error("no-call")
    alice.send(to=bob.user, content="marker")
    assert bob.recv().content == "marker"


def test_signals_without_call_id_refer_to_the_call_between_the_users(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = invite(alice, bob)
    bob.send_signal(alice.user, "call-accept")
    assert alice.expect_signal("call-accept").sender == bob.user
    node.wait_for_call_record(alice.user, call_id, 1)
    alice.send_signal(bob.user, "offer", offer=OFFER)
    assert bob.expect_signal("offer").json["offer"] == OFFER
    bob.send_signal(alice.user, "answer", answer=ANSWER)
    assert alice.expect_signal("answer").json["answer"] == ANSWER
    bob.send_signal(alice.user, "ice-candidate", candidate=candidate(3))
    assert alice.expect_signal("ice-candidate").json["candidate"] == candidate(3)
    bob.send_signal(alice.user, "call-hangup")
    alice.expect_signal("call-hangup")
    node.wait_for_call_record(alice.user, call_id, 3)


def test_large_sdp_offer_is_relayed(node, connect):
    """Real SDP offers are often over 16 KiB; the default frame limit must let them through."""
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    big = {"type": "offer", "sdp": "v=0\r\n" + "a=candidate:1 1 udp 1 192.0.2.1 9 typ host\r\n" * 600}
    assert len(big["sdp"]) > 20000
    alice.send_signal(bob.user, "offer", callId=call_id, offer=big)
    assert bob.expect_signal("offer").json["offer"] == big


def test_call_events_are_logged_as_json_lines(node, connect):
    ua = "SwitchboardTest/7.1 (integration; log-check)"
    alice = connect(node, user_agent=ua)
    bob = connect(node, user_agent=ua)
    call_id = start_call(alice, bob)
    bob.send_signal(alice.user, "call-hangup", callId=call_id)
    alice.expect_signal("call-hangup")
    for event in ("webrtc_call_invite", "webrtc_call_accept", "webrtc_call_hangup"):
        rec = node.wait_for_log(lambda r, e=event: r.get("event") == e and r.get("call_id") == call_id, event)
        assert {"timestamp", "level", "event", "caller", "callee", "call_id", "metadata"} <= set(rec), rec
        assert {rec["caller"], rec["callee"]} == {alice.user, bob.user}, rec
        assert isinstance(rec["metadata"], dict), rec
        assert rec["metadata"].get("user_agent") == ua, rec
        assert rec["metadata"].get("ip") == "127.0.0.1", rec
        assert isinstance(rec["level"], str) and rec["level"], rec
        assert rec["timestamp"], rec
    inv = node.wait_for_log(lambda r: r.get("event") == "webrtc_call_invite" and r.get("call_id") == call_id,
                            "invite")
    assert inv["caller"] == alice.user and inv["callee"] == bob.user


def test_failed_invite_is_logged(node, connect):
    alice = connect(node, user_agent=DEFAULT_USER_AGENT)
    ghost = unique_user("ghost")
    alice.send_signal(ghost, "call-invite", callType="audio")
    alice.expect_notice("call-failed")
    rec = node.wait_for_log(
        lambda r: str(r.get("event", "")).startswith("webrtc_call_fail") and r.get("callee") == ghost,
        "webrtc_call_failed for the offline callee",
    )
    assert rec["caller"] == alice.user
    assert rec["metadata"].get("user_agent") == DEFAULT_USER_AGENT


def test_call_records_schema_in_sqlite(node, connect):
    alice, bob = connect(node), connect(node)
    call_id = start_call(alice, bob)
    alice.send_signal(bob.user, "call-hangup", callId=call_id)
    bob.expect_signal("call-hangup")
    node.wait_for_call_record(alice.user, call_id, 3)
    conn = sqlite3.connect(f"file:{node.db_path}?mode=ro", uri=True, timeout=5)
    try:
        cols = {row[1] for row in conn.execute("PRAGMA table_info(call_records)")}
        indexed = set()
        for idx in conn.execute("PRAGMA index_list(call_records)"):
            for col in conn.execute(f"PRAGMA index_info('{idx[1]}')"):
                indexed.add(col[2])
        unique_call_id = any(
            idx[2] and [c[2] for c in conn.execute(f"PRAGMA index_info('{idx[1]}')")] == ["call_id"]
            for idx in conn.execute("PRAGMA index_list(call_records)")
        )
    finally:
        conn.close()
    assert {"id", "caller_id", "callee_id", "call_type", "status", "start_time", "end_time", "duration",
            "created_at", "updated_at", "call_id", "end_reason"} <= cols
    assert {"caller_id", "callee_id", "created_at"} <= indexed
    assert unique_call_id, "call_id must be unique"


def test_notice_and_relay_content_types(node, connect):
    """Relayed signals keep contentType 6 / messageType 1 and carry the sender, unlike notices."""
    alice, bob = connect(node), connect(node)
    alice.send_signal(bob.user, "call-invite", callType="audio")
    inv = bob.expect_signal("call-invite")
    assert inv.contentType == SIGNAL and inv.messageType == 1 and inv.sender == alice.user
    alice.expect_notice("call-ringing")
    alice.send_signal(bob.user, "call-hangup")
    bob.expect_signal("call-hangup")
