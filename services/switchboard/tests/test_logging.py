"""Logs: what a process prints when a library client makes requests, in text (make run)
and in JSON (LOG_FORMAT=json, compose and k8s). Each case is a real Django process of a
service with a real HTTP server and a real httpx client, as the dashboard's stats
publisher makes three requests every interval."""

import json
import os
import subprocess
import sys

from switchboard.config import ROOT

PROCESS = """
import http.server, logging, threading
import django, httpx
django.setup()

class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
for _ in range(3):
    httpx.get(f"http://127.0.0.1:{server.server_port}/api/auth/stats/")
logging.getLogger("dashboard.publisher").info("stats published to %d viewers", 2)
logging.getLogger("dashboard.publisher").warning("source %s unavailable", "reports")
"""


def run(**env):
    done = subprocess.run(
        [sys.executable, "-c", PROCESS],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "services"),
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "SERVICE_NAME": "dashboard-publisher-0",
            "LOG_LEVEL": "INFO",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_library_clients_log_no_line_per_request():
    lines = run()
    assert not [line for line in lines if "HTTP Request" in line or "httpx" in line], lines
    assert any("stats published to 2 viewers" in line for line in lines), lines


def test_text_is_the_default_and_names_level_and_logger():
    (info, warning) = run()
    assert " INFO dashboard.publisher stats published to 2 viewers" in info
    assert " WARNING dashboard.publisher source reports unavailable" in warning


def test_log_format_json_writes_one_object_a_line():
    records = [json.loads(line) for line in run(LOG_FORMAT="json")]
    assert [r["message"] for r in records] == ["stats published to 2 viewers", "source reports unavailable"]
    first = records[0]
    assert first["level"] == "INFO"
    assert first["logger"] == "dashboard.publisher"
    assert first["service"] == "dashboard-publisher-0"
    assert first["time"]
