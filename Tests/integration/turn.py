"""A real coturn for the tests of PROTOCOL.md §8 (ICE servers and TURN credentials).

- `Coturn(workdir, secret)`: Debian's `turnserver` on 127.0.0.1 (a free port, a relay port range of its
  own), `--use-auth-secret --static-auth-secret=<secret>`: the REST scheme Switchboard issues
  credentials for. No daemon, no syslog: it logs to a file in `workdir`. `start()` returns once it
  answers a STUN binding request; `stop()` ends it. `turn_url` / `stun_url` are what a node is given.
- `uclient(coturn, username, credential)`: one `turnutils_uclient` allocation through it, relaying one
  message to a `turnutils_peer` echo on loopback; answers (ok, output).
- `rest_credential(secret, username)`: base64(HMAC-SHA1(secret, username)), computed independently of
  the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

TURNSERVER = shutil.which("turnserver")
UCLIENT = shutil.which("turnutils_uclient")
PEER = shutil.which("turnutils_peer")
READY_TIMEOUT = 10.0


def rest_credential(secret: str, username: str) -> str:
    """coturn's REST API password for `username`."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_udp_and_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        port = _free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free for both UDP and TCP")


def stun_binding_answered(port: int, timeout: float = 0.3) -> bool:
    """Whether a STUN Binding request (RFC 5389) to 127.0.0.1:`port` over UDP is answered."""
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(request, ("127.0.0.1", port))
        try:
            answer, _ = s.recvfrom(2048)
        except (socket.timeout, ConnectionRefusedError):
            return False
    return len(answer) >= 20 and answer[8:20] == request[8:20]


class Coturn:
    def __init__(self, workdir: Path, secret: str):
        assert TURNSERVER, "coturn is not installed (apt-get install coturn)"
        self.workdir = workdir
        self.secret = secret
        self.realm = "switchboard.test"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "turnserver.log"

    @property
    def turn_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def stun_url(self) -> str:
        return f"stun:127.0.0.1:{self.port}"

    def start(self) -> "Coturn":
        self.port = _free_udp_and_tcp_port()
        relay_base = random.randrange(20000, 30000, 200)  # below Linux's ephemeral range: free-port picks stay clear
        cmd = [
            TURNSERVER, "-n",  # -n: no configuration file
            "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={self.port}",
            f"--min-port={relay_base}", f"--max-port={relay_base + 199}",
            "--use-auth-secret", f"--static-auth-secret={self.secret}", f"--realm={self.realm}",
            "--no-cli", "--no-tls", "--no-dtls",
            "--allow-loopback-peers",  # every peer here (browsers, the echo peer) is on loopback
            f"--log-file={self.log_path}", "--simple-log", "--no-stdout-log", "--verbose",  # logs each request
            f"--userdb={self.workdir / 'turndb'}",  # its (unused) user database stays in the test's folder
            f"--pidfile={self.workdir / 'turnserver.pid'}",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        while not stun_binding_answered(self.port):
            assert self.proc.poll() is None, f"turnserver exited with {self.proc.returncode}\n{self.tail()}"
            assert time.monotonic() < deadline, f"turnserver did not answer STUN within {READY_TIMEOUT}s\n{self.tail()}"
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no turnserver log)"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def coturn_fixture(secret: str):
    """A module-scoped pytest fixture: one coturn with `secret` as its static auth secret, stopped after."""

    @pytest.fixture(scope="module")
    def coturn(tmp_path_factory):
        server = Coturn(tmp_path_factory.mktemp("coturn"), secret).start()
        yield server
        server.stop()

    return coturn


class EchoPeer:
    """`turnutils_peer`: a UDP echo on loopback that uclient relays its messages to."""

    def __init__(self) -> None:
        assert PEER, "turnutils_peer is not installed (apt-get install coturn)"
        self.port = _free_port(socket.SOCK_DGRAM)
        self.proc = subprocess.Popen(
            [PEER, "-L", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def uclient(coturn: Coturn, peer: EchoPeer, username: str, credential: str) -> tuple[bool, str]:
    """One TURN allocation with these credentials, relaying one message to `peer` and back.

    ok: uclient exited 0 and reported the message received back; output: what it printed.
    """
    assert UCLIENT, "turnutils_uclient is not installed (apt-get install coturn)"
    done = subprocess.run(
        [UCLIENT, "-c", "-n", "1", "-u", username, "-w", credential, "-p", str(coturn.port),
         "-e", "127.0.0.1", "-r", str(peer.port), "127.0.0.1"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    return done.returncode == 0 and "tot_recv_msgs=1" in output, output
