"""compose.yaml, made from deploy/fleet.py and gateway/routes.toml.

    python deploy/composegen.py compose      # print compose.yaml (make compose-yaml writes it)
    python deploy/composegen.py scale        # --scale flags for the local run (--scale-test: make scale-test's)
    python deploy/composegen.py nginx-conf   # the stand-in gateway's nginx config
    python deploy/composegen.py databases    # one database name per service
    python deploy/composegen.py dotenv       # .env.example with random secrets (make .env)
    python deploy/composegen.py proxy-vhost  # nginx-proxy's vhost.d/default: internal paths refused
    python deploy/composegen.py proxy-listen # nginx-proxy's conf.d file: its port's listen backlog

Why generated: a process or route added to the fleet reaches compose.yaml and the
gateway by one `make compose-yaml`, and tests/compose fail while compose.yaml is stale.
One compose service per fleet.Process, named as it is, with its command, probes,
replicas and environment from there; this file adds only what is compose's own.
Each routed service gets VIRTUAL_HOST/VIRTUAL_PATH/VIRTUAL_PORT for nginx-proxy; a
service owning several prefixes gets VIRTUAL_HOST_MULTIPORTS instead (nginx-proxy >= 1.6).
A process that trusts the proxy (fleet.Process.proxy_only: Flower) gets networks of its
own: one with the proxy and Prometheus, one with Redis, so no app container reaches it.
nginx-proxy is tuned as make run's nginx (gateway/nginxconf.py): LISTEN_BACKLOG on its
port (proxy_listen), net.core.somaxconn no lower in any listening container, and kept
connections to every routed container (its keepalive label).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))

from fleet import (  # noqa: E402
    DEPLOYMENT_SETTINGS,
    HTTP_PORT,
    INBOX_SHARD_OWNERSHIP,
    METRICS_PORT,
    PROCESSES,
    ROOT,
    SERVICES,
    Process,
    Scaling,
    Service,
    alert_webhook_url,
    internal_hosts,
    serving,
)

from nginxconf import ACCESS_LOG_FORMAT, UPSTREAM_KEEPALIVE  # noqa: E402
from nginxconf import render as render_nginx  # noqa: E402
from switchboard.config import default as setting_default  # noqa: E402
from switchboard.routes import PROXY_IDLE_TIMEOUT_SECONDS  # noqa: E402
from switchboard.routes import load as load_routes  # noqa: E402

# Replicas of ws-gateway in the local run: `--scale ws-gateway=3` as docs/operations.md shows,
# so the smoke suite proves sockets spread over all of them and messages cross.
WS_GATEWAY_REPLICAS = 3


def self_guarded() -> dict[str, str]:
    """routes.toml service -> the setting with the credentials its server checks itself
    (Flower: FLOWER_BASIC_AUTH), from the fleet."""
    return {p.serves: p.auth_setting for p in PROCESSES if p.auth_setting}


# Each deployment-wide setting (fleet.DEPLOYMENT_SETTINGS) as compose gives it.
COMPOSE_VALUES = {
    "SWITCHBOARD_SECRET_KEY": "${SWITCHBOARD_SECRET_KEY:?set SWITCHBOARD_SECRET_KEY in .env}",
    "SWITCHBOARD_JWT_KEYS": "${SWITCHBOARD_JWT_KEYS:?set SWITCHBOARD_JWT_KEYS in .env}",
    # Shop tokens: off unless .env sets a key source (a JWKS URL; a file needs a mount of yours).
    "SHOP_JWT_KEYS": "${SHOP_JWT_KEYS:-}",
    "SHOP_JWKS": "${SHOP_JWKS:-}",
    "SHOP_JWT_AUDIENCE": "${SHOP_JWT_AUDIENCE:-}",
    "SHOP_JWT_ISSUER": "${SHOP_JWT_ISSUER:-}",
    "REDIS_URL": "redis://redis:6379/0",
    "DATABASE_URL": "postgres://switchboard:${{POSTGRES_PASSWORD}}@postgres:5432/{db}",
    # The public name(s) only; the compose network's own names are INTERNAL_HOSTS.
    "ALLOWED_HOSTS": "${ALLOWED_HOSTS:-localhost,127.0.0.1}",
    "INTERNAL_HOSTS": ",".join(["proxy", *internal_hosts()]),
    "ALLOWED_ORIGINS": "${ALLOWED_ORIGINS:-http://localhost:8080,http://127.0.0.1:8080}",
    # Plain http on localhost by default: a Secure cookie would never come back.
    "SECURE_COOKIES": "${SECURE_COOKIES:-0}",
    # nginx-proxy routes every path by the route table (its VIRTUAL_PATHs).
    "SERVICE_URLS": "http://proxy",
    "INBOX_SHARDS": "${INBOX_SHARDS:-4}",
    "LOG_LEVEL": "${LOG_LEVEL:-INFO}",
    "LOG_FORMAT": "${LOG_FORMAT:-json}",
    # nginx-proxy's address on the compose network.
    "TRUSTED_PROXIES": "${TRUSTED_PROXIES:-172.16.0.0/12,192.168.0.0/16,10.0.0.0/8}",
    # The service's volume (app_service): every container of the service reads it.
    "SWITCHBOARD_DATA_DIR": "/data",
}


def fenced() -> list[Process]:
    """The processes only the proxy and Prometheus may connect to (fleet: proxy_only)."""
    return [p for p in PROCESSES if p.proxy_only]


def front_network(p: Process) -> str:
    """Its network with the proxy and Prometheus."""
    return f"{p.name}-front"


def redis_network(p: Process) -> str:
    """Its network with Redis (Celery's broker, for Flower), and nothing else."""
    return f"{p.name}-redis"


def networks_of(service: str) -> list[str]:
    """The networks a compose service joins, where that is not just the default one."""
    front = [front_network(p) for p in fenced()]
    if service in ("proxy", "prometheus"):
        return ["default", *front]
    if service == "redis":
        return ["default", *(redis_network(p) for p in fenced())]
    for p in fenced():
        if service == p.name:
            return [front_network(p), redis_network(p)]
    return []


def networks_lines(service: str) -> list[str]:
    names = networks_of(service)
    return ["    networks:", *(f"      - {n}" for n in names)] if names else []


def proxy_vhost() -> str:
    """nginx-proxy includes /etc/nginx/vhost.d/default in every server block it writes:
    the route table's internal paths answer 404 there, before its VIRTUAL_PATH
    locations (the longest prefix wins), as gateway/nginxconf.py does for make run."""
    lines = [
        "# Generated by deploy/composegen.py from gateway/routes.toml (make compose-yaml). Do not edit.",
        "# Mounted as nginx-proxy's /etc/nginx/vhost.d/default (compose.yaml): paths that only",
        "# the fleet's own processes reach on the server's port (Prometheus, the probes).",
    ]
    for route in load_routes().http:
        for path in route.internal:
            lines.append(f"location {path} {{\n    return 404;\n}}")
    return "\n".join(lines) + "\n"


# Where nginx-proxy listens inside its container (its HTTP_PORT); compose publishes it.
PROXY_PORT = 80
# nginx-proxy's label for kept upstream connections (its template, 1.6 and later).
KEEPALIVE_LABEL = "com.github.nginx-proxy.nginx-proxy.keepalive"


def listen_backlog() -> int:
    return int(setting_default("LISTEN_BACKLOG"))


def proxy_listen() -> str:
    """nginx-proxy's template writes its `listen` lines with no socket options, and has
    no setting for them, so its port would keep nginx's default backlog (511), which a
    reconnect storm overflows. nginx takes a socket's options from whichever `listen` of
    that address:port gives them, in any server block: this file, mounted into its
    conf.d (included in the http block, after docker-gen's default.conf), gives
    LISTEN_BACKLOG in a server that never matches a Host, as gateway/nginxconf.py does."""
    return (
        "\n".join(
            [
                "# Generated by deploy/composegen.py from LISTEN_BACKLOG (make compose-yaml). Do not edit.",
                "# Mounted as nginx-proxy's /etc/nginx/conf.d/zz-switchboard-listen.conf (compose.yaml):",
                "# the listen backlog of its port. nginx-proxy's own servers listen there too, with no",
                "# options; nginx takes a socket's options from the one listen that gives them.",
                "server {",
                "    server_name switchboard-listen-options.invalid;",
                f"    listen {PROXY_PORT} backlog={listen_backlog()};",
                "    return 444;",
                "}",
            ]
        )
        + "\n"
    )


def somaxconn_lines() -> list[str]:
    """The kernel caps a listen backlog at the network namespace's net.core.somaxconn
    (4096 from Linux 5.4, 128 before): a container listening with LISTEN_BACKLOG sets it."""
    return ["    sysctls:", f"      net.core.somaxconn: {listen_backlog()}"]


def keepalive_lines() -> list[str]:
    """nginx-proxy keeps this many idle connections to the container's upstream (and sends
    `Connection: ""`, or "upgrade" on a WebSocket upgrade, not "close"): without it every
    request through it was a new connection the service accepted (issue 21)."""
    return ["    labels:", f"      {KEEPALIVE_LABEL}: '{UPSTREAM_KEEPALIVE}'"]


def virtual_paths(service: str) -> list[str]:
    """The prefixes nginx-proxy needs for `service` (a routes.toml service): its
    route-table prefixes, less those already covered by a shorter prefix of its own
    (ws-gateway's "/" covers /ws/ etc.), unless another service owns one in between.
    nginx-proxy cannot make the gateway's staff check (auth_request), so a staff-only
    prefix is routed only when its server asks for credentials itself (self_guarded:
    Flower's basic auth, required by compose.yaml); other staff-only prefixes stay off."""
    routes = load_routes().http
    owner = {r.prefix: r.service for r in routes}
    guarded = self_guarded()
    mine = sorted(r.prefix for r in routes if r.service == service and (not r.staff_only or service in guarded))
    keep = []
    for p in mine:
        covering = [q for q in owner if q != p and p.startswith(q)]
        nearest = max(covering, key=len) if covering else None
        if nearest is None or owner[nearest] != service:
            keep.append(p)
    return keep


def routing_env(route_service: str, port: int) -> list[str]:
    """nginx-proxy's variables for the routes of `route_service`, served on `port`."""
    paths = virtual_paths(route_service)
    if not paths:
        return []
    if len(paths) == 1:
        return [
            "      VIRTUAL_HOST: ${SWITCHBOARD_HOST:-localhost}",
            f"      VIRTUAL_PATH: {paths[0]}",
            f"      VIRTUAL_PORT: '{port}'",
        ]
    lines = ["      VIRTUAL_HOST_MULTIPORTS: |-", "        ${SWITCHBOARD_HOST:-localhost}:"]
    for p in paths:
        lines += [f'          "{p}":', f"            port: {port}"]
    return lines


def healthcheck(url: str) -> list[str]:
    probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=3)"
    return [
        "    healthcheck:",
        f'      test: ["CMD", "python", "-c", "{probe}"]',
        "      interval: 5s",
        "      timeout: 5s",
        "      retries: 12",
        "      start_period: 20s",
    ]


def quoted(value: str) -> str:
    return f"'{value}'" if value.isdigit() else value


def app_service(
    name: str, svc: Service, command: list[str], depends: list[str], env: dict[str, str], extra: list[str]
) -> list[str]:
    lines = [
        f"  {name}:",
        "    <<: *app",
        "    environment:",
        "      <<: *app-env",
        f"      DATABASE_URL: {COMPOSE_VALUES['DATABASE_URL'].format(db=svc.db_name)}",
        *[f"      {k}: {quoted(v)}" for k, v in env.items()],
        # Optional: unset, the feature the secret guards is off (fleet.Service.secrets).
        *[f"      {name}: ${{{name}:-}}" for name, _key in svc.secrets],
        *extra,
        # No volume: every service's data is in its PostgreSQL database (report files
        # too, report_worker.models.ReportFile), so no container reads another's disk.
        "    command: " + json.dumps(command),
        "    depends_on:",
    ]
    for dep in depends:
        cond = "service_completed_successfully" if dep.endswith("-migrate") else "service_healthy"
        lines += [f"      {dep}:", f"        condition: {cond}"]
    return lines


def probe_url(p: Process) -> str:
    """compose's healthcheck is the readiness probe: the proxy starts once every HTTP
    face can take requests."""
    port = {"http": HTTP_PORT, "metrics": METRICS_PORT}[p.readiness.port]
    return f"http://127.0.0.1:{port}{p.readiness.path}"


def compose() -> str:
    names = ",".join(s.db_name for s in SERVICES)
    shared = [d for d in DEPLOYMENT_SETTINGS if not d.per_service]
    out = [
        "# Generated by deploy/composegen.py from deploy/fleet.py and gateway/routes.toml:",
        "# edit those, then `make compose-yaml`. Do not edit by hand.",
        "#",
        "#   cp .env.example .env   # set the secrets",
        "#   docker compose up -d   # http://localhost:8080 (GATEWAY_PORT)",
        "#",
        "# nginx-proxy routes by VIRTUAL_HOST + VIRTUAL_PATH; replicas of one service share",
        "# one upstream, so `docker compose up --scale ws-gateway=3` works.",
        "# (No top-level `name:`: compose v1 rejects it; COMPOSE_PROJECT_NAME in .env names the project.)",
        "",
        "x-app-env: &app-env",
        *[f"  {d.name}: {COMPOSE_VALUES[d.name]}" for d in shared],
        "",
        "x-app: &app",
        "  image: ${SWITCHBOARD_IMAGE:-switchboard:latest}",
        "  restart: unless-stopped",
        "  # ws-gateway drains on SIGTERM (1001 to every socket, at most 5 s: drain.py): above it.",
        "  stop_grace_period: 10s",
        "",
        "services:",
        "  proxy:",
        "    image: ${PROXY_IMAGE:-nginxproxy/nginx-proxy:1.6}",
        "    restart: unless-stopped",
        "    ports:",
        '      - "${GATEWAY_BIND:-127.0.0.1}:${GATEWAY_PORT:-8080}:80"',
        "    environment:",
        "      DEFAULT_HOST: ${SWITCHBOARD_HOST:-localhost}",
        f"      PROXY_READ_TIMEOUT: {PROXY_IDLE_TIMEOUT_SECONDS}s",
        "      # Its default log line is $request, query string (?token=) included: ours has none.",
        "      LOG_FORMAT: " + json.dumps(ACCESS_LOG_FORMAT.replace("$", "$$")),
        "    volumes:",
        "      - /var/run/docker.sock:/tmp/docker.sock:ro",
        "      # Refuses the route table's internal paths (Flower's metrics) to the outside.",
        "      - ./deploy/compose/nginx-proxy-vhost.conf:/etc/nginx/vhost.d/default:ro",
        f"      # Its port's listen backlog, LISTEN_BACKLOG ({listen_backlog()}), not nginx's 511.",
        "      - ./deploy/compose/nginx-proxy-listen.conf:/etc/nginx/conf.d/zz-switchboard-listen.conf:ro",
        *somaxconn_lines(),
        *networks_lines("proxy"),
        "    depends_on:",
    ]
    for p in PROCESSES:
        if p.http:
            out += [f"      {p.name}:", "        condition: service_healthy"]
    out += [
        "",
        "  redis:",
        "    image: ${REDIS_IMAGE:-redis:7-bookworm}",
        "    restart: unless-stopped",
        '    command: ["redis-server", "--appendonly", "yes"]',
        "    volumes:",
        "      - redis-data:/data",
        *networks_lines("redis"),
        "    healthcheck:",
        '      test: ["CMD", "redis-cli", "ping"]',
        "      interval: 5s",
        "      timeout: 3s",
        "      retries: 20",
        "",
        "  postgres:",
        "    image: ${POSTGRES_IMAGE:-postgres:15-bookworm}",
        "    restart: unless-stopped",
        "    environment:",
        "      POSTGRES_USER: switchboard",
        "      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
        f"      SWITCHBOARD_DATABASES: {names}",
        "    volumes:",
        "      - postgres-data:/var/lib/postgresql/data",
        "      - ./deploy/compose/postgres-init.sh:/docker-entrypoint-initdb.d/10-switchboard.sh:ro",
        "    healthcheck:",
        "    # Over TCP: while the init scripts run, the server listens on its socket only, so",
        "    # a socket check would report ready before the databases exist.",
        '      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "switchboard", "-d", "postgres"]',
        "      interval: 5s",
        "      timeout: 3s",
        "      retries: 30",
    ]
    for svc in SERVICES:
        # Migrations (and the demo users when SEED_DEMO=1) run once per `up`, before any
        # process of the service starts: replicas never race on a schema change.
        seed = ' && if [ "$${SEED_DEMO:-0}" = 1 ]; then python -m django seed_demo; fi' if svc.seed else ""
        env = {"DJANGO_SETTINGS_MODULE": svc.settings, "SERVICE_NAME": f"{svc.name}-migrate"}
        if svc.seed:
            env |= {"SEED_DEMO": "${SEED_DEMO:-0}", "DEMO_PASSWORD": "${DEMO_PASSWORD:-switchboard}"}
        out += [""] + app_service(
            f"{svc.name}-migrate",
            svc,
            ["sh", "-c", f"python -m django migrate --noinput{seed}"],
            # seed_demo's users are written to the user directory on Redis too (switchboard/userdir.py).
            ["postgres", "redis"] if svc.seed else ["postgres"],
            env,
            [],
        )
        out.insert(len(out) - 1 - out[::-1].index("    depends_on:"), "    restart: 'no'")  # before depends_on
        deps = ["redis", f"{svc.name}-migrate"]
        for p in (p for p in PROCESSES if p.service == svc):
            routes = routing_env(p.serves, HTTP_PORT) if p.http else []
            extra = list(routes)
            if p.auth_setting:  # routed by nginx-proxy only because it asks for these
                var = p.auth_setting
                extra.append(f"      {var}: ${{{var}:?set {var} in .env}}")
            extra += networks_lines(p.name)
            if routes:  # nginx-proxy routes to it
                extra += keepalive_lines()
            if any("backlog=" in part for part in p.command()):  # daphne: fleet.daphne_command
                extra += somaxconn_lines()
            out += [""] + app_service(p.name, svc, p.command(), deps, p.container_env(), extra)
            out += healthcheck(probe_url(p))
            if p.replicas > 1:
                out += ["    deploy:", f"      replicas: {p.replicas}"]
    out += [
        "",
        "  # Monitoring (`--profile monitoring`): the alert rules in Prometheus, Alertmanager",
        "  # delivering to the staff dashboard (ALERT_WEBHOOK_SECRET on both ends).",
        "  prometheus:",
        "    image: ${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.0}",
        "    profiles: [monitoring]",
        "    restart: unless-stopped",
        "    volumes:",
        "      - ${PROMETHEUS_CONFIG:-./deploy/compose/prometheus.yml}:/etc/prometheus/prometheus.yml:ro",
        "      - ${PROMETHEUS_RULES:-./deploy/prometheus/alerts.yml}:/etc/prometheus/alerts.yml:ro",
        "      - prometheus-data:/prometheus",
        "    ports:",
        '      - "127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"',
        *networks_lines("prometheus"),
        "    healthcheck:",
        '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"]',
        "      interval: 5s",
        "      timeout: 3s",
        "      retries: 20",
        "",
        "  alertmanager:",
        "    image: ${ALERTMANAGER_IMAGE:-prom/alertmanager:v0.27.0}",
        "    profiles: [monitoring]",
        "    restart: unless-stopped",
        "    environment:",
        "      ALERT_WEBHOOK_SECRET: ${ALERT_WEBHOOK_SECRET:-}",
        "    # The webhook's bearer token from the environment into the file its config names;",
        "    # without one the dashboard would refuse every delivery, so it does not start.",
        "    entrypoint:",
        "      - /bin/sh",
        "      - -c",
        "      - >-",
        '        [ -n "$$ALERT_WEBHOOK_SECRET" ] || { echo "set ALERT_WEBHOOK_SECRET in .env" >&2; exit 1; };',
        '        umask 077 && printf %s "$$ALERT_WEBHOOK_SECRET" > /tmp/alert-webhook-secret &&',
        "        exec /bin/alertmanager --config.file=/etc/alertmanager/alertmanager.yml --storage.path=/alertmanager",
        "    volumes:",
        "      - ./deploy/compose/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro",
        "      - alertmanager-data:/alertmanager",
        "    healthcheck:",
        f'      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{ALERTMANAGER_PORT}/-/ready"]',
        "      interval: 5s",
        "      timeout: 3s",
        "      retries: 20",
        "    depends_on:",
        f"      {serving('dashboard').name}:",
        "        condition: service_healthy",
        "",
        "  # Grafana (`--profile grafana`, with monitoring): the fleet's dashboard provisioned",
        "  # from deploy/grafana, on Prometheus above.",
        "  grafana:",
        "    image: ${GRAFANA_IMAGE:-grafana/grafana-oss:11.1.0}",
        "    profiles: [grafana]",
        "    restart: unless-stopped",
        "    environment:",
        "      # Empty: Grafana's admin/admin, which it makes you change at the first login.",
        "      GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:-}",
        "    volumes:",
        "      - ./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
        "      - ./deploy/grafana/switchboard-fleet.json:/var/lib/grafana/dashboards/switchboard-fleet.json:ro",
        "      - grafana-data:/var/lib/grafana",
        "    ports:",
        '      - "127.0.0.1:${GRAFANA_PORT:-3000}:3000"',
        "    depends_on:",
        "      - prometheus",
        "",
        "volumes:",
        "  redis-data:",
        "  postgres-data:",
        "  prometheus-data:",
        "  alertmanager-data:",
        "  grafana-data:",
    ]
    if fenced():
        # internal: no route out of the host either; the proxy publishes its port on default.
        out += ["", "networks:"]
        for p in fenced():
            out += [f"  {front_network(p)}:", "    internal: true", f"  {redis_network(p)}:", "    internal: true"]
    return "\n".join(out) + "\n"


def scale_flags(replicas: dict[str, int] | None = None) -> list[str]:
    """`--scale` for every process kind: its fleet replicas, ws-gateway WS_GATEWAY_REPLICAS,
    and `replicas` over both (the scale test's counts)."""
    counts = {p.name: p.replicas for p in PROCESSES} | {"ws-gateway": WS_GATEWAY_REPLICAS} | (replicas or {})
    return [f"--scale={name}={n}" for name, n in counts.items()]


def scale_test_replicas() -> dict[str, int]:
    """The replicas of `make scale-test` (issue 17): several of every kind that may run
    several; inbox workers two each (chat three) once shard ownership holds, else one."""
    inbox = {
        p.name: (3 if p.name == "chat-inbox" else 2) if INBOX_SHARD_OWNERSHIP else 1
        for p in PROCESSES
        if p.scaling == Scaling.SHARDED
    }
    return {"ws-gateway": 3, **inbox, "report-worker-http": 2, "report-worker-celery": 2, "dashboard-publisher": 2}


def nginx_conf(prefix: Path) -> str:
    # Docker's DNS answers a service name with every replica's address.
    upstreams = {p.serves: [f"{p.name}:{HTTP_PORT}"] for p in PROCESSES if p.http}
    # As nginx-proxy: no staff check (auth_request) on a self-guarded route, whose server
    # asks for its own credentials; the other staff-only routes keep it (nginx-proxy
    # does not route them at all).
    table = load_routes()
    guarded = self_guarded()
    http = tuple(replace(r, staff_only=False) if r.service in guarded else r for r in table.http)
    conf = render_nginx(upstreams, "80", prefix, replace(table, http=http))
    # The address of a dead replica does not refuse, it stays silent: without a short
    # connect timeout every request sent its way would wait 60 s before nginx tries the
    # next replica. (nginx-proxy drops a dead container from its upstream instead.)
    return conf.replace(
        "    proxy_http_version 1.1;\n", "    proxy_http_version 1.1;\n    proxy_connect_timeout 2s;\n", 1
    )


ALERTMANAGER_PORT = 9093


def prometheus(interval: str = "15s") -> str:
    """Every process's /metrics by Docker DNS, each target labelled with its owning
    `service` (the alert rules match `up{service!=""}` and join on it), the alert rules
    loaded, firing alerts sent to Alertmanager."""
    lines = [
        "# Generated by deploy/composegen.py: every process's /metrics, found by Docker DNS.",
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "rule_files:",
        "  - /etc/prometheus/alerts.yml",
        "alerting:",
        "  alertmanagers:",
        "    - static_configs:",
        f"        - targets: [alertmanager:{ALERTMANAGER_PORT}]",
        "scrape_configs:",
    ]
    for p in PROCESSES:
        port_name, path = p.metrics
        port = {"http": HTTP_PORT, "metrics": METRICS_PORT}[port_name]
        lines += [f"  - job_name: {p.name}"] + ([f"    metrics_path: {path}"] if path != "/metrics" else [])
        # Docker DNS lists a container only once it runs: a lookup at Prometheus's start
        # can miss every process, so look again every interval, not every 30 s (the default).
        lines += ["    dns_sd_configs:", f"      - names: [{p.name}]", "        type: A", f"        port: {port}"]
        lines += [f"        refresh_interval: {interval}"]
        lines += ["    relabel_configs:", "      - target_label: service", f"        replacement: {p.service.name}"]
    return "\n".join(lines) + "\n"


def alertmanager() -> str:
    """Every alert to the staff dashboard (an `alert` frame on /ws/dashboard/), resolved
    ones too, with the webhook secret as the bearer token: the container writes
    ALERT_WEBHOOK_SECRET to the credentials file when it starts (compose.yaml)."""
    return (
        "\n".join(
            [
                "# Generated by deploy/composegen.py: Alertmanager routes every alert to the staff dashboard.",
                "route:",
                "  receiver: switchboard-dashboard",
                "  group_by: [alertname, service]",
                "  group_wait: 10s",
                "  group_interval: 1m",
                "  repeat_interval: 4h",
                "receivers:",
                "  - name: switchboard-dashboard",
                "    webhook_configs:",
                f"      - url: {alert_webhook_url()}",
                "        send_resolved: true",
                "        http_config:",
                "          authorization:",
                "            type: Bearer",
                "            credentials_file: /tmp/alert-webhook-secret",
            ]
        )
        + "\n"
    )


def fast_rules(hold: str) -> str:
    """deploy/prometheus/alerts.yml with every `for:` shortened to `hold`: the same rules,
    so make compose-test sees an alert fire in seconds rather than minutes."""
    import yaml

    doc = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = hold
    return yaml.safe_dump(doc, sort_keys=False)


# .env.example's required secrets and how `dotenv` fills them.
DOTENV_SECRETS = {
    "SWITCHBOARD_SECRET_KEY": lambda: secrets.token_urlsafe(48),
    "SWITCHBOARD_JWT_KEYS": lambda: f"k{time.strftime('%Y%m%d')}:{secrets.token_urlsafe(48)}",
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
    "FLOWER_BASIC_AUTH": lambda: "staff:" + secrets.token_urlsafe(18),
    "ALERT_WEBHOOK_SECRET": lambda: secrets.token_urlsafe(32),
    "GRAFANA_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
}


def dotenv() -> str:
    """.env.example with a fresh random value for every secret: a .env that starts
    (the services refuse the example's placeholders when SWITCHBOARD_DEBUG=0)."""
    text = (ROOT / ".env.example").read_text()
    for name, make in DOTENV_SECRETS.items():
        text, n = re.subn(rf"^{name}=.*$", lambda _m, name=name, make=make: f"{name}={make()}", text, flags=re.M)
        assert n == 1, name
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what",
        choices=[
            "compose",
            "scale",
            "nginx-conf",
            "databases",
            "prometheus",
            "alertmanager",
            "test-rules",
            "dotenv",
            "proxy-vhost",
            "proxy-listen",
        ],
    )
    parser.add_argument("--interval", default="15s", help="prometheus: scrape and evaluation interval")
    parser.add_argument("--hold", default="10s", help="test-rules: every alert's `for:`")
    parser.add_argument("--prefix", default="/var/lib/switchboard-gateway")
    parser.add_argument("--scale-test", action="store_true", help="scale: the replicas of make scale-test")
    args = parser.parse_args()
    if args.what == "compose":
        sys.stdout.write(compose())
    elif args.what == "scale":
        print(" ".join(scale_flags(scale_test_replicas() if args.scale_test else None)))
    elif args.what == "nginx-conf":
        sys.stdout.write(nginx_conf(Path(args.prefix)))
    elif args.what == "prometheus":
        sys.stdout.write(prometheus(args.interval))
    elif args.what == "alertmanager":
        sys.stdout.write(alertmanager())
    elif args.what == "test-rules":
        sys.stdout.write(fast_rules(args.hold))
    elif args.what == "dotenv":
        sys.stdout.write(dotenv())
    elif args.what == "proxy-vhost":
        sys.stdout.write(proxy_vhost())
    elif args.what == "proxy-listen":
        sys.stdout.write(proxy_listen())
    else:
        print(",".join(s.db_name for s in SERVICES))


if __name__ == "__main__":
    main()
