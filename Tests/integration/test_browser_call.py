"""Two real Chromium browsers complete an audio call relayed through a real coturn (PROTOCOL.md §8).

Each browser (headless Debian chromium + chromium-driver, fake microphone) loads a small test page
served here on loopback (browser_call/call.html: a minimal client, ChatMessage protobuf by hand) and
configures its `RTCPeerConnection` with nothing but the `ice-servers` notice the node sent it, with
`iceTransportPolicy: "relay"`: the only way for media is coturn, with the node's REST credentials.
Both sides must reach connectionState "connected" on a relay candidate pair, and their
`call-connected` must set the record's `connected_time`. Single node, and across two nodes on one
Redis (one browser on each). One coturn and one browser pair serve the module.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from switchboard_client import make_token, unique_user, wait_until
from turn import Coturn, coturn_fixture

selenium = pytest.importorskip("selenium")  # Tests/integration/requirements.txt
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TURN_SECRET = "browser-call-turn-secret-0123456789"
CALL_TIMEOUT = 30.0
PAGE_DIR = Path(__file__).parent / "browser_call"

pytestmark = pytest.mark.timeout(180)


coturn = coturn_fixture(TURN_SECRET)


@pytest.fixture(scope="module")
def page_url():
    """The test page on a loopback HTTP server of its own (127.0.0.1 is a secure context)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(PAGE_DIR))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/call.html"
    server.shutdown()
    server.server_close()


class Browser:
    def __init__(self) -> None:
        assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), "need Debian's chromium and chromium-driver"
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            "--allow-loopback-in-peer-connection",  # coturn listens on 127.0.0.1
        ):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Chromium puts its singleton socket in a directory under TMPDIR and leaves it there: ours, removed at quit.
        self.tmp = tempfile.mkdtemp(prefix="switchboard-chromium-")
        service = Service(CHROMEDRIVER, env=dict(os.environ, TMPDIR=self.tmp))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_script_timeout(15)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def run(self, script: str, *args):
        """Awaits an async expression in the page (selenium's execute_async_script)."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve((async () => {{ {script} }})()).then(done, (e) => done({{error: String(e)}}));",
            *args,
        )

    def console(self) -> str:
        try:
            return "\n".join(entry["message"] for entry in self.driver.get_log("browser"))
        except Exception:  # noqa: BLE001 - diagnostics only
            return "(no console log)"

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browsers():
    pair = (Browser(), Browser())
    yield pair
    for browser in pair:
        browser.quit()


def turn_env(coturn: Coturn) -> dict[str, str]:
    return {
        "SWITCHBOARD_TURN_URLS": coturn.turn_url,
        "SWITCHBOARD_TURN_SECRET": TURN_SECRET,
        "SWITCHBOARD_TURN_TTL": "1h",
    }


def relay_call(browsers, page_url: str, coturn: Coturn, caller_node, callee_node) -> str:
    """Runs one call between the two browsers; answers its callId once both are connected on relay."""
    caller, callee = browsers
    users = (unique_user("browser-a"), unique_user("browser-b"))
    for browser, node, user, other in ((caller, caller_node, users[0], users[1]), (callee, callee_node, users[1], users[0])):
        browser.driver.get(page_url)
        result = browser.run("await sb.connect(arguments[0], arguments[1], arguments[2]);",
                             node.ws_url, make_token(user, secret=node.secret), other)
        assert result is None, result
        wait_until(lambda b=browser: b.js("return sb.iceServers"), 5, "the ice-servers notice")
        # The page uses exactly what the node gave: one TURN entry with REST credentials.
        servers = browser.js("return sb.iceServers.iceServers")
        assert [s["urls"] for s in servers] == [[node.overrides["SWITCHBOARD_TURN_URLS"]]]
        assert servers[0]["username"].endswith(":" + user)
    # Presence before the invite (the callee may be on the other node).
    wait_until(lambda: caller_node.presence_online(users[1]), 5, "the callee online")
    caller.js("sb.call()")

    def both_connected():
        states = [b.js("return sb.states") for b in browsers]
        for b in browsers:
            errors = b.js("return sb.errors")
            assert not errors, f"page errors: {errors}\n{b.console()}"
            assert "failed" not in b.js("return sb.states"), f"ICE failed: {b.js('return sb.log')}\n{b.console()}"
        return all("connected" in s for s in states)

    wait_until(both_connected, CALL_TIMEOUT, "both browsers connected")
    for browser in browsers:
        pair = browser.run("return await sb.selectedPair();")
        assert pair and pair["local"] == "relay" and pair["remote"] == "relay", pair
    # Audio flows over that pair.
    wait_until(lambda: all((b.run("return await sb.selectedPair();") or {}).get("bytesReceived", 0) > 0 for b in browsers),
               10, "media bytes over the relay")
    # coturn allocated for each browser with the credentials the node issued to that user.
    for user in users:
        assert re.search(rf"user <\d+:{re.escape(user)}>: incoming packet ALLOCATE processed, success", coturn.log_text()), user
    return caller.js("return sb.callId")


def hang_up(browsers) -> None:
    browsers[0].js("sb.hangup()")
    wait_until(lambda: "call-hangup" in browsers[1].js("return sb.log"), 5, "the hangup relayed")


def expect_connected_record(nodes, user: str, call_id: str) -> None:
    def record():
        for node in nodes:
            for r in node.api_calls(user):
                if r["call_id"] == call_id and r["status"] == 3:
                    return r
        return None

    found = wait_until(record, 10, "the hung-up record")
    assert found["connected_time"] is not None, found
    assert found["start_time"] <= found["connected_time"] <= found["end_time"], found


def test_relay_call_on_one_node(node_factory, coturn, page_url, browsers):
    node = node_factory(**turn_env(coturn))
    node.presence_online = lambda user: http_presence(node, user)
    call_id = relay_call(browsers, page_url, coturn, node, node)
    hang_up(browsers)
    expect_connected_record([node], browsers_user(browsers[0]), call_id)


def test_relay_call_across_two_nodes(cluster_factory, coturn, page_url, browsers):
    n1, n2 = cluster_factory(2, **turn_env(coturn))
    for node in (n1, n2):
        node.presence_online = lambda user, node=node: http_presence(node, user)
    call_id = relay_call(browsers, page_url, coturn, n1, n2)
    hang_up(browsers)
    expect_connected_record([n1, n2], browsers_user(browsers[0]), call_id)


def http_presence(node, user: str) -> bool:
    from switchboard_client import http_get

    response = http_get(node.http_url, f"/api/presence/{user}", token=make_token(unique_user("probe"), secret=node.secret))
    return response.status == 200 and response.json()["online"]


def browsers_user(browser) -> str:
    return browser.js("return sb.iceServers.iceServers[0].username").split(":", 1)[1]
