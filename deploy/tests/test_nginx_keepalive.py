"""nginx keeps its connections to the services open (gateway/nginxconf.py's upstream
keepalive): every REST call used to cost the service a new TCP connection, accepted and
set up by Twisted (issue 21: 37% of notification-http's samples at 50 staff POSTs/s),
and a notification costs two calls (the POST, and its user lookup at ws-gateway)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request

import pytest

from launcher import free_port, nginx_binary
from nginxconf import render
from switchboard.jsonserver import JsonServer

pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") or shutil.which("/usr/sbin/nginx")), reason="nginx not installed"
)


def test_rest_calls_through_nginx_reuse_the_services_connections(tmp_path):
    with JsonServer(lambda path: {"ok": True}) as service:
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(render({"notification": [f"127.0.0.1:{service.port}"]}, f"127.0.0.1:{port}", tmp_path))
        nginx = subprocess.Popen([nginx_binary(), "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
        try:
            deadline = time.time() + 10
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/notifications/", timeout=2).read()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.1)
            for _ in range(10):
                # Each call on a connection of its own from the client, as separate callers.
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/notifications/", data=b"{}", method="POST")
                with urllib.request.urlopen(req, timeout=5) as res:
                    assert res.status == 200 and json.loads(res.read()) == {"ok": True}
            assert len(service.connections) == 1, service.connections
        finally:
            nginx.terminate()
            nginx.wait(10)
