"""compose.yaml, made from the launcher's SERVICES table and gateway/routes.toml.

    python deploy/composegen.py compose      # print compose.yaml (make compose-yaml writes it)
    python deploy/composegen.py scale        # --scale flags for the local run
    python deploy/composegen.py nginx-conf   # the stand-in gateway's nginx config
    python deploy/composegen.py databases    # one database name per service

Why generated: a service or route added to the table reaches compose.yaml and the
gateway by one `make compose-yaml`, and tests/compose fail while compose.yaml is stale.
Each routed service gets VIRTUAL_HOST/VIRTUAL_PATH/VIRTUAL_PORT for nginx-proxy; a
service owning several prefixes gets VIRTUAL_HOST_MULTIPORTS instead (nginx-proxy >= 1.6).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from launcher import SERVICES, Service, daphne_command  # noqa: E402
from nginxconf import render as render_nginx  # noqa: E402
from switchboard.config import default  # noqa: E402
from switchboard.routes import load as load_routes  # noqa: E402

HTTP_PORT = 8000
METRICS_PORT = 9100
# Replicas of ws-gateway in the local run: `--scale ws-gateway=3` as docs/operations.md shows,
# so the smoke suite proves sockets spread over all of them and messages cross.
GATEWAY_REPLICAS = 3


def db_name(svc: Service) -> str:
    return svc.name.replace("-", "_")


def self_guarded() -> dict[str, str]:
    """routes.toml service -> the setting with the credentials its server checks itself
    (Flower: FLOWER_BASIC_AUTH), from the launcher's daemons."""
    return {d.serves: d.auth_setting for svc in SERVICES for d in svc.daemons if d.serves and d.auth_setting}


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


def served_prefix(route_service: str) -> str:
    return next(r.prefix for r in load_routes().http if r.service == route_service)


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


def app_service(name: str, svc: Service, command: list[str], depends: list[str], extra: list[str]) -> list[str]:
    lines = [
        f"  {name}:",
        "    <<: *app",
        "    environment:",
        "      <<: *app-env",
        f"      DJANGO_SETTINGS_MODULE: {svc.settings}",
        f"      DATABASE_URL: postgres://switchboard:${{POSTGRES_PASSWORD}}@postgres:5432/{db_name(svc)}",
        f"      SERVICE_NAME: {name}",
        *extra,
        "    volumes:",
        # One volume per service, shared by its containers: the report files the Celery
        # worker writes are served by the HTTP face. Its SQLite fallback would live here too.
        f"      - {db_name(svc)}-data:/data",
        "    command: " + json.dumps(command),
        "    depends_on:",
    ]
    for dep in depends:
        cond = "service_completed_successfully" if dep.endswith("-migrate") else "service_healthy"
        lines += [f"      {dep}:", f"        condition: {cond}"]
    return lines


def compose() -> str:
    names = ",".join(db_name(s) for s in SERVICES)
    out = [
        "# Generated by deploy/composegen.py from deploy/launcher.py SERVICES and",
        "# gateway/routes.toml: edit those, then `make compose-yaml`. Do not edit by hand.",
        "#",
        "#   cp .env.example .env   # set the secrets",
        "#   docker compose up -d   # http://localhost:8080 (GATEWAY_PORT)",
        "#",
        "# nginx-proxy routes by VIRTUAL_HOST + VIRTUAL_PATH; replicas of one service share",
        "# one upstream, so `docker compose up --scale ws-gateway=3` works.",
        "# (No top-level `name:`: compose v1 rejects it; COMPOSE_PROJECT_NAME in .env names the project.)",
        "",
        "x-app-env: &app-env",
        "  SWITCHBOARD_SECRET_KEY: ${SWITCHBOARD_SECRET_KEY:?set SWITCHBOARD_SECRET_KEY in .env}",
        "  REDIS_URL: redis://redis:6379/0",
        "  ALLOWED_HOSTS: ${ALLOWED_HOSTS:-*}",
        "  ALLOWED_ORIGINS: ${ALLOWED_ORIGINS:-http://localhost:8080,http://127.0.0.1:8080}",
        "  GATEWAY_URL: http://proxy",
        "  METRICS_PORT: '9100'",
        "  METRICS_HOST: 0.0.0.0",
        "  INBOX_SHARDS: ${INBOX_SHARDS:-4}",
        "  LOG_LEVEL: ${LOG_LEVEL:-INFO}",
        "  LOG_FORMAT: ${LOG_FORMAT:-json}",
        "  DEMO_PASSWORD: ${DEMO_PASSWORD:-switchboard}",
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
        "      # Above daphne's 20 s ping interval, so a quiet socket is never cut.",
        "      PROXY_READ_TIMEOUT: 3600s",
        "    volumes:",
        "      - /var/run/docker.sock:/tmp/docker.sock:ro",
        "    depends_on:",
    ]
    for svc in SERVICES:
        out += [f"      {svc.name}:", "        condition: service_healthy"]
    out += [
        "",
        "  redis:",
        "    image: ${REDIS_IMAGE:-redis:7-bookworm}",
        "    restart: unless-stopped",
        '    command: ["redis-server", "--appendonly", "yes"]',
        "    volumes:",
        "      - redis-data:/data",
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
        out += [""] + app_service(
            f"{svc.name}-migrate",
            svc,
            ["sh", "-c", f"python -m django migrate --noinput{seed}"],
            ["postgres"],
            ["      SEED_DEMO: ${SEED_DEMO:-0}"] if svc.seed else [],
        )
        out.insert(len(out) - 3 - 0, "    restart: 'no'")  # placed before depends_on
        routing = routing_env(svc.name, HTTP_PORT)
        daphne = daphne_command(svc.asgi, bind="0.0.0.0", port=HTTP_PORT)
        deps = ["redis", f"{svc.name}-migrate"]
        out += [""] + app_service(svc.name, svc, daphne, deps, routing)
        out += healthcheck(f"http://127.0.0.1:{HTTP_PORT}/readyz")
        if svc.inbox:
            out += (
                [""]
                + app_service(f"{svc.name}-inbox", svc, ["python", "-m", "django", "inbox"], deps, [])
                + healthcheck(f"http://127.0.0.1:{METRICS_PORT}/healthz")
            )
        for daemon in svc.daemons:
            serves = getattr(daemon, "serves", "")
            if serves:  # its own HTTP port, with its routes and its own /metrics (Flower)
                port = int(default(daemon.port_setting))
                extra = [f"      {daemon.port_setting}: '{port}'", *routing_env(serves, port)]
                if daemon.auth_setting:  # routed by nginx-proxy only because it asks for these
                    var = daemon.auth_setting
                    extra.append(f"      {var}: ${{{var}:?set {var} in .env}}")
                check = f"http://127.0.0.1:{port}{served_prefix(serves)}healthcheck"
            else:
                extra, check = [], f"http://127.0.0.1:{METRICS_PORT}/healthz"
            name = f"{svc.name}-{daemon.name}"
            out += [""] + app_service(name, svc, ["python", "-m", "django", *daemon.command], deps, extra)
            out += healthcheck(check)
            if daemon.copies > 1:
                out += ["    deploy:", f"      replicas: {daemon.copies}"]
    out += [
        "",
        "  prometheus:",
        "    image: ${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.0}",
        "    profiles: [monitoring]",
        "    restart: unless-stopped",
        "    volumes:",
        "      - ./deploy/compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        "      - prometheus-data:/prometheus",
        "    ports:",
        '      - "127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"',
        "",
        "volumes:",
        *[f"  {db_name(s)}-data:" for s in SERVICES],
        "  redis-data:",
        "  postgres-data:",
        "  prometheus-data:",
    ]
    return "\n".join(out) + "\n"


def scale_flags() -> list[str]:
    flags = [f"--scale=ws-gateway={GATEWAY_REPLICAS}"]
    for svc in SERVICES:
        for daemon in svc.daemons:
            flags.append(f"--scale={svc.name}-{daemon.name}={daemon.copies}")
    return flags


def nginx_conf(prefix: Path) -> str:
    # Docker's DNS answers a service name with every replica's address.
    upstreams = {svc.name: [f"{svc.name}:{HTTP_PORT}"] for svc in SERVICES}
    for svc in SERVICES:
        for daemon in svc.daemons:
            if getattr(daemon, "serves", ""):
                upstreams[daemon.serves] = [f"{svc.name}-{daemon.name}:{int(default(daemon.port_setting))}"]
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


def prometheus() -> str:
    lines = [
        "# Generated by deploy/composegen.py: every process's /metrics, found by Docker DNS.",
        "global:",
        "  scrape_interval: 15s",
        "scrape_configs:",
    ]
    for svc in SERVICES:
        jobs = [(svc.name, METRICS_PORT, "")] + ([(f"{svc.name}-inbox", METRICS_PORT, "")] if svc.inbox else [])
        for d in svc.daemons:
            if getattr(d, "serves", ""):  # Flower: /metrics under its prefix, on its port
                jobs.append((f"{svc.name}-{d.name}", int(default(d.port_setting)), served_prefix(d.serves) + "metrics"))
            else:
                jobs.append((f"{svc.name}-{d.name}", METRICS_PORT, ""))
        for job, port, path in jobs:
            lines += [f"  - job_name: {job}"] + ([f"    metrics_path: {path}"] if path else [])
            lines += ["    dns_sd_configs:", f"      - names: [{job}]", "        type: A", f"        port: {port}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["compose", "scale", "nginx-conf", "databases", "prometheus"])
    parser.add_argument("--prefix", default="/var/lib/switchboard-gateway")
    args = parser.parse_args()
    if args.what == "compose":
        sys.stdout.write(compose())
    elif args.what == "scale":
        print(" ".join(scale_flags()))
    elif args.what == "nginx-conf":
        sys.stdout.write(nginx_conf(Path(args.prefix)))
    elif args.what == "prometheus":
        sys.stdout.write(prometheus())
    else:
        print(",".join(db_name(s) for s in SERVICES))


if __name__ == "__main__":
    main()
