"""Render the nginx config from the route table (routes.toml).

    python gateway/nginxconf.py --upstream ws-gateway=127.0.0.1:9001,127.0.0.1:9002 \
        --upstream chat=127.0.0.1:9003 --listen 127.0.0.1:8080 --prefix var/run

The launcher calls `render()` with the ports it chose. What every location does:
WebSocket upgrade headers and long timeouts on /ws/, staff-only prefixes checked by
ws-gateway (auth_request), a route's internal paths refused (404), and an access log
without query strings (a ?token= must never be written down).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from switchboard.config import default as setting_default  # noqa: E402
from switchboard.routes import MAX_BODY_BYTES, PROXY_IDLE_TIMEOUT_SECONDS, RouteTable, load  # noqa: E402

# The access log line of every proxy in front of Switchboard (this nginx, compose's
# nginx-proxy): the path without its query string, so a ?token= is never written down.
ACCESS_LOG_FORMAT = (
    '$remote_addr [$time_local] "$request_method $uri $server_protocol" $status $body_bytes_sent $request_time'
)
# nginx variables that hold the query string ($request is the whole request line).
_QUERY_VARIABLES = re.compile(r"\$\{?(request(?![_a-z])|request_uri|args|query_string|arg_\w+)")


def logs_query_string(log_format: str) -> bool:
    """Whether an nginx log_format would write a request's query string (and its token)."""
    return bool(_QUERY_VARIABLES.search(log_format))


COMMON_HEADERS = (
    "proxy_set_header Host $http_host;",
    # The client's address for the gateway's per-IP caps and login throttle; replaces
    # any X-Real-IP the client sent (ws_gateway/clientip.py believes it from us only).
    "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
)


# Idle kept connections per upstream and worker, and how long one stays idle.
UPSTREAM_KEEPALIVE = 32
UPSTREAM_KEEPALIVE_TIMEOUT = "30s"


# Every proxied WebSocket holds two of the worker's connections and two descriptors (the
# client's and the gateway's): 32,768 is 16,000 sockets, and the worker raises its own
# open-file limit to match (a login shell's 1,024 or 20,000 would cap it first).
WORKER_CONNECTIONS = 32768


# An upgraded connection holds two buffers of proxy_buffer_size for its life, one each way
# (nginx's default is a page, 4k each): what an idle socket costs nginx is mostly these.
# Frames larger than the buffer pass through it in pieces (one more read and write each).
WS_PROXY_BUFFER_SIZE = "1k"


def upstream_name(service: str) -> str:
    return "up_" + service.replace("-", "_")


def render(
    upstreams: dict[str, list[str]],
    listen: str,
    prefix: Path,
    table: RouteTable | None = None,
    worker_connections: int = WORKER_CONNECTIONS,
    backlog: int | None = None,
) -> str:
    """nginx's config. `backlog`: the listen backlog (LISTEN_BACKLOG's default unless given;
    nginx's own default, 511, drops a reconnect storm's connects: see fleet.daphne_command)."""
    table = table or load()
    backlog = backlog or int(setting_default("LISTEN_BACKLOG"))
    blocks = []
    for service in sorted(upstreams):
        servers = "".join(f"        server {addr} max_fails=0;\n" for addr in upstreams[service])
        # Kept connections to the service (HTTP/1.1, Connection "" on every REST location):
        # without them every REST call was a new TCP connection the service's Twisted
        # accepted and set up (issue 21: 37% of notification-http's CPU samples at 50
        # staff POSTs/s). nginx closes an idle one after keepalive_timeout, long before
        # daphne would (12 h), so a call never meets a connection daphne is closing.
        pool = f"        keepalive {UPSTREAM_KEEPALIVE};\n        keepalive_timeout {UPSTREAM_KEEPALIVE_TIMEOUT};\n"
        blocks.append(f"    upstream {upstream_name(service)} {{\n{servers}{pool}    }}\n")
    locations = []
    for route in table.http:
        if route.service not in upstreams:
            continue  # a service this deployment does not run
        target = f"http://{upstream_name(route.service)}"
        # proxy_set_header in a location replaces every inherited one: set them all here.
        lines = [f"proxy_pass {target};", *COMMON_HEADERS]
        if route.websocket:
            lines += [
                "proxy_set_header Upgrade $http_upgrade;",
                "proxy_set_header Connection $connection_upgrade;",
                f"proxy_read_timeout {PROXY_IDLE_TIMEOUT_SECONDS}s;",
                f"proxy_send_timeout {PROXY_IDLE_TIMEOUT_SECONDS}s;",
                "proxy_buffering off;",
                f"proxy_buffer_size {WS_PROXY_BUFFER_SIZE};",
            ]
        else:
            lines.append('proxy_set_header Connection "";')
        if route.staff_only:
            lines.insert(0, "auth_request /_switchboard/check-staff;")
        body = "".join(f"            {line}\n" for line in lines)
        # Internal paths (Flower's metrics and health check): for the fleet's own
        # processes on the server's port, refused here to everyone, staff too. A longer
        # prefix than the route's, so nginx picks it for every spelling it normalizes
        # to that path (%-escapes, //, /./).
        for path in route.internal:
            locations.append(f"        location {path} {{\n            return 404;\n        }}\n")
        locations.append(f"        location {route.prefix} {{\n{body}        }}\n")
    staff_check = ""
    if "ws-gateway" in upstreams:
        staff_check = (
            "        location = /_switchboard/check-staff {\n"
            "            internal;\n"
            f"            proxy_pass http://{upstream_name('ws-gateway')}/api/auth/check-staff/;\n"
            "            proxy_pass_request_body off;\n"
            "            proxy_set_header Host $http_host;\n"
            '            proxy_set_header Content-Length "";\n'
            '            proxy_set_header Connection "";\n'
            "        }\n"
        )
    return f"""# Generated by gateway/nginxconf.py from gateway/routes.toml. Do not edit.
worker_processes 1;
worker_rlimit_nofile {2 * worker_connections + 1024};
pid {prefix}/nginx.pid;
# The error log quotes the request line, query string included: keep it to what
# an operator must see, so a ?token= is never written down.
error_log {prefix}/nginx-error.log crit;
events {{ worker_connections {worker_connections}; }}
http {{
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    log_format switchboard '{ACCESS_LOG_FORMAT}';
    access_log {prefix}/nginx-access.log switchboard;
    client_body_temp_path {prefix}/nginx-body;
    proxy_temp_path {prefix}/nginx-proxy;
    fastcgi_temp_path {prefix}/nginx-fastcgi;
    uwsgi_temp_path {prefix}/nginx-uwsgi;
    scgi_temp_path {prefix}/nginx-scgi;
    client_max_body_size {MAX_BODY_BYTES};
    # Bodies stay in memory: never in client_body_temp_path, which a worker running as
    # another user than the launcher (nginx started as root) cannot write (a 500).
    client_body_buffer_size {MAX_BODY_BYTES};
    # A handshake that never completes holds a connection: drop it after 10 s (default 60).
    client_header_timeout 10s;
    proxy_http_version 1.1;
{"".join(blocks)}
    server {{
        listen {listen} backlog={backlog};
        # A body over client_max_body_size gets the APIs' JSON error shape, as the
        # OpenAPI documents say (413), not nginx's HTML page.
        error_page 413 @body_too_large;
        location @body_too_large {{
            default_type application/json;
            return 413 '{{"error": "body_too_large", "message": "the request body is over {MAX_BODY_BYTES} bytes"}}';
        }}
{staff_check}{"".join(locations)}    }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", action="append", default=[], help="service=host:port[,host:port]")
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("--prefix", default="var/run")
    parser.add_argument("--backlog", type=int, default=None, help="listen backlog (default: LISTEN_BACKLOG's)")
    args = parser.parse_args()
    upstreams = {}
    for item in args.upstream:
        name, _, addrs = item.partition("=")
        upstreams[name] = addrs.split(",")
    print(render(upstreams, args.listen, Path(args.prefix).resolve(), backlog=args.backlog))


if __name__ == "__main__":
    main()
