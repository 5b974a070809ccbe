"""compose's public proxy (nginx-proxy) is tuned as `make run`'s nginx is (issue 21):
it listens with LISTEN_BACKLOG, not nginx's default 511; its container's
net.core.somaxconn does not cap that; and it keeps its connections to the services
open (upstream keepalive) instead of opening one per request.

nginx-proxy (1.6, compose.yaml's image) writes its `listen` lines itself, with no
socket options and no setting for them. nginx takes a listening socket's options from
whichever one `listen` of that address:port gives them, in any server block; so
compose.yaml mounts a file into its conf.d (included in the http block next to the
config docker-gen writes) whose inert server gives the backlog. The test here runs that
file in a real nginx next to a server listening as nginx-proxy's template writes it
(`listen 80 default_server;` for DEFAULT_HOST) and reads the socket's backlog from the
kernel. Upstream keepalive is nginx-proxy's own container label
(com.github.nginx-proxy.nginx-proxy.keepalive), on every routed container.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import composegen
import pytest
import yaml
from fleet import PROCESSES

from nginxconf import UPSTREAM_KEEPALIVE
from switchboard.config import default as setting_default

ROOT = Path(__file__).resolve().parents[2]
BACKLOG = int(setting_default("LISTEN_BACKLOG"))
KEEPALIVE_LABEL = "com.github.nginx-proxy.nginx-proxy.keepalive"


def services() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def conf_d_mount() -> Path:
    """The repository file compose.yaml mounts into nginx-proxy's /etc/nginx/conf.d/."""
    for volume in services()["proxy"]["volumes"]:
        source, target, *_ = volume.split(":")
        if target.startswith("/etc/nginx/conf.d/") and target.endswith(".conf"):
            return ROOT / source
    raise AssertionError("nothing of ours in nginx-proxy's conf.d: it listens with nginx's default backlog (511)")


def nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def listen_backlog(port: int) -> int | None:
    """The backlog of the socket listening on 127.0.0.1:port (ss: Send-Q of a listener)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].endswith(f":{port}"):
            return int(fields[2])
    return None


def test_the_proxy_listen_file_is_generated_and_mounted_read_only():
    path = conf_d_mount()
    assert path.read_text() == composegen.proxy_listen(), "stale: run `make compose-yaml`"
    assert any(
        v.endswith(":ro") and v.startswith(f"./{path.relative_to(ROOT)}:") for v in services()["proxy"]["volumes"]
    )
    # After docker-gen's default.conf in conf.d's order: nginx-proxy's own servers come
    # first, so an unknown Host still meets its fallback server, not ours.
    target = next(
        v.split(":")[1] for v in services()["proxy"]["volumes"] if v.startswith(f"./{path.relative_to(ROOT)}:")
    )
    assert Path(target).name > "default.conf", target


def test_the_proxy_listen_file_gives_nginx_proxy_port_the_fleet_backlog():
    text = conf_d_mount().read_text()
    # nginx-proxy listens on HTTP_PORT (80) inside its container; compose publishes it.
    assert re.search(rf"^\s*listen 80 backlog={BACKLOG};$", text, flags=re.M), text
    assert [port.rsplit(":", 1)[1] for port in services()["proxy"]["ports"]] == ["80"]


@pytest.mark.skipif(nginx() is None, reason="nginx not installed (make deps)")
@pytest.mark.skipif(
    int(Path("/proc/sys/net/core/somaxconn").read_text()) < BACKLOG,
    reason="net.core.somaxconn caps every backlog below LISTEN_BACKLOG on this machine",
)
def test_nginx_listens_with_the_backlog_next_to_a_server_as_nginx_proxy_writes_it(tmp_path):
    """The mounted file in a real nginx, next to the server nginx-proxy writes for
    DEFAULT_HOST (its listen line has no options): the kernel's listening socket has
    LISTEN_BACKLOG, and requests are still answered by nginx-proxy's server."""
    from launcher import free_port

    port = free_port()
    ours = conf_d_mount().read_text().replace("listen 80 ", f"listen 127.0.0.1:{port} ")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d/default.conf").write_text(
        "server {\n"
        "    server_name localhost;\n"
        f"    listen 127.0.0.1:{port} default_server;\n"
        "    location / { return 200 'nginx-proxy'; }\n"
        "}\n"
    )
    (tmp_path / "conf.d/listen.conf").write_text(ours)
    (tmp_path / "nginx.conf").write_text(
        "pid nginx.pid;\nerror_log stderr;\nevents {}\n"
        "http {\n    access_log off;\n"
        "    client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp;"
        " uwsgi_temp_path tmp; scgi_temp_path tmp;\n"
        f"    include {tmp_path}/conf.d/*.conf;\n}}\n"
    )
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen([nginx(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 10
        while (backlog := listen_backlog(port)) is None:
            assert proc.poll() is None, "nginx refused the config"
            assert time.monotonic() < deadline, "nginx does not listen"
            time.sleep(0.1)
        assert backlog == BACKLOG
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as res:
            assert res.read() == b"nginx-proxy"
    finally:
        proc.terminate()
        proc.wait(10)


def listens_with_backlog(p) -> bool:
    return any("backlog=" in part for part in p.command())


def test_the_proxy_and_every_daphne_container_allow_the_backlog():
    """The kernel caps a listen backlog at net.core.somaxconn of the container's network
    namespace (4096 on Linux 5.4 and later, 128 before): set, it is no lower anywhere."""
    listeners = ["proxy", *(p.name for p in PROCESSES if listens_with_backlog(p))]
    assert "ws-gateway" in listeners
    for name in listeners:
        sysctls = services()[name].get("sysctls") or {}
        assert int(sysctls.get("net.core.somaxconn", 0)) >= BACKLOG, name


def routed() -> dict[str, dict]:
    """The compose services nginx-proxy routes to (they carry its variables)."""
    return {
        name: s
        for name, s in services().items()
        if {"VIRTUAL_HOST", "VIRTUAL_HOST_MULTIPORTS"} & set(s.get("environment") or {})
    }


def test_nginx_proxy_keeps_its_connections_to_every_routed_service():
    """nginx-proxy's keepalive label: its template writes `keepalive N` in the container's
    upstream and sends `Connection: ""` (or "upgrade" for a WebSocket upgrade) instead of
    nginx's default `Connection: close`, which made every request a new connection."""
    assert {"ws-gateway", "chat-http", "notification-http", "dashboard-http"} <= set(routed())
    for name, s in routed().items():
        labels = s.get("labels") or {}
        assert str(labels.get(KEEPALIVE_LABEL)) == str(UPSTREAM_KEEPALIVE), name
