"""switchboard-client.js's reconnecting, under node with a stand-in WebSocket and timers.

The browser tests see one reconnect and one 4001; this checks the schedule itself: each delay
within [ceiling/2, ceiling] of a ceiling that doubles from minBackoff up to maxBackoff, back to the
start after a connection opens, and no reconnect at all after close code 4001.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "Sources" / "SwitchboardWeb" / "Files" / "switchboard-client.js"

# A WebSocket that never connects until told to, and a setTimeout that records delays and runs
# the callback at once (so a long schedule takes no time).
DRIVER = r"""
const delays = [];
const sockets = [];
globalThis.setTimeout = (fn, ms) => { if (ms !== undefined) delays.push(ms); queueMicrotask(fn); return 0; };
globalThis.clearTimeout = () => {};
globalThis.setInterval = () => 0;
globalThis.clearInterval = () => {};
globalThis.fetch = async () => ({ status: 200 });  // the token is fine: only the network fails
class FakeSocket {
  static OPEN = 1;
  constructor(url, protocols) { this.url = url; this.protocols = protocols; this.readyState = 0; sockets.push(this); }
  close() {}
}
globalThis.WebSocket = FakeSocket;
const { SwitchboardClient } = await import(%s);
const token = "x." + Buffer.from(JSON.stringify({ sub: "alice", exp: 4102444800 })).toString("base64url") + ".y";
const client = new SwitchboardClient({ token, url: "ws://127.0.0.1:1/ws", minBackoff: 500, maxBackoff: 30000 });
const statuses = [];
client.addEventListener("status", (e) => statuses.push(e.detail.status));
const settle = () => new Promise((r) => setImmediate(r));
const fail = async (code) => { sockets.at(-1).onclose({ code, reason: "" }); await settle(); };
client.connect();
for (let i = 0; i < 9; i++) await fail(1006);        // never opened: nine failures in a row
const failing = delays.splice(0);
sockets.at(-1).onopen();                            // then it opens, and later drops
await fail(1001);
const afterOpen = delays.splice(0);
const before = sockets.length;
sockets.at(-1).onopen();
await fail(4001);                                   // replaced: no new socket, ever
await settle();
process.stdout.write(JSON.stringify({
  failing, afterOpen, replacedSockets: sockets.length - before, status: client.status,
  protocols: sockets[0].protocols, last: statuses.slice(-2),
}));
"""


def test_backoff_doubles_to_its_cap_restarts_after_open_and_stops_on_4001():
    node = shutil.which("node")
    assert node, "node (Debian's nodejs) is needed: scripts/test installs it"
    out = subprocess.run([node, "--input-type=module", "-e", DRIVER % json.dumps(MODULE.as_uri())],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    ceilings = [min(30000, 500 * 2**i) for i in range(9)]  # 500, 1000, ... 30000, 30000
    assert len(result["failing"]) == 9, result
    for delay, ceiling in zip(result["failing"], ceilings):
        assert ceiling / 2 <= delay <= ceiling, (delay, ceiling, result["failing"])
    assert max(result["failing"]) <= 30000
    assert len(result["afterOpen"]) == 1 and 250 <= result["afterOpen"][0] <= 500, result["afterOpen"]
    assert result["replacedSockets"] == 0 and result["status"] == "replaced", result
    assert result["protocols"][0].startswith("bearer.x."), result["protocols"]
    assert result["last"] == ["open", "replaced"], result["last"]
