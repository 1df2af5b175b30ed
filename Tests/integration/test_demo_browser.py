"""The demo page (/demo) in two real Chromium browsers: a video call from sign-in to hang-up.

Each browser is its own headless Chromium (selenium + Debian's chromium-driver) with fake camera
and microphone (`--use-fake-device-for-media-stream`: a test pattern and a beep). The test drives
the page a person uses (no test page): sign in through a `#token=` link, see the other user online,
call, answer, the call reaching "connected" with media flowing (inbound-rtp bytes growing on both
sides, read through the page's `demo.client` handle), hang up. A screenshot of each side at
"connected" goes to the test's artifact folder (ARTIFACTS, git-ignored; printed on failure).

The other tests drive the same page through what goes wrong and what a person does: offline, busy,
declined, no camera (a browser without fake devices), the keyboard alone at a phone's width, a
refused token, a session taken over elsewhere (4001), glare, a dropped socket that is resumed, and
one that stays away beyond calls.reconnect_grace.

Two topologies: one node; and the shipped nginx config in front of two nodes over Redis
(deploy/local-cluster), each browser on a different node. nginx's ip_hash picks the node from the
client address, and a browser cannot choose its source address: each browser reaches nginx
through a small TCP relay of its own (`SourceRelay`) that connects from 127.0.N.1, N chosen so
that the two land on different nodes (checked through presence).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from selenium import webdriver  # Tests/integration/requirements.txt
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from local_cluster import LocalCluster, cluster_fixture, source
from switchboard_client import make_token, unique_user, wait_until

ARTIFACTS = Path(os.environ.get("SWITCHBOARD_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DESKTOP = (1280, 860)
PHONE = (390, 844)
CALL_TIMEOUT = 30.0

pytestmark = pytest.mark.timeout(180)


# ---------------------------------------------------------------------------------------------
# Browsers


class Browser:
    """One headless Chromium showing the demo page, with fake media devices."""

    def __init__(self, name: str, size: tuple[int, int] = DESKTOP, phone: bool = False, devices: bool = True):
        assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
            f"need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): scripts/test installs them"
        )
        self.name = name
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",  # root in CI
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--window-size={size[0]},{size[1]}",
            "--use-fake-ui-for-media-stream",  # grants the camera and microphone prompt
            "--autoplay-policy=no-user-gesture-required",
        ) + (("--use-fake-device-for-media-stream",) if devices else ()):
            options.add_argument(flag)
        if phone:  # a desktop window is at least 500 px wide: emulate the phone's viewport instead
            options.add_experimental_option(
                "mobileEmulation", {"deviceMetrics": {"width": size[0], "height": size[1], "pixelRatio": 2}}
            )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Chromium puts its singleton socket in a directory under TMPDIR and leaves it there: ours, removed at quit.
        self.tmp = tempfile.mkdtemp(prefix="switchboard-chromium-")
        service = Service(CHROMEDRIVER, env=dict(os.environ, TMPDIR=self.tmp))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_script_timeout(15)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def el(self, element_id: str):
        return self.driver.find_element(By.ID, element_id)

    def attr(self, element_id: str, name: str) -> str | None:
        return self.el(element_id).get_attribute(name)

    def text(self, element_id: str) -> str:
        return self.el(element_id).text

    def wait_attr(self, element_id: str, name: str, value: str, timeout: float = CALL_TIMEOUT) -> None:
        seen: list[Any] = []

        def check() -> bool:
            seen[:] = [self.attr(element_id, name), self.text("connection"), self.text("call-state"), self.text("notice")]
            return seen[0] == value

        try:
            wait_until(check, timeout, f"{self.name}: #{element_id}[{name}] == {value!r}", interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen (value, connection, call state, notice): {seen}\n{self.console()}") from None

    def wait_visible(self, element_id: str, timeout: float = CALL_TIMEOUT) -> None:
        wait_until(lambda: self.el(element_id).is_displayed(), timeout, f"{self.name}: #{element_id} shown",
                   interval=0.1)

    def bytes_received(self) -> int:
        """inbound-rtp bytes of the page's current call (RTCPeerConnection.getStats)."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "demo.client.currentCall.stats().then(s => done(s.bytesReceived), e => done(-1));"
        )

    def inbound_kinds(self) -> list[str]:
        """The kinds of the call's inbound-rtp streams that have received bytes."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "demo.client.currentCall.pc.getStats().then(r => { const k = [];"
            " r.forEach(s => { if (s.type === 'inbound-rtp' && s.bytesReceived > 0) k.push(s.kind); });"
            " done(k.sort()); });"
        )

    def console(self) -> str:
        try:
            return "\n".join(f"[{e['level']}] {e['message']}" for e in self.driver.get_log("browser"))
        except Exception as exc:  # the log is a diagnostic only
            return f"(no console log: {exc})"

    def console_errors(self) -> list[str]:
        entries = self.driver.get_log("browser")
        return [e["message"] for e in entries if e["level"] == "SEVERE"]

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path)), f"no screenshot at {path}"

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def browsers() -> Iterator[Callable[..., Browser]]:
    opened: list[Browser] = []

    def _open(name: str, **kwargs: Any) -> Browser:
        browser = Browser(name, **kwargs)
        opened.append(browser)
        return browser

    yield _open
    for browser in opened:
        browser.quit()


def demo_link(base: str, token: str, peer: str | None = None) -> str:
    return f"{base}/demo#token={token}" + (f"&peer={peer}" if peer else "")


def video_call(caller: Browser, callee: Browser, callee_user: str, artifacts: Path) -> None:
    """Both pages signed in: caller calls callee (video), callee answers, media flows, caller hangs up."""
    for b in (caller, callee):
        b.wait_attr("connection", "data-status", "open", timeout=10)
    caller.wait_attr("presence", "data-online", "true", timeout=10)  # /api/presence, polled by the page
    assert caller.el("peer").get_attribute("value") == callee_user

    caller.el("call").click()
    callee.wait_visible("incoming")
    assert "video call" in callee.text("incoming-text"), callee.text("incoming-text")
    assert callee.driver.switch_to.active_element == callee.el("answer"), "the incoming call takes the focus"
    callee.el("answer").click()

    for b in (caller, callee):
        b.wait_attr("call-state", "data-state", "connected")

    # Media flows both ways: each side's inbound-rtp bytes grow, audio and video.
    first = {b.name: b.bytes_received() for b in (caller, callee)}
    wait_until(lambda: all(b.bytes_received() > first[b.name] + 20_000 for b in (caller, callee)), 15,
               f"inbound-rtp bytes growing on both sides (first: {first})", interval=0.25)
    for b in (caller, callee):
        assert b.inbound_kinds() == ["audio", "video"], f"{b.name} receives {b.inbound_kinds()}"
        assert b.el("remote-video").is_displayed()
        b.screenshot(artifacts / f"{b.name}-connected.png")

    caller.el("hangup").click()
    for b in (caller, callee):
        b.wait_attr("call-state", "data-state", "ended", timeout=10)
    assert "hung up" in callee.text("notice"), callee.text("notice")
    assert caller.el("notice").is_displayed() is False, caller.text("notice")
    for b in (caller, callee):
        # A CSP violation, or a script error, shows as a SEVERE console entry.
        assert b.console_errors() == [], f"{b.name} console errors: {b.console_errors()}"


def connected_call_record(records: list[dict[str, Any]], peer: str) -> dict[str, Any]:
    """The one call with `peer` in `/api/calls`: hung up (status 3) by the caller."""
    calls = [r for r in records if peer in (r["caller_id"], r["callee_id"])]
    assert len(calls) == 1, calls
    assert calls[0]["status"] == 3 and calls[0]["end_reason"] == "user-hangup", calls[0]
    return calls[0]


# ---------------------------------------------------------------------------------------------
# One node


def test_video_call_between_two_browsers_on_one_node(node, browsers, request):
    artifacts = ARTIFACTS / request.node.name
    alice_id, bob_id = unique_user("alice"), unique_user("bob")
    alice, bob = browsers("alice"), browsers("bob")
    bob.open(demo_link(node.http_url, make_token(bob_id, name="Bob", secret=node.secret)))
    alice.open(demo_link(node.http_url, make_token(alice_id, name="Alice", secret=node.secret), peer=bob_id))
    assert "#token" not in alice.driver.current_url, "the token is taken out of the address bar"

    video_call(alice, bob, bob_id, artifacts)

    record = wait_until(lambda: connected_call_record(node.api_calls(alice_id), bob_id), 5, "the call record")
    assert record["caller_id"] == alice_id and record["callee_id"] == bob_id and record["call_type"] == 2


def signed_in(browser: Browser, base: str, user: str, secret: str, peer: str | None = None) -> Browser:
    browser.open(demo_link(base, make_token(user, name=user.split("-")[0].title(), secret=secret), peer=peer))
    browser.wait_attr("connection", "data-status", "open", timeout=10)
    return browser


def frames_logged(browser: Browser) -> str:
    return browser.text("log")


def test_page_says_what_went_wrong(node, browsers, connect):
    """Offline, busy, declined and no camera, each said in words on the page."""
    alice_id, bob_id = unique_user("alice"), unique_user("bob")
    alice = signed_in(browsers("alice", devices=False), node.http_url, alice_id, node.secret, peer=bob_id)

    # bob is not online yet: the page says so before and after calling.
    alice.wait_attr("presence", "data-online", "false", timeout=10)
    alice.el("call").click()
    alice.wait_attr("call-state", "data-state", "ended", timeout=10)
    assert alice.text("notice") == f"{bob_id} is offline.", alice.text("notice")

    bob = signed_in(browsers("bob"), node.http_url, bob_id, node.secret)
    alice.wait_attr("presence", "data-online", "true", timeout=10)

    # bob is busy: a third user's invite rings at his page.
    carol = connect(node, unique_user("carol"))
    carol.send_signal(bob_id, "call-invite", callType="audio")
    carol.expect_notice("call-ringing")
    bob.wait_visible("incoming")
    alice.el("call").click()
    alice.wait_attr("call-state", "data-state", "ended", timeout=10)
    assert alice.text("notice") == f"{bob_id} is busy in another call.", alice.text("notice")
    bob.el("decline").click()
    assert carol.expect_signal("call-reject").json["reason"] == "declined"
    bob.wait_attr("call-state", "data-state", "ended", timeout=10)

    # bob declines alice; alice has no camera or microphone at all (no fake devices): she is told,
    # and her call still rings (she would receive bob's media).
    alice.el("call").click()
    bob.wait_visible("incoming")
    assert "No camera found." in alice.text("notice") and "will not hear or see you" in alice.text("notice"), (
        alice.text("notice"))
    bob.el("decline").click()
    alice.wait_attr("call-state", "data-state", "ended", timeout=10)
    assert alice.text("notice") == f"{bob_id} declined the call.", alice.text("notice")
    assert bob.text("notice") == "" and not bob.el("notice").is_displayed(), "declining is not news to bob"


def test_keyboard_only_on_a_phone_and_what_stops_reconnecting(node, browsers, connect, request):
    """Sign in, call, answer and hang up with the keyboard alone (bob's page at a phone's width);
    a refused token and a session taken over elsewhere stop the page, which says why."""
    artifacts = ARTIFACTS / request.node.name
    alice_id, bob_id = unique_user("alice"), unique_user("bob")
    bob = browsers("bob", size=PHONE, phone=True)
    bob.open(f"{node.http_url}/demo")
    keys = lambda b, *k: b.driver.switch_to.active_element.send_keys(*k)  # noqa: E731
    assert bob.driver.switch_to.active_element == bob.el("token"), "the token field has the focus"

    # A token signed with another secret: the upgrade is refused; the page asks the API why and stops.
    keys(bob, make_token(bob_id, secret="another-secret-of-at-least-32-bytes!!"), Keys.ENTER)
    bob.wait_attr("connection", "data-status", "unauthorized", timeout=10)
    assert "Signing in failed: the server rejected the token" in bob.text("notice"), bob.text("notice")
    bob.el("signout").send_keys(Keys.ENTER)
    assert bob.driver.switch_to.active_element == bob.el("token")
    keys(bob, make_token(bob_id, name="Bob", secret=node.secret), Keys.ENTER)
    bob.wait_attr("connection", "data-status", "open", timeout=10)

    alice = signed_in(browsers("alice"), node.http_url, alice_id, node.secret, peer=bob_id)
    alice.wait_attr("presence", "data-online", "true", timeout=10)
    assert alice.driver.switch_to.active_element == alice.el("call"), "with a peer given, Call has the focus"
    keys(alice, Keys.ENTER)
    bob.wait_visible("incoming")
    assert bob.driver.switch_to.active_element == bob.el("answer")
    keys(bob, Keys.ENTER)
    for b in (alice, bob):
        b.wait_attr("call-state", "data-state", "connected")
    bob.screenshot(artifacts / "bob-phone-connected.png")
    assert alice.driver.switch_to.active_element == alice.el("hangup"), "in a call, Hang up has the focus"
    keys(alice, Keys.ENTER)
    for b in (alice, bob):
        b.wait_attr("call-state", "data-state", "ended", timeout=10)

    # alice signs in elsewhere (a Python client): her page gets 4001, says so, and stays off.
    elsewhere = connect(node, alice_id)
    alice.wait_attr("connection", "data-status", "replaced", timeout=10)
    assert "signed in somewhere else" in alice.text("notice"), alice.text("notice")
    elsewhere.expect_no_message(within=2.0)  # the page reconnecting would replace this session


def test_call_without_devices_receives_the_other_side(node, browsers, request):
    """A caller without camera and microphone still gets a connected call and bob's media."""
    alice_id, bob_id = unique_user("alice"), unique_user("bob")
    bob = signed_in(browsers("bob"), node.http_url, bob_id, node.secret)
    alice = signed_in(browsers("alice", devices=False), node.http_url, alice_id, node.secret, peer=bob_id)
    alice.el("call").click()
    bob.wait_visible("incoming")
    bob.el("answer").click()
    for b in (alice, bob):
        b.wait_attr("call-state", "data-state", "connected")
    wait_until(lambda: alice.bytes_received() > 20_000, 15, "alice receiving bob's media", interval=0.25)
    assert alice.inbound_kinds() == ["audio", "video"]
    assert bob.inbound_kinds() == [], "alice sends nothing: she has no devices"
    alice.el("hangup").click()
    bob.wait_attr("call-state", "data-state", "ended", timeout=10)


def test_call_survives_a_dropped_socket_and_both_calling_at_once_makes_one_call(node, browsers, request):
    """Glare: alice and bob press Call at the same moment and end up in one call. Resume: alice's
    WebSocket drops mid-call (her relay cuts it; the media is peer to peer and keeps flowing); her
    page reconnects, the server resumes the call, and hanging up still reaches bob."""
    alice_id, bob_id = unique_user("alice"), unique_user("bob")
    relay = SourceRelay(("127.0.0.1", node.port), "127.0.0.1")
    try:
        alice = signed_in(browsers("alice"), relay.url, alice_id, node.secret, peer=bob_id)
        bob = signed_in(browsers("bob"), node.http_url, bob_id, node.secret, peer=alice_id)
        for b in (alice, bob):
            b.wait_attr("presence", "data-online", "true", timeout=10)
        # Both press Call together (the clicks run in threads, released at once).
        start = threading.Barrier(2)
        threads = [threading.Thread(target=lambda b=b: (start.wait(), b.driver.execute_script(
            "document.getElementById('call').click()"))) for b in (alice, bob)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        for b in (alice, bob):
            b.wait_attr("call-state", "data-state", "connected")
        call_ids = {b.driver.execute_script("return demo.client.currentCall.id") for b in (alice, bob)}
        assert len(call_ids) == 1, f"two calls: {call_ids}"
        records = node.api_calls(alice_id)
        assert [r["call_id"] for r in records] == list(call_ids), records

        relay.drop_connections()
        alice.wait_attr("connection", "data-status", "reconnecting", timeout=10)
        alice.wait_attr("connection", "data-status", "open", timeout=15)
        wait_until(lambda: "call-resumed" in frames_logged(alice), 10, "alice's page to get call-resumed")
        wait_until(lambda: "peer-reconnected" in frames_logged(bob), 10, "bob's page to get peer-reconnected")
        assert alice.attr("call-state", "data-state") == "connected"
        before = bob.bytes_received()
        wait_until(lambda: bob.bytes_received() > before + 20_000, 10, "media still flowing", interval=0.25)

        alice.el("hangup").click()
        bob.wait_attr("call-state", "data-state", "ended", timeout=10)
        assert "hung up" in bob.text("notice"), bob.text("notice")
    finally:
        relay.close()


def test_away_beyond_the_grace_ends_the_call_on_both_pages(node_factory, browsers):
    """alice's network is gone longer than calls.reconnect_grace: bob's page says her connection was
    lost; when alice's page is back, the server has no call to resume and her page ends it too."""
    node = node_factory(SWITCHBOARD_CALLS_RECONNECT_GRACE="1s")
    alice_id, bob_id = unique_user("alice"), unique_user("bob")
    relay = SourceRelay(("127.0.0.1", node.port), "127.0.0.1")
    try:
        bob = signed_in(browsers("bob"), node.http_url, bob_id, node.secret)
        alice = signed_in(browsers("alice"), relay.url, alice_id, node.secret, peer=bob_id)
        alice.wait_attr("presence", "data-online", "true", timeout=10)
        alice.el("call").click()
        bob.wait_visible("incoming")
        bob.el("answer").click()
        for b in (alice, bob):
            b.wait_attr("call-state", "data-state", "connected")

        relay.refusing = True
        relay.drop_connections()
        bob.wait_attr("call-state", "data-state", "ended", timeout=10)
        assert bob.text("notice") == "Alice's connection was lost.", bob.text("notice")  # her display name
        relay.refusing = False
        alice.wait_attr("call-state", "data-state", "ended", timeout=20)
        assert alice.attr("connection", "data-status") == "open"
        assert alice.text("notice") == "The connection to the server was lost, and the call with it.", (
            alice.text("notice"))
        assert "call-resumed" not in frames_logged(alice)
    finally:
        relay.close()


# ---------------------------------------------------------------------------------------------
# nginx in front of two nodes over Redis


class SourceRelay:
    """A TCP relay on 127.0.0.1 that connects to `target` from the source address `src`."""

    def __init__(self, target: tuple[str, int], src: str):
        self.target = target
        self.src = src
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closed = False
        self.refusing = False  # while True, connections are closed as soon as they are accepted
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5, source_address=(self.src, 0))
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def drop_connections(self) -> None:
        """Cuts every relayed connection (new ones are still relayed): a network blip."""
        sockets, self.sockets = self.sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.drop_connections()


cluster = cluster_fixture(2, env={"SWITCHBOARD_REDIS_HEARTBEAT_INTERVAL": "500ms"})


def groups_on_two_nodes(cluster: LocalCluster) -> tuple[int, int]:
    """Two source groups (127.0.N.1) that nginx's ip_hash sends to different nodes."""
    placed: dict[str, int] = {}
    for group in range(1, 17):
        client = cluster.connect(unique_user(f"probe{group}"), src=source(group))
        node = cluster.wait_presence(client.user, lambda n: n is not None, "online")
        client.close()
        placed.setdefault(node, group)
        if len(placed) == 2:
            return tuple(placed.values())  # type: ignore[return-value]
    raise AssertionError(f"ip_hash sent groups 1-16 to one node: {placed}")


@pytest.mark.cluster
def test_video_call_between_two_browsers_through_nginx_on_two_nodes(cluster, browsers, request):
    artifacts = ARTIFACTS / request.node.name
    nginx = cluster.url.removeprefix("http://").rstrip("/").split(":")
    group_a, group_b = groups_on_two_nodes(cluster)
    relays = [SourceRelay((nginx[0], int(nginx[1])), source(g)) for g in (group_a, group_b)]
    try:
        alice_id, bob_id = unique_user("alice"), unique_user("bob")
        alice, bob = browsers("alice"), browsers("bob", size=PHONE, phone=True)
        bob.open(demo_link(relays[1].url, make_token(bob_id, name="Bob", secret=cluster.secret)))
        alice.open(demo_link(relays[0].url, make_token(alice_id, name="Alice", secret=cluster.secret), peer=bob_id))
        for b in (alice, bob):
            b.wait_attr("connection", "data-status", "open", timeout=10)
        alice_node = cluster.wait_presence(alice_id, lambda n: n is not None, "alice online")
        bob_node = cluster.wait_presence(bob_id, lambda n: n is not None, "bob online")
        assert alice_node != bob_node, f"both browsers on {alice_node}"

        video_call(alice, bob, bob_id, artifacts)
    finally:
        for relay in relays:
            relay.close()
