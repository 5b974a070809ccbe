"""A real keep-alive HTTP server answering JSON, for tests (no Django): the directory,
JWKS endpoint or service a unit under test calls. It records every connection it
accepted and every path asked, so a test can count what the client opened.

    with JsonServer(lambda path: {"id": 7}) as server:
        ...  # call server.url; then server.connections, server.paths
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable


class JsonServer:
    def __init__(self, answer: Callable[[str], object]):
        self.answer = answer
        self.connections: list[int] = []
        self.paths: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as daphne answers

            def setup(self):
                super().setup()
                owner.connections.append(self.client_address[1])

            def do_GET(self):
                self._reply()

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._reply()

            def _reply(self):
                owner.paths.append(self.path)
                body = json.dumps(owner.answer(self.path)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> JsonServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
