"""ICE servers and TURN credentials (PROTOCOL.md §8) against a real coturn.

One coturn, one echo peer and one node (TURN and STUN configured) for the module; the expiry test
starts a node of its own with a one-second `turn.ttl`.
"""

from __future__ import annotations

import time

import pytest

from switchboard_client import http_get, make_token, unique_user, wait_until
from turn import EchoPeer, coturn_fixture, rest_credential, uclient

TURN_SECRET = "coturn-static-auth-secret-for-tests"
TTL_SECONDS = 600


coturn = coturn_fixture(TURN_SECRET)


@pytest.fixture(scope="module")
def peer():
    echo = EchoPeer()
    yield echo
    echo.stop()


@pytest.fixture(scope="module")
def turn_node(coturn, tmp_path_factory):
    from conftest import NodeFactory

    factory = NodeFactory(tmp_path_factory, "node-ice")
    yield factory(
        SWITCHBOARD_ICE_STUN_URLS=coturn.stun_url,
        SWITCHBOARD_TURN_URLS=f"{coturn.turn_url},turn:127.0.0.1:{coturn.port}?transport=tcp",
        SWITCHBOARD_TURN_SECRET=TURN_SECRET,
        SWITCHBOARD_TURN_TTL=f"{TTL_SECONDS}s",
    )
    factory.stop_all()


def turn_entry(notice: dict) -> dict:
    [entry] = [e for e in notice["iceServers"] if any(u.startswith("turn:") for u in e["urls"])]
    return entry


def test_first_frame_is_ice_servers_with_rest_credentials(turn_node, coturn, connect):
    before = int(time.time())
    client = connect(turn_node, sync=False)
    after = int(time.time())
    notice = client.ice_servers  # the Client asserts it was the first frame
    assert notice["type"] == "ice-servers"
    assert notice["ttl"] == TTL_SECONDS
    assert notice["iceServers"][0] == {"urls": [coturn.stun_url]}
    entry = turn_entry(notice)
    assert entry["urls"] == [coturn.turn_url, f"turn:127.0.0.1:{coturn.port}?transport=tcp"]
    expiry, user = entry["username"].split(":", 1)
    assert user == client.user
    assert before + TTL_SECONDS <= int(expiry) <= after + TTL_SECONDS
    assert entry["credential"] == rest_credential(TURN_SECRET, entry["username"])
    assert len(notice["iceServers"]) == 2


def test_raw_first_frame_is_the_notice(turn_node):
    """On the wire, before any frame of the client's: a binary ChatMessage notice from the server."""
    from switchboard_client import RawWebSocket

    user = unique_user("raw")
    raw = RawWebSocket(turn_node.http_url, make_token(user))
    try:
        assert raw.ice_servers["type"] == "ice-servers"  # RawWebSocket read it as the first frame
        assert turn_entry(raw.ice_servers)["username"].endswith(":" + user)
    finally:
        raw.close()


def test_http_endpoint_answers_the_same_object_fresh(turn_node, connect):
    user = unique_user("refresh")
    notice = connect(turn_node, user=user).ice_servers
    assert http_get(turn_node.http_url, "/api/ice-servers").status == 401
    assert http_get(turn_node.http_url, "/api/ice-servers", token="not-a-jwt").status == 401
    issued = int(turn_entry(notice)["username"].split(":")[0]) - TTL_SECONDS
    wait_until(lambda: int(time.time()) > issued, timeout=3, what="the next second")  # so that fresh differs
    response = http_get(turn_node.http_url, "/api/ice-servers", token=make_token(user))
    assert response.status == 200
    fresh = response.json()
    assert fresh.keys() == notice.keys() and fresh["type"] == "ice-servers" and fresh["ttl"] == TTL_SECONDS
    assert fresh["iceServers"][0] == notice["iceServers"][0]
    entry = turn_entry(fresh)
    assert entry["urls"] == turn_entry(notice)["urls"]
    assert int(entry["username"].split(":")[0]) > int(turn_entry(notice)["username"].split(":")[0])
    assert entry["username"].endswith(":" + user)
    assert entry["credential"] == rest_credential(TURN_SECRET, entry["username"])


def test_coturn_accepts_issued_and_refuses_tampered_credentials(turn_node, coturn, peer, connect):
    alice = connect(turn_node, user=unique_user("alice"))
    entry = turn_entry(alice.ice_servers)
    ok, output = uclient(coturn, peer, entry["username"], entry["credential"])
    assert ok, f"coturn refused the issued credentials:\n{output[-1500:]}\n{coturn.tail()}"

    expiry, user = entry["username"].split(":", 1)
    tampered = {
        "password": (entry["username"], rest_credential(TURN_SECRET + "x", entry["username"])),
        "user": (f"{expiry}:{user}x", entry["credential"]),  # another user's name with alice's password
        "expiry": (f"{int(expiry) + 3600}:{user}", entry["credential"]),  # a later expiry, same password
    }
    for what, (username, credential) in tampered.items():
        ok, output = uclient(coturn, peer, username, credential)
        assert not ok, f"coturn accepted a tampered {what}"
        assert "Cannot complete Allocation" in output, f"tampered {what}: {output[-800:]}"


def test_coturn_refuses_expired_credentials(node_factory, coturn, peer, connect):
    node = node_factory(
        SWITCHBOARD_TURN_URLS=coturn.turn_url, SWITCHBOARD_TURN_SECRET=TURN_SECRET, SWITCHBOARD_TURN_TTL="1s"
    )
    notice = connect(node, sync=False).ice_servers
    assert notice["ttl"] == 1
    entry = turn_entry(notice)
    expiry = int(entry["username"].split(":")[0])
    wait_until(lambda: time.time() > expiry + 1, timeout=5, what="the credentials' expiry")
    ok, output = uclient(coturn, peer, entry["username"], entry["credential"])
    assert not ok, "coturn accepted expired credentials"
    assert "Cannot complete Allocation" in output, output[-800:]


def test_without_turn_the_notice_lists_stun_only_or_nothing(node_factory, connect):
    bare = node_factory()
    notice = connect(bare, sync=False).ice_servers
    assert notice["iceServers"] == [] and notice["type"] == "ice-servers"
    stun = node_factory(SWITCHBOARD_ICE_STUN_URLS="stun:stun1.example.com:3478, stun:stun2.example.com:3478")
    notice = connect(stun, sync=False).ice_servers
    assert notice["iceServers"] == [{"urls": ["stun:stun1.example.com:3478", "stun:stun2.example.com:3478"]}]
