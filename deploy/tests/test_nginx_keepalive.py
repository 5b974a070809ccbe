"""nginx keeps its connections to the services open (gateway/nginxconf.py's upstream
keepalive): every REST call used to cost the service a new TCP connection, accepted and
set up by Twisted (issue 21: 37% of notification-http's samples at 50 staff POSTs/s),
and a notification costs two calls (the POST, and its user lookup at ws-gateway)."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from launcher import free_port, nginx_binary
from nginxconf import render

pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") or shutil.which("/usr/sbin/nginx")), reason="nginx not installed"
)


class _Service(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as daphne answers
    connections: list[int] = []

    def setup(self):
        super().setup()
        type(self).connections.append(self.client_address[1])

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def _answer(self):
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_rest_calls_through_nginx_reuse_the_services_connections(tmp_path):
    _Service.connections = []
    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render({"notification": [f"127.0.0.1:{service.server_address[1]}"]}, f"127.0.0.1:{port}", tmp_path))
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
                assert res.status == 200 and res.read() == b'{"ok": true}'
        assert len(_Service.connections) == 1, _Service.connections
    finally:
        nginx.terminate()
        nginx.wait(10)
        service.shutdown()
        service.server_close()
