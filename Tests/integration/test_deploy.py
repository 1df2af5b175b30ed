"""Deployment files: docker-compose.yml, deploy/Dockerfile's runtime libraries, the nginx
configuration and its Docker entry point, deploy/healthcheck, and deploy/local-cluster itself.

The local cluster here runs its nodes WITHOUT Redis (`up --no-redis`: independent nodes behind
nginx): what is checked is nginx and the script, which need no cluster mode. Cluster behaviour
behind nginx is test_nginx.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from local_cluster import BINARY, REPO, LocalCluster, cluster_fixture, source
from switchboard_client import (
    SECRET,
    Client,
    connect_expecting_status,
    http_get,
    make_token,
    unique_user,
    wait_until,
)

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"

standalone = cluster_fixture(2, redis=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} not installed (scripts/lib/install.sh SWITCHBOARD_TEST_APT_PACKAGES has it)"
    return path


# ---------------------------------------------------------------------------------------------
# docker-compose.yml


def compose_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with exactly `env` as the interpolation variables (no .env file)."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SWITCHBOARD_", "POSTGRES_", "COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [_need("docker-compose"), "--env-file", str(empty_env_file), "-f", str(COMPOSE), "config"],
        env={**clean, **env}, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )


def test_compose_file_validates(tmp_path):
    proc = compose_config(tmp_path, SWITCHBOARD_JWT_SECRET="compose-test-secret-0123456789abcdef", POSTGRES_PASSWORD="pw123",
                          SWITCHBOARD_TURN_SECRET="compose-turn-secret-0123456789")
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    config = yaml.safe_load(proc.stdout)
    services = config["services"]
    assert set(services) == {"redis", "postgres", "switchboard", "nginx", "coturn", "prometheus"}

    sb = services["switchboard"]
    # Scalable with --scale: no fixed host port, no container name.
    assert "ports" not in sb and "container_name" not in sb, sb
    assert sb["build"]["dockerfile"] == "deploy/Dockerfile"
    env = sb["environment"]
    assert env["SWITCHBOARD_JWT_SECRET"] == "compose-test-secret-0123456789abcdef"
    assert env["SWITCHBOARD_REDIS_URL"] == "redis://redis:6379/0"
    assert env["SWITCHBOARD_DATABASE_URL"] == "postgres://switchboard:pw123@postgres:5432/switchboard"
    assert "SWITCHBOARD_SERVER_NODE_ID" not in env, "node ids must differ per replica: leave the default"
    # nginx reaches the nodes from the compose network: its X-Forwarded-For must be believed.
    assert env["SWITCHBOARD_SERVER_TRUSTED_PROXIES"] == "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    assert sb["depends_on"]["redis"]["condition"] == "service_healthy"
    assert sb["depends_on"]["postgres"]["condition"] == "service_healthy"

    # nginx is the single entry point for signaling; coturn relays media (clients reach it directly);
    # Prometheus is published on the host's loopback only.
    assert sorted(s for s, v in services.items() if v.get("ports")) == ["coturn", "nginx", "prometheus"]
    assert all(str(p).startswith("127.0.0.1:") for p in services["prometheus"]["ports"])  # compose v1 writes "ip:host:container"
    assert services["nginx"]["ports"][0]["target"] == 80
    assert any("/opt/switchboard-nginx" in v for v in map(str, services["nginx"]["volumes"]))
    assert services["nginx"]["entrypoint"] == ["/opt/switchboard-nginx/docker-entrypoint"]

    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    assert any("postgres-data" in str(v) for v in services["postgres"]["volumes"])
    assert "postgres-data" in config["volumes"]

    # coturn checks the credentials the nodes sign with the same secret (PROTOCOL.md §8).
    assert "--use-auth-secret" in services["coturn"]["command"]
    assert "--static-auth-secret=compose-turn-secret-0123456789" in services["coturn"]["command"]
    assert env["SWITCHBOARD_TURN_SECRET"] == "compose-turn-secret-0123456789"
    assert env["SWITCHBOARD_TURN_URLS"].startswith("turn:")
    # Prometheus finds every replica through Docker's DNS, on the nodes' metrics port.
    assert env["SWITCHBOARD_METRICS_PORT"] == "9100"
    prometheus_config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = prometheus_config["scrape_configs"]
    assert job["dns_sd_configs"] == [{"names": ["switchboard"], "type": "A", "port": 9100, "refresh_interval": "15s"}]
    assert any("deploy/prometheus/prometheus.yml" in str(v) for v in services["prometheus"]["volumes"])
    promtool = subprocess.run([_need("promtool"), "check", "config", str(REPO / "deploy" / "prometheus" / "prometheus.yml")],
                              capture_output=True, text=True, timeout=30)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr


@pytest.mark.parametrize("missing", ["SWITCHBOARD_JWT_SECRET", "POSTGRES_PASSWORD", "SWITCHBOARD_TURN_SECRET"])
def test_compose_requires_the_secrets(tmp_path, missing):
    env = {"SWITCHBOARD_JWT_SECRET": "compose-test-secret-0123456789abcdef", "POSTGRES_PASSWORD": "p",
           "SWITCHBOARD_TURN_SECRET": "compose-turn-secret-0123456789"}
    del env[missing]
    proc = compose_config(tmp_path, **env)
    assert proc.returncode != 0, f"docker-compose config accepted a file without {missing}"
    assert missing in proc.stderr, proc.stderr


def test_compose_file_as_written_keeps_switchboard_scalable():
    raw = yaml.safe_load(COMPOSE.read_text())
    sb = raw["services"]["switchboard"]
    assert "ports" not in sb and "container_name" not in sb
    assert "${SWITCHBOARD_JWT_SECRET:?" in sb["environment"]["SWITCHBOARD_JWT_SECRET"]


# ---------------------------------------------------------------------------------------------
# deploy/Dockerfile and deploy/check-image-libs


def check_image_libs(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "deploy" / "check-image-libs"), "--binary", str(BINARY), "--dockerfile", str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )


def _ldd() -> str:
    return subprocess.run(["ldd", str(BINARY)], capture_output=True, text=True, timeout=30, check=True).stdout


def test_dockerfile_runtime_stage_covers_the_binarys_libraries():
    assert BINARY.exists(), f"no binary at {BINARY}"
    proc = check_image_libs(DOCKERFILE)
    assert proc.returncode == 0, f"check-image-libs:\n{proc.stdout}\n{proc.stderr}"
    if "libhiredis" in _ldd():  # a build whose node uses RedisWire (cluster mode)
        assert re.search(r"libhiredis\.so\S*\s+libhiredis0\.14\s+ok: installed by the runtime stage",
                         proc.stdout), proc.stdout


def test_check_image_libs_notices_what_the_image_would_lack(tmp_path):
    text = DOCKERFILE.read_text()
    linked = _ldd()
    cases = []
    if "libhiredis" in linked:
        assert " libhiredis0.14" in text
        cases.append((text.replace(" libhiredis0.14", ""), "MISSING: add libhiredis0.14"))
    if "libswiftCore.so" in linked:  # a debug build: the Swift runtime is linked dynamically
        assert " --static-swift-stdlib" in text
        cases.append((text.replace(" --static-swift-stdlib", ""), "MISSING: build with --static-swift-stdlib"))
    assert cases, f"nothing in {BINARY} to take away from the image:\n{linked}"
    for broken_text, complaint in cases:
        broken = tmp_path / "Dockerfile"
        broken.write_text(broken_text)
        proc = check_image_libs(broken)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert complaint in proc.stdout, proc.stdout


def test_dockerfile_shape():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    assert [alias for _, alias in froms] == ["build", "runtime"], froms
    assert "swift build -c release --static-swift-stdlib" in text
    assert re.search(r"^USER\s+switchboard", text, re.M), "the node must not run as root"
    assert re.search(r"^HEALTHCHECK\b", text, re.M) and re.search(r"^EXPOSE\s+8080", text, re.M)
    assert re.search(r"^VOLUME\s", text, re.M)
    assert "SWITCHBOARD_JWT_SECRET=" not in text, "no secret baked into the image"
    for line in (REPO / ".dockerignore").read_text().splitlines():
        assert line.strip() not in {"Sources", "Package.swift", "deploy"}, f".dockerignore drops {line}"


# ---------------------------------------------------------------------------------------------
# nginx configuration


def render(out: Path, *servers: str, listen: str = "127.0.0.1:8080") -> None:
    args = [str(REPO / "nginx" / "render"), "--out", str(out), "--listen", listen]
    for s in servers:
        args += ["--server", s]
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)


def test_rendered_nginx_configuration_is_valid(tmp_path):
    out = tmp_path / "nginx"
    render(out, "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003")
    proc = subprocess.run(
        [_need("nginx"), "-t", "-p", str(out), "-e", str(out / "error.log"), "-c", str(out / "nginx.conf")],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    site = (out / "switchboard.conf").read_text()
    assert "@@" not in site and "@@" not in (out / "nginx.conf").read_text()
    upstream = re.search(r"upstream switchboard_nodes \{(.*?)\n\}", site, re.S).group(1)
    directives = [line.split()[0].rstrip(";") for line in upstream.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert directives[0] == "ip_hash" and directives.count("server") == 3
    assert directives.index("keepalive") > directives.index("ip_hash"), "keepalive must follow ip_hash"

    ws = re.search(r"location = /ws \{(.*?)\n    \}", site, re.S).group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $switchboard_connection_upgrade;" in ws
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in ws
    # /metrics is not for the internet.
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", site), "nginx must not proxy /metrics"
    # nginx drops an idle upstream connection before the node's server.request_timeout (10s) does.
    keepalive_timeout = int(re.search(r"keepalive_timeout (\d+)s;", upstream).group(1))
    assert keepalive_timeout < 10, f"upstream keepalive_timeout {keepalive_timeout}s >= the nodes' request_timeout"
    ping_interval = 30
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        seconds = int(re.search(rf"{name} (\d+)s;", ws).group(1))
        assert seconds >= 2 * ping_interval, f"{name} {seconds}s drops idle sockets the node still pings"


def test_site_only_rendering_for_a_system_nginx():
    proc = subprocess.run(
        [str(REPO / "nginx" / "render"), "--site-only", "--listen", "80", "--server", "10.1.2.3:8080"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert "server 10.1.2.3:8080 max_fails=1 fail_timeout=5s;" in proc.stdout
    assert "listen 80;" in proc.stdout and "pid " not in proc.stdout


# ---------------------------------------------------------------------------------------------
# deploy/local-cluster (standalone nodes behind nginx) and what nginx does for the nodes


def test_local_cluster_status_and_env(standalone: LocalCluster):
    status = standalone.status()
    assert status["running"] and status["ok"] and status["mode"] == "standalone"
    assert status["redis"] is None and status["postgres"] is None
    assert [n["id"] for n in status["nodes"]] == ["node-1", "node-2"]
    for n in status["nodes"]:
        assert n["alive"] and n["healthz"] == 200 and n["readyz"] == 200 and n["pid"] > 0
    assert status["url"] == f"http://127.0.0.1:{status['nginx']['port']}"

    env = standalone.run("env").stdout
    assert f"SB_CLUSTER_URL={status['url']}" in env
    assert f"SB_CLUSTER_NODE_2_PORT={status['nodes'][1]['port']}" in env

    human = standalone.run("status").stdout
    assert "node-1" in human and status["url"] in human

    again = standalone.run("up", "2", "--no-redis", check=False)
    assert again.returncode != 0 and "already running" in again.stderr


def test_http_routes_through_nginx(standalone: LocalCluster):
    url = standalone.url
    assert http_get(url, "/healthz").status == 200
    assert http_get(url, "/readyz").status == 200
    assert http_get(url, "/metrics").status == 404, "nginx must not expose /metrics"
    node_url = f"http://127.0.0.1:{standalone.state['nodes'][0]['port']}"
    metrics = http_get(node_url, "/metrics")  # scraped on the node itself
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert http_get(url, "/api/presence/someone").status == 401
    resp = http_get(url, "/api/calls", token=make_token(unique_user(), secret=SECRET))
    assert resp.status == 200 and resp.json() == {"calls": []}
    assert "server" not in resp.headers or "nginx/" not in resp.headers["server"]  # server_tokens off


def test_websocket_upgrade_through_nginx(standalone: LocalCluster):
    assert connect_expecting_status(standalone.ws_url, None) == 401
    assert connect_expecting_status(standalone.ws_url, "not-a-jwt") == 401
    for via in ("query", "header", "protocol"):
        user = unique_user("via")
        client = Client(standalone.ws_url, make_token(user, secret=SECRET), via, user=user)
        try:
            client.heartbeat()
            if via == "protocol":
                assert client.subprotocol and client.subprotocol.startswith("bearer.")
        finally:
            client.close()


def test_ip_hash_spreads_source_networks_and_keeps_them(standalone: LocalCluster):
    placed = {}
    for group in range(1, 9):
        client = standalone.connect(unique_user(f"g{group}"), src=source(group))
        placed[group] = standalone.wait_presence(client.user, lambda n: n is not None, "online")
    assert set(placed.values()) == {"node-1", "node-2"}, f"ip_hash did not use both nodes: {placed}"
    # Reconnecting (a new user from the same /24) lands on the same node.
    for group in (1, 2, 3):
        client = standalone.connect(unique_user(f"back{group}"), src=f"127.0.{group}.42")
        assert standalone.wait_presence(client.user, lambda n: n is not None, "online") == placed[group]


def test_nginx_passes_the_client_ip_to_the_call_event_log(standalone: LocalCluster):
    group = 5
    alice = standalone.connect(unique_user("alice"), src=source(group), name="Alice")
    bob = standalone.connect(unique_user("bob"), src=f"127.0.{group}.2", name="Bob")  # same node
    # A client-supplied X-Forwarded-For must not become the logged ip.
    carol = standalone.connect(unique_user("carol"), src=f"127.0.{group}.3",
                               extra_headers={"X-Forwarded-For": "203.0.113.9"})
    alice.send_signal(bob.user, "call-invite", callType="audio")
    call_id = bob.expect_signal("call-invite").json["callId"]
    alice.expect_notice("call-ringing")
    carol.send_signal(alice.user, "call-invite", callType="audio")
    carol.expect_notice("call-failed")  # alice is busy

    def log_line(event: str, caller: str) -> dict | None:
        import json

        for path in standalone.run_dir.glob("node-*/stdout.log"):
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{") and caller in line:
                    rec = json.loads(line)
                    if rec.get("event") == event and rec.get("caller") == caller:
                        return rec
        return None

    invite = wait_until(lambda: log_line("webrtc_call_invite", alice.user), 5, "invite log line")
    assert invite["call_id"] == call_id
    assert invite["metadata"]["ip"] == source(group)
    failed = wait_until(lambda: log_line("webrtc_call_failed", carol.user), 5, "failed log line")
    assert failed["metadata"]["ip"] == f"127.0.{group}.3", failed
    access = (standalone.run_dir / "nginx" / "access.log").read_text()
    assert "token=" not in access, "the access log must not contain tokens"


def test_healthcheck_script(standalone: LocalCluster):
    port = standalone.state["nodes"][0]["port"]
    script = str(REPO / "deploy" / "healthcheck")
    assert subprocess.run([script, str(port)], timeout=10).returncode == 0
    assert subprocess.run([script, str(_free_port())], timeout=10, stderr=subprocess.DEVNULL).returncode == 1
    assert subprocess.run([script, str(port), "/nope"], timeout=10).returncode == 1


def test_docker_nginx_entrypoint_follows_the_replicas(standalone: LocalCluster, tmp_path):
    """nginx/docker-entrypoint outside Docker, with a stand-in `getent` playing Docker's DNS: it
    renders one server per resolved replica, and re-renders and reloads when the set changes."""
    node_port = standalone.state["nodes"][1]["port"]
    listen = _free_port()
    conf_dir = tmp_path / "nginx-entrypoint"
    replicas = tmp_path / "replicas"
    replicas.write_text("127.0.0.1\n")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "getent").write_text(
        "#!/bin/sh\n"
        "# getent ahostsv4 NAME, as Docker's DNS answers for a scaled service: one line per replica\n"
        f'[ "$1" = ahostsv4 ] && [ "$2" = switchboard ] || exit 2\n'
        f'while read -r ip; do echo "$ip      STREAM $2"; echo "$ip      DGRAM"; done < "{replicas}"\n'
    )
    (shim / "getent").chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "PATH": f"{shim}:{os.environ['PATH']}",
        "SWITCHBOARD_UPSTREAM_HOST": "switchboard",
        "SWITCHBOARD_UPSTREAM_PORT": str(node_port),
        "SWITCHBOARD_NGINX_LISTEN": f"127.0.0.1:{listen}",
        "SWITCHBOARD_NGINX_CONF_DIR": str(conf_dir),
        "SWITCHBOARD_RESOLVE_INTERVAL": "0.2",
        "SWITCHBOARD_WORKER_CONNECTIONS": "256",
    }
    log = tmp_path / "entrypoint.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(REPO / "nginx" / "docker-entrypoint")], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def serving() -> bool:
            assert proc.poll() is None, f"entrypoint exited with {proc.returncode}: {log.read_text()}"
            try:
                return http_get(f"http://127.0.0.1:{listen}", "/healthz", timeout=1).status == 200
            except OSError:
                return False

        wait_until(serving, 15, "nginx from docker-entrypoint to proxy /healthz")
        site = conf_dir / "switchboard.conf"
        # Each replica twice: in the HTTP upstream and in the WebSocket one.
        assert re.findall(r"^\s*server (\S+) ", site.read_text(), re.M) == [f"127.0.0.1:{node_port}"] * 2
        user = unique_user("dock")
        client = Client(f"ws://127.0.0.1:{listen}/ws", make_token(user, secret=SECRET), user=user)
        client.heartbeat()

        # Scale out: a second replica appears (nothing listens there: nginx skips it when it fails).
        replicas.write_text("127.0.0.1\n127.0.0.2\n")
        wait_until(lambda: "reloading" in log.read_text(), 10, "the entrypoint to reload nginx")
        assert re.findall(r"^\s*server (\S+) ", site.read_text(), re.M) == [
            f"127.0.0.1:{node_port}", f"127.0.0.2:{node_port}"] * 2
        client.heartbeat()  # an open WebSocket survives the reload
        client.close()
        wait_until(serving, 10, "nginx to serve after the reload")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"docker-entrypoint did not stop on SIGTERM: {log.read_text()}")
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), f"exit {code}: {log.read_text()}"
    pid_file = conf_dir / "nginx.pid"
    assert not pid_file.exists() or not Path(f"/proc/{pid_file.read_text().strip()}").exists()
