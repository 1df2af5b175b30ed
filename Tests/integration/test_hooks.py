"""The app's backend (PROTOCOL.md §10): the invite permission hook and call event webhooks, against a
real HTTP server (hook_backend.py) that verifies every signature.

Three nodes for the module: `strict` (`invite_on_error` deny, no cache, events retried for 5 s),
`lenient` (`invite_on_error` allow, answers cached for a minute) and `tight` (one question open at a
time). Each posts its events to a path of its own. Users are unique per test, and the backend decides by the caller's name.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from conftest import NodeFactory
from hook_backend import HOOK_SECRET, Answer, HookBackend
from switchboard_client import TEXT, metric, unique_user, wait_until

TIMEOUT = 1.0  # hooks.invite_timeout


@pytest.fixture(scope="module")
def backend() -> Iterator[HookBackend]:
    server = HookBackend()
    # By the caller's name: "deny-…" {"allow":false}, "forbid-…" 403, "slow-…" sleeps past the timeout,
    # "broken-…" 500, "flip-…" whatever `flip` says now; anyone else is allowed.
    server.flip = Answer()

    def decide(question: dict) -> Answer:
        caller = question["caller"]
        if caller.startswith("deny"):
            return Answer(200, {"allow": False})
        if caller.startswith("forbid"):
            return Answer(403, {"error": "no"})
        if caller.startswith("slow"):
            return Answer(200, {"allow": True}, delay=TIMEOUT + 0.5)
        if caller.startswith("broken"):
            return Answer(500, {"error": "oops"})
        if caller.startswith("flip"):
            return server.flip
        return Answer()

    server.decide = decide
    yield server
    server.close()


def hooked(factory: NodeFactory, backend: HookBackend, events: str, **env: str):
    return factory(
        SWITCHBOARD_HOOKS_INVITE_URL=f"{backend.url}/permission",
        SWITCHBOARD_HOOKS_EVENTS_URL=f"{backend.url}/events/{events}",
        SWITCHBOARD_HOOKS_SECRET=HOOK_SECRET,
        SWITCHBOARD_HOOKS_INVITE_TIMEOUT=f"{int(TIMEOUT * 1000)}ms",
        **env,
    )


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, backend) -> Iterator[tuple]:
    factory = NodeFactory(tmp_path_factory, "hooks")
    strict = hooked(factory, backend, "strict", SWITCHBOARD_HOOKS_EVENTS_RETRY="5s")
    lenient = hooked(factory, backend, "lenient", SWITCHBOARD_HOOKS_INVITE_ON_ERROR="allow",
                     SWITCHBOARD_HOOKS_INVITE_CACHE_TTL="60s")
    tight = hooked(factory, backend, "tight", SWITCHBOARD_HOOKS_INVITE_MAX_IN_FLIGHT="1",
                   SWITCHBOARD_HOOKS_EVENTS_MAX_QUEUED="4")
    yield strict, lenient, tight
    factory.stop_all()


@pytest.fixture
def strict(nodes):
    return nodes[0]


@pytest.fixture
def lenient(nodes):
    return nodes[1]


def expect_forbidden(caller, callee, call_id=None) -> dict:
    failed = caller.expect_notice("call-failed")
    assert failed["reason"] == "forbidden" and failed["to"] == callee.user, failed
    if call_id is not None:
        assert failed["callId"] == call_id, failed
    callee.expect_no_message(within=0.3)
    return failed


def ring(caller, callee, **extra) -> str:
    caller.send_signal(callee.user, "call-invite", callType="audio", **extra)
    got = callee.expect_signal("call-invite")
    assert caller.expect_notice("call-ringing")["callId"] == got.json["callId"]
    return got.json["callId"]


def hang_up(caller, callee, call_id: str) -> None:
    caller.send_signal(callee.user, "call-hangup", callId=call_id)
    callee.expect_signal("call-hangup")


# ---------------------------------------------------------------------------------------------
# Invite permission


def test_allowed_invite_rings_after_a_signed_question(strict, backend, connect):
    alice, bob = connect(strict, unique_user("alice")), connect(strict, unique_user("bob"))
    call_id = ring(alice, bob, callId=f"c-{unique_user()}")
    [question] = backend.permission_questions(alice.user)
    assert question.signed, "the backend could not verify the signature"
    assert question.body == {"event": "call-permission", "caller": alice.user, "callee": bob.user,
                             "callId": call_id, "callType": "audio"}
    hang_up(alice, bob, call_id)


@pytest.mark.parametrize("kind", ["deny", "forbid"])
def test_denied_invite_is_forbidden_and_the_callee_sees_nothing(kind, strict, backend, connect):
    caller, callee = connect(strict, unique_user(kind)), connect(strict, unique_user("bob"))
    call_id = f"c-{unique_user()}"
    caller.send_signal(callee.user, "call-invite", callType="video", callId=call_id)
    expect_forbidden(caller, callee, call_id)
    record = strict.wait_for_call_record(caller.user, call_id, status=5)
    assert record["end_reason"] == "forbidden", record
    # The store let the call go: the callee is free for another caller at once.
    other = connect(strict, unique_user("carol"))
    hang_up(other, callee, ring(other, callee))


def test_timeout_and_errors_follow_invite_on_error(strict, lenient, backend, connect):
    # strict (deny): no answer within the timeout, and a 500, are forbidden.
    for kind in ("slow", "broken"):
        caller, callee = connect(strict, unique_user(kind)), connect(strict, unique_user("bob"))
        started = time.monotonic()
        caller.send_signal(callee.user, "call-invite", callType="audio")
        expect_forbidden(caller, callee)
        if kind == "slow":
            assert time.monotonic() - started >= TIMEOUT - 0.05, "answered before the timeout"
    # lenient (allow): the same invites ring.
    for kind in ("slow", "broken"):
        caller, callee = connect(lenient, unique_user(kind)), connect(lenient, unique_user("bob"))
        hang_up(caller, callee, ring(caller, callee))
    errors = metric(lenient, 'switchboard_hook_invite_answers_total{answer="error"}')
    assert errors >= 2, errors


def test_answers_are_cached_per_pair_and_errors_are_not(lenient, backend, connect):
    caller, callee = connect(lenient, unique_user("flip")), connect(lenient, unique_user("bob"))
    backend.flip = Answer(200, {"allow": False})
    caller.send_signal(callee.user, "call-invite", callType="audio")
    expect_forbidden(caller, callee)
    backend.flip = Answer()  # the backend changed its mind; the cached deny still stands
    caller.send_signal(callee.user, "call-invite", callType="audio")
    expect_forbidden(caller, callee)
    assert len(backend.permission_questions(caller.user)) == 1
    # Another pair is asked.
    third = connect(lenient, unique_user("bob"))
    hang_up(caller, third, ring(caller, third))
    assert len(backend.permission_questions(caller.user)) == 2
    # An error (500, allowed by invite_on_error) is not cached: the next invite asks again.
    backend.flip = Answer(500, {})
    fourth = connect(lenient, unique_user("bob"))
    hang_up(caller, fourth, ring(caller, fourth))
    backend.flip = Answer(200, {"allow": False})
    caller.send_signal(fourth.user, "call-invite", callType="audio")
    expect_forbidden(caller, fourth)
    assert len(backend.permission_questions(caller.user)) == 4


def test_a_slow_backend_holds_only_its_caller_whose_later_messages_keep_their_order(strict, backend, connect):
    slow, callee = connect(strict, unique_user("slow")), connect(strict, unique_user("bob"))
    witness = connect(strict, unique_user("witness"))
    alice, bob = connect(strict, unique_user("alice")), connect(strict, unique_user("bob"))
    slow.send_signal(callee.user, "call-invite", callType="audio")
    slow.send(to=witness.user, content="after the invite", contentType=TEXT)
    asked = wait_until(lambda: backend.permission_questions(slow.user), 2, "the slow question")
    deadline = asked[0].at + TIMEOUT
    # While the backend sleeps on that question: other users call and message, the callee included,
    # and the slow caller's own heartbeat is answered.
    call_id = ring(alice, bob)
    hang_up(alice, bob, call_id)
    callee.send(to=witness.user, content="from the callee", contentType=TEXT)
    assert witness.recv().content == "from the callee"
    slow.heartbeat()
    assert time.monotonic() < deadline, "the checks above took the whole timeout: they prove nothing"
    witness.expect_no_message(within=0.1)  # the slow caller's message still waits behind its invite
    # Then the invite's outcome, and only after it the caller's later message.
    expect_forbidden(slow, callee)
    got = witness.recv()
    assert got.content == "after the invite" and got.sender == slow.user, got


def test_questions_beyond_the_in_flight_bound_are_errors_at_once(nodes, backend, connect):
    tight = nodes[2]  # hooks.invite_max_in_flight 1, invite_on_error deny
    first, second = connect(tight, unique_user("slow")), connect(tight, unique_user("slow"))
    callee, other = connect(tight, unique_user("bob")), connect(tight, unique_user("bob"))
    first.send_signal(callee.user, "call-invite", callType="audio")
    wait_until(lambda: backend.permission_questions(first.user), 2, "the first question")
    started = time.monotonic()
    second.send_signal(other.user, "call-invite", callType="audio")
    expect_forbidden(second, other)
    assert time.monotonic() - started < TIMEOUT, "the second invite waited for the backend"
    assert backend.permission_questions(second.user) == [], "a question beyond the bound was sent"
    expect_forbidden(first, callee)  # the first one's timeout


# ---------------------------------------------------------------------------------------------
# Call events


def event_names(backend: HookBackend, path: str, call_id: str) -> list[str]:
    return [r.body["event"] for r in backend.events(path, call_id)]


def test_a_full_call_posts_its_events_in_order(strict, backend, connect):
    alice, bob = connect(strict, unique_user("alice")), connect(strict, unique_user("bob"))
    call_id = ring(alice, bob)
    bob.send_signal(alice.user, "call-accept", callId=call_id)
    alice.expect_signal("call-accept")
    for party, peer in ((alice, bob), (bob, alice), (alice, bob)):  # the first one counts
        party.send_signal(peer.user, "call-connected", callId=call_id)
    hang_up(alice, bob, call_id)
    expected = ["webrtc_call_invite", "webrtc_call_ringing", "webrtc_call_accept", "webrtc_call_connected",
                "webrtc_call_hangup"]
    wait_until(lambda: len(event_names(backend, "strict", call_id)) >= 5, 5, "the call's events")
    assert event_names(backend, "strict", call_id) == expected
    posted = backend.events("strict", call_id)
    assert all(r.signed for r in posted)
    # The body is the log line.
    logged = strict.wait_for_log(lambda rec: rec.get("event") == "webrtc_call_hangup" and rec.get("call_id") == call_id,
                                 "hangup log line")
    assert posted[-1].body == logged


def test_an_invite_to_an_offline_user_posts_failed_and_offline(strict, backend, connect):
    alice = connect(strict, unique_user("alice"))
    offline = unique_user("gone")
    alice.send_signal(offline, "call-invite", callType="audio", callId=f"c-{offline}")
    assert alice.expect_notice("call-failed")["reason"] == "offline"
    call_id = f"c-{offline}"
    wait_until(lambda: len(event_names(backend, "strict", call_id)) >= 2, 5, "failed and offline events")
    assert event_names(backend, "strict", call_id) == ["webrtc_call_offline", "webrtc_call_failed"]
    offline_event = backend.events("strict", call_id)[0].body
    assert offline_event["callee"] == offline and offline_event["caller"] == alice.user
    strict.wait_for_log(lambda rec: rec.get("event") == "webrtc_call_offline" and rec.get("call_id") == call_id,
                        "offline log line")


def test_events_survive_a_backend_that_fails_its_first_requests(strict, backend, connect):
    alice, bob = connect(strict, unique_user("alice")), connect(strict, unique_user("bob"))
    retried_before = metric(strict, "switchboard_hook_events_retried_total")
    with backend.lock:
        backend.events_fail["strict"] = 2
    call_id = ring(alice, bob)
    hang_up(alice, bob, call_id)
    # Backoff 1 s, then 2 s: every event arrives within a few seconds, in order, none lost.
    expected = ["webrtc_call_invite", "webrtc_call_ringing", "webrtc_call_hangup"]
    wait_until(lambda: len(event_names(backend, "strict", call_id)) >= 3, 8, "every event after the failures")
    assert event_names(backend, "strict", call_id) == expected
    failures = [r for r in backend.events("strict", call_id, taken_only=False) if r.status >= 500]
    assert len(failures) == 2, failures
    assert metric(strict, "switchboard_hook_events_retried_total") >= retried_before + 2


def test_events_given_up_after_the_retry_window_are_counted_and_logged(strict, backend, connect):
    alice = connect(strict, unique_user("alice"))
    given_up_before = metric(strict, "switchboard_hook_events_given_up_total")
    with backend.lock:
        backend.events_down.add("strict")
    try:
        call_id = f"c-{unique_user()}"
        alice.send_signal(unique_user("gone"), "call-invite", callType="audio", callId=call_id)
        alice.expect_notice("call-failed")
        # Tried at 0, 1 and 3 s; the next try (7 s) is past the 5 s window: given up.
        strict.wait_for_log(lambda rec: rec.get("message") == "call event given up" and call_id in str(rec),
                            "given-up log line", timeout=10)
        assert metric(strict, "switchboard_hook_events_given_up_total") >= given_up_before + 1
        tries = backend.events("strict", call_id, taken_only=False)
        assert 3 <= len(tries) <= 6 and all(r.status == 503 for r in tries), tries
    finally:
        with backend.lock:
            backend.events_down.discard("strict")


def test_the_event_queue_is_bounded_and_what_has_no_room_is_given_up(nodes, backend, connect):
    tight = nodes[2]  # hooks.events_max_queued 4
    with backend.lock:
        backend.events_down.add("tight")
    try:
        caller = connect(tight, unique_user("alice"))
        given_up_before = metric(tight, "switchboard_hook_events_given_up_total")
        for _ in range(4):  # 8 events (offline and failed each), 4 of them queued
            caller.send_signal(unique_user("gone"), "call-invite", callType="audio")
            assert caller.expect_notice("call-failed")["reason"] == "offline"
        tight.wait_for_log(lambda rec: rec.get("message") == "call event given up"
                           and "no room" in str(rec.get("reason")), "given up for want of room")
        wait_until(lambda: metric(tight, "switchboard_hook_events_given_up_total") >= given_up_before + 4, 2,
                   "4 events given up for want of room")
    finally:
        with backend.lock:
            backend.events_down.discard("tight")
