"""The pages a node serves (`server.demo`): `/`, `/demo`, their script and style, the client module.

The files are compiled into the binary (Sources/SwitchboardWeb, SwiftPM embedInCode): what is
served must be the repository's files byte for byte, with the right headers, and nothing at all
with `server.demo` off.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import jwt
import pytest

from switchboard_client import http_get, http_request

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "Sources" / "SwitchboardWeb" / "Files"
BINARY = Path(os.environ.get("SWITCHBOARD_BIN") or REPO / ".build" / "debug" / "switchboard")
SERVED = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/demo": ("demo.html", "text/html; charset=utf-8"),
    "/site.css": ("site.css", "text/css; charset=utf-8"),
    "/demo.js": ("demo.js", "text/javascript; charset=utf-8"),
    "/switchboard-client.js": ("switchboard-client.js", "text/javascript; charset=utf-8"),
}


def test_every_web_file_is_served():
    """Each file under Files/ has its route (a new file must be added to WebFiles.all and here)."""
    assert sorted(p.name for p in FILES.iterdir()) == sorted(name for name, _ in SERVED.values())


@pytest.mark.parametrize("path", sorted(SERVED))
def test_served_bytes_are_the_files(node, path):
    name, content_type = SERVED[path]
    resp = http_get(node.http_url, path)
    assert resp.status == 200, resp
    assert resp.body == (FILES / name).read_bytes(), f"{path} differs from {name}: rebuild the node"
    assert resp.headers["content-type"] == content_type
    assert resp.headers["cache-control"] == "no-cache"
    assert resp.headers["x-content-type-options"] == "nosniff"
    etag = resp.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 18, etag

    # Revalidation: the same bytes answer 304 with no body; another tag gets the file.
    again = http_request(node.http_url, "GET", path, headers={"If-None-Match": f'"nope", {etag}'})
    assert again.status == 304 and again.body == b"", again
    other = http_request(node.http_url, "GET", path, headers={"If-None-Match": '"0000000000000000"'})
    assert other.status == 200 and other.body == resp.body


def test_pages_have_a_content_security_policy(node):
    for path in ("/", "/demo"):
        headers = http_get(node.http_url, path).headers
        policy = dict(
            part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'"
        assert policy["script-src"] == "'self'", "no inline or third-party script"
        assert policy["connect-src"] == "'self'", "the page talks to its own node only"
        assert policy["frame-ancestors"] == "'none'"
        assert "camera=(self)" in headers["permissions-policy"]
        assert headers["referrer-policy"] == "no-referrer"
    # The demo page loads only what the node serves, and has no inline script (the CSP forbids it).
    demo = (FILES / "demo.html").read_text()
    assert '<script type="module" src="/demo.js"></script>' in demo and demo.count("<script") == 1


def test_demo_off_answers_404(node_factory):
    off = node_factory(SWITCHBOARD_SERVER_DEMO="false")
    for path in SERVED:
        assert http_get(off.http_url, path).status == 404, path
    assert http_get(off.http_url, "/healthz").status == 200


def test_run_script_prints_demo_links(tmp_path, node_factory):
    """scripts/run, making a development secret, prints a working demo link for alice and bob.

    Runs a copy of scripts/ whose `swift build` is a no-op and whose release binary is the one
    under test (the script execs `serve`; it is stopped once the links are out).
    """
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    (tmp_path / ".build" / "release").mkdir(parents=True)
    (tmp_path / ".build" / "release" / "switchboard").symlink_to(BINARY)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "swift").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "swift").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"
    proc = subprocess.Popen(
        [str(tmp_path / "scripts" / "run"), "--host", "127.0.0.1", "--port", "0",
         "--database", f"sqlite:{tmp_path / 'calls.sqlite'}"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        assert proc.stderr
        for line in proc.stderr:
            lines.append(line)
            if line.strip().startswith("bob:"):
                break
    finally:
        proc.terminate()
        proc.wait(10)
    text = "".join(lines)
    secret = re.search(r"export SWITCHBOARD_JWT_SECRET=(\w+)", text).group(1)
    links = dict(re.findall(r"^\s+(alice|bob):\s+(\S+)$", text, re.M))
    assert sorted(links) == ["alice", "bob"], text
    for user, peer in (("alice", "bob"), ("bob", "alice")):
        url = urllib.parse.urlsplit(links[user])
        assert (url.scheme, url.netloc, url.path) == ("http", "localhost:0", "/demo"), links[user]
        fragment = dict(urllib.parse.parse_qsl(url.fragment))
        assert fragment["peer"] == peer
        claims = jwt.decode(fragment["token"], secret, algorithms=["HS256"])  # signed with that secret
        assert claims["sub"] == user and claims["exp"] > 0

    # The links' tokens open a session on a node that runs with the printed secret.
    node = node_factory(SWITCHBOARD_JWT_SECRET=secret)
    token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(links["alice"]).fragment))["token"]
    assert http_get(node.http_url, "/api/presence/bob", token=token).status == 200
