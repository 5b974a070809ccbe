"""nginx's one worker holds the sockets the fleet promises: every proxied WebSocket costs
it two connections (the client's and the gateway's) and two descriptors, so
worker_connections and the worker's open-file limit bound how many users one gateway
node holds. At 16,384 connections and the shell's descriptor limit, a fleet held about
8,000 sockets through nginx (issue 21: the bench's 10,000 idle sockets did not fit)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from launcher import free_port, nginx_binary
from nginxconf import render

SOCKETS = 10_000  # what `make bench` holds idle through nginx

pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") or shutil.which("/usr/sbin/nginx")), reason="nginx not installed"
)


def test_the_worker_can_hold_ten_thousand_proxied_sockets(tmp_path):
    conf = tmp_path / "nginx.conf"
    text = render({"chat": ["127.0.0.1:9"]}, f"127.0.0.1:{free_port()}", tmp_path)
    conf.write_text(text)
    connections = int(re.search(r"worker_connections (\d+);", text).group(1))
    assert connections >= 2 * SOCKETS
    nginx = subprocess.Popen([nginx_binary(), "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
    try:
        deadline, workers = time.time() + 10, []
        while not workers and time.time() < deadline:
            time.sleep(0.1)
            children = Path(f"/proc/{nginx.pid}/task/{nginx.pid}/children")
            workers = children.read_text().split() if children.exists() else []
        assert workers, "nginx started no worker"
        limits = Path(f"/proc/{workers[0]}/limits").read_text()
        soft = int(re.search(r"Max open files\s+(\d+)", limits).group(1))
        assert soft >= 2 * SOCKETS, f"the worker may open {soft} files"
    finally:
        nginx.terminate()
        nginx.wait(10)
