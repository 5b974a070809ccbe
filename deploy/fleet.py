"""The fleet: every process Switchboard runs, described once.

Owns the table of services (SERVICES) and its expansion into process kinds
(PROCESSES): for each one its name, owning service, role, command, ports, the
environment it gets in a container, its replicas, how it may scale (and so whether
it may autoscale), its probes and the storage it shares with others. Three
deployments are generated from it and from nothing else of the kind:

* deploy/launcher.py  (`make run`, the e2e tests): programs under supervisord;
* deploy/composegen.py (compose.yaml): one compose service per process kind;
* k8s/generate.py (k8s/base): one Deployment (+ Service, PDB, HPA) per process kind.

Each of those adds only what is its own (free ports and supervisord; nginx-proxy's
variables; Kubernetes objects). The deployment-wide settings every process gets
(secrets, the service-to-service address, ...) are DEPLOYMENT_SETTINGS; the route
table stays gateway/routes.toml, read through switchboard.routes.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))

from switchboard.config import default as setting_default  # noqa: E402
from switchboard.routes import load as load_routes  # noqa: E402

# Ports inside a container (compose, k8s): every HTTP server on HTTP_PORT, every
# process's own /metrics and /healthz on METRICS_PORT. The launcher picks free ones.
HTTP_PORT = 8000
METRICS_PORT = 9100
# Inbox workers may run as several replicas because each shard has one owner at a time
# (switchboard/ownership.py: leases with fencing tokens; docs/operations.md, "Shard
# ownership"). False would forbid scaling them (two consumers of one shard reorder a key).
INBOX_SHARD_OWNERSHIP = True


class Role(StrEnum):
    GATEWAY = "gateway"  # ws-gateway: the sockets
    HTTP = "http"  # a service's HTTP face (or a third-party HTTP server: Flower)
    WORKER = "worker"  # no routed HTTP: inbox workers, Celery, the stats publisher


class Scaling(StrEnum):
    """How many replicas of a process kind may run, and so whether it may autoscale."""

    STATELESS = "stateless"  # any number; any replica serves any request
    SHARDED = "sharded"  # consumes inbox shards: one owner per shard (INBOX_SHARD_OWNERSHIP)
    LEASED = "leased"  # several for failover, one active at a time (a Redis lease)
    SINGLE = "single"  # exactly one


@dataclass(frozen=True)
class Probe:
    path: str
    port: str  # "http" or "metrics"


@dataclass(frozen=True)
class Daemon:
    """A further long-running process of a service: `python -m django <command>`."""

    name: str
    command: tuple[str, ...]
    replicas: int = 1
    scaling: Scaling = Scaling.SINGLE
    autoscale_max: int = 0  # >0: an autoscaler between `replicas` and this
    # An HTTP server of its own (Flower): `serves` is the routes.toml service routed to
    # it, `port_setting` the setting that gives it its port.
    serves: str = ""
    port_setting: str = ""
    # The setting with credentials the process checks itself (Flower's basic auth). Where
    # the proxy cannot ask ws-gateway for the staff check (nginx-proxy in compose), only
    # such a process's staff-only routes are routed, guarded by these credentials.
    auth_setting: str = ""
    # Files it writes that another process kind of the service reads (see Process.shares).
    shares: str = ""
    # See Process.proxy_only.
    proxy_only: bool = False


@dataclass(frozen=True)
class Service:
    """One service of the fleet and the processes it runs."""

    name: str
    settings: str  # Django settings module
    asgi: str  # ASGI application for its HTTP face
    inbox: bool = False  # runs an inbox worker
    seed: bool = False  # has a seed_demo command
    daemons: tuple[Daemon, ...] = ()
    http_replicas: int = 1
    http_autoscale_max: int = 0
    http_shares: str = ""
    # Secrets only this service's processes read: (setting, its key in the deployment's
    # secret). Optional in both deployments: unset, the feature it guards is off.
    secrets: tuple[tuple[str, str], ...] = ()

    @property
    def db_name(self) -> str:
        return self.name.replace("-", "_")


# The fleet.
SERVICES: tuple[Service, ...] = (
    # Two gateways: losing one reconnects half the sockets, not all.
    Service(
        "ws-gateway",
        "ws_gateway.settings",
        "ws_gateway.asgi:application",
        seed=True,
        http_replicas=2,
        http_autoscale_max=10,
    ),
    Service("chat", "chat.settings", "chat.asgi:application", inbox=True, seed=True),
    Service("collab", "collab.settings", "collab.asgi:application", inbox=True, seed=True),
    # Two stats publishers: one publishes (Redis lease), the other takes over when it dies.
    Service(
        "dashboard",
        "dashboard.settings",
        "dashboard.asgi:application",
        inbox=True,
        daemons=(Daemon("publisher", ("stats_publisher",), replicas=2, scaling=Scaling.LEASED),),
        # Alertmanager's webhook (POST /api/dashboard/alerts/) authenticates with it.
        secrets=(("ALERT_WEBHOOK_SECRET", "alert-webhook-secret"),),
    ),
    Service("notification", "notification.settings", "notification.asgi:application", inbox=True),
    # The Celery worker (threads pool) scales with the report queue; Flower (events on,
    # /flower/, staff only) is one. Report files live in the service's database
    # (report_worker.models.ReportFile): nothing on a disk another replica reads.
    Service(
        "report-worker",
        "report_worker.settings",
        "report_worker.asgi:application",
        daemons=(
            Daemon(
                "celery",
                ("celery_worker",),
                scaling=Scaling.STATELESS,
                autoscale_max=4,
            ),
            Daemon(
                "flower",
                ("flower",),
                serves="flower",
                port_setting="FLOWER_PORT",
                auth_setting="FLOWER_BASIC_AUTH",
                # Its API runs unauthenticated where the proxy checks staff (make run, k8s).
                proxy_only=True,
            ),
        ),
    ),
)


@dataclass(frozen=True)
class Process:
    """One process kind: a compose service, a k8s Deployment, launcher programs."""

    name: str
    service: Service
    role: Role
    # `python -m django <args>`; empty: daphne serving service.asgi (an HTTP face).
    django: tuple[str, ...] = ()
    serves: str = ""  # the routes.toml service routed to its HTTP port ("": none)
    port_setting: str = ""  # the setting with its HTTP port ("": daphne's -p)
    auth_setting: str = ""
    replicas: int = 1  # in a deployment (compose, k8s base)
    scaling: Scaling = Scaling.SINGLE
    autoscale_max: int = 0
    # What it keeps on disk that another process or replica reads ("": nothing). A
    # deployment must give every such process one storage all of them read.
    shares: str = ""
    # Its HTTP server trusts the proxy in front (Flower: its API answers anyone who
    # reaches it, behind the proxy's staff check), so only the proxy and Prometheus may
    # connect to it: compose gives it networks of its own with them (and one with Redis),
    # k8s a NetworkPolicy admitting only the ingress controller's and Prometheus' pods.
    proxy_only: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def http(self) -> bool:
        return bool(self.serves)

    @property
    def own_metrics(self) -> bool:
        """Serves switchboard's /metrics and /healthz on METRICS_PORT (a third-party
        HTTP server, Flower, has its own under its route prefix instead)."""
        return not self.port_setting

    @property
    def prefix(self) -> str:
        """The first route prefix of what it serves (Flower: /flower/)."""
        return next(r.prefix for r in load_routes().http if r.service == self.serves)

    @property
    def metrics(self) -> tuple[str, str]:
        """(port name, path) of its /metrics."""
        return ("metrics", "/metrics") if self.own_metrics else ("http", self.prefix + "metrics")

    @property
    def liveness(self) -> Probe:
        """Does the process answer. Workers: their metrics server's /healthz."""
        if not self.own_metrics:
            return Probe(self.prefix + "healthcheck", "http")
        return Probe("/healthz", "http" if self.http else "metrics")

    @property
    def readiness(self) -> Probe:
        """HTTP faces are ready only with Redis (/readyz): an outage takes them out of
        rotation without restarting them."""
        if self.http and self.own_metrics:
            return Probe("/readyz", "http")
        return self.liveness

    @property
    def may_scale(self) -> bool:
        """More than one replica keeps every guarantee."""
        if self.scaling == Scaling.SHARDED:
            return INBOX_SHARD_OWNERSHIP
        return self.scaling in (Scaling.STATELESS, Scaling.LEASED)

    @property
    def autoscaled(self) -> bool:
        return self.autoscale_max > 0

    def command(
        self,
        *,
        bind: str = "0.0.0.0",
        port: int = HTTP_PORT,
        settings: Mapping[str, str] | None = None,
        python: str = "python",
    ) -> list[str]:
        if self.django:
            return [python, "-m", "django", *self.django]
        return daphne_command(self.service.asgi, bind=bind, port=port, settings=settings, python=python)

    def container_env(self) -> dict[str, str]:
        """The variables of this process, not of the deployment, in a container."""
        env = {"DJANGO_SETTINGS_MODULE": self.service.settings, "SERVICE_NAME": self.name, **self.env}
        if self.own_metrics:
            env |= {"METRICS_PORT": str(METRICS_PORT), "METRICS_HOST": "0.0.0.0"}
        if self.port_setting:
            env[self.port_setting] = str(HTTP_PORT)
        return env


def _expand(services: tuple[Service, ...]) -> tuple[Process, ...]:
    out = []
    for svc in services:
        gateway = svc.name == "ws-gateway"
        out.append(
            Process(
                svc.name if gateway else f"{svc.name}-http",
                svc,
                Role.GATEWAY if gateway else Role.HTTP,
                serves=svc.name,
                replicas=svc.http_replicas,
                scaling=Scaling.STATELESS,
                autoscale_max=svc.http_autoscale_max,
                shares=svc.http_shares,
            )
        )
        if svc.inbox:
            # Scaled by hand or by an autoscaler only once shard ownership holds.
            out.append(
                Process(
                    f"{svc.name}-inbox",
                    svc,
                    Role.WORKER,
                    ("inbox",),
                    scaling=Scaling.SHARDED,
                    autoscale_max=4 if INBOX_SHARD_OWNERSHIP else 0,
                )
            )
        for d in svc.daemons:
            out.append(
                Process(
                    f"{svc.name}-{d.name}",
                    svc,
                    Role.HTTP if d.serves else Role.WORKER,
                    d.command,
                    serves=d.serves,
                    port_setting=d.port_setting,
                    auth_setting=d.auth_setting,
                    replicas=d.replicas,
                    scaling=d.scaling,
                    autoscale_max=d.autoscale_max,
                    shares=d.shares,
                    proxy_only=d.proxy_only,
                )
            )
    return tuple(out)


PROCESSES: tuple[Process, ...] = _expand(SERVICES)


def process(name: str) -> Process:
    return next(p for p in PROCESSES if p.name == name)


def serving(route_service: str) -> Process:
    """The process kind that serves a routes.toml service's HTTP routes."""
    return next(p for p in PROCESSES if p.serves == route_service)


def internal_hosts() -> list[str]:
    """Every process with an HTTP face, by its name: compose's service names and k8s's
    Service names, which SERVICE_URLS and the alert webhook use as Host. Each deployment
    adds its proxy's own name (compose: `proxy`; k8s: the staff check's FQDN)."""
    return [p.name for p in PROCESSES if p.http]


# Where Alertmanager delivers alerts, in every deployment: the dashboard's webhook
# (POST, `Authorization: Bearer <ALERT_WEBHOOK_SECRET>`), called on the service's own
# HTTP face inside the deployment's network, not through the public proxy.
ALERT_WEBHOOK_ROUTE = ("dashboard", "/api/dashboard/alerts/")


def alert_webhook_url(host_suffix: str = "") -> str:
    """The webhook's URL on the process serving it (`host_suffix`: k8s's namespace part)."""
    service, path = ALERT_WEBHOOK_ROUTE
    return f"http://{serving(service).name}{host_suffix}:{HTTP_PORT}{path}"


@dataclass(frozen=True)
class DeploymentSetting:
    """A setting every process of a container deployment gets from the deployment."""

    name: str
    secret: str = ""  # its key in the deployment's secret ("": plain config)
    per_service: bool = False  # one value per service (its own database)
    optional: bool = False  # a secret the deployment may not have (k8s: an optional secretKeyRef)


# What compose's x-app-env and k8s's ConfigMap + Secret give every process. A process's
# own variables are Process.container_env().
DEPLOYMENT_SETTINGS: tuple[DeploymentSetting, ...] = (
    DeploymentSetting("SWITCHBOARD_SECRET_KEY", secret="secret-key"),
    DeploymentSetting("SWITCHBOARD_JWT_KEYS", secret="jwt-keys"),
    # The shop's own token keys (docs/security.md#shop-tokens): none unless the shop mints tokens.
    DeploymentSetting("SHOP_JWT_KEYS", secret="shop-jwt-keys", optional=True),
    DeploymentSetting("SHOP_JWKS"),
    DeploymentSetting("SHOP_JWT_AUDIENCE"),
    DeploymentSetting("SHOP_JWT_ISSUER"),
    DeploymentSetting("REDIS_URL", secret="redis-url"),
    DeploymentSetting("DATABASE_URL", secret="database-url", per_service=True),
    DeploymentSetting("ALLOWED_HOSTS"),
    # Generated per deployment (internal_hosts()): what its callers send as Host.
    DeploymentSetting("INTERNAL_HOSTS"),
    DeploymentSetting("ALLOWED_ORIGINS"),
    # On where browsers come over TLS (k8s prod): session and CSRF cookies Secure.
    DeploymentSetting("SECURE_COOKIES"),
    DeploymentSetting("SERVICE_URLS"),
    DeploymentSetting("INBOX_SHARDS"),
    DeploymentSetting("LOG_LEVEL"),
    DeploymentSetting("LOG_FORMAT"),
    # The proxy's network: its X-Real-IP names the client (socket caps, login throttle).
    DeploymentSetting("TRUSTED_PROXIES"),
    # Where SQLite lives (make run): a process whose `shares` is set needs it on
    # storage every process of its service reads.
    DeploymentSetting("SWITCHBOARD_DATA_DIR"),
)


def daphne_command(
    asgi: str, *, bind: str, port: int, settings: Mapping[str, str] | None = None, python: str = "python"
) -> list[str]:
    """How every HTTP face runs daphne: here, in compose.yaml and in k8s/ (one definition).

    `settings` overrides the declared defaults (the launcher passes its fleet's
    environment; the generators pass none, so what they write does not depend on the
    machine that ran them).
    """
    settings = settings or {}

    def get(name: str) -> str:
        return settings.get(name) or setting_default(name)

    # daphne's own frame cap is a backstop 4x above ws-gateway's and above every route's
    # own limit (routes.toml max_message_bytes): frames between the two are closed by
    # ws-gateway with a clean 1009; autobahn fails far larger ones without a close frame.
    max_bytes = max([4 * int(get("WS_MAX_MESSAGE_BYTES"))] + [2 * r.max_message_bytes for r in load_routes().websocket])
    # No access log from daphne (-v 0): nginx's, which every request crosses first, is
    # the access log and leaves query strings out; daphne's writes an HTTP request's
    # whole URI, a ?token= included, and three lines per socket. Python logging is
    # LOG_LEVEL's either way (settings_base.LOGGING). No --proxy-headers: daphne would
    # take the client's address from the first X-Forwarded-For entry, which the client
    # writes itself; ws_gateway/clientip.py believes the proxy's X-Real-IP, from the
    # proxy only (TRUSTED_PROXIES).
    # An endpoint string rather than -b/-p: daphne's -b/-p listen with Twisted's default
    # backlog of 50, which a reconnect storm overflows (connects dropped, SYN retransmits);
    # the endpoint takes LISTEN_BACKLOG. An IPv6 address is escaped as Twisted wants it.
    interface = bind.replace(":", r"\:")
    endpoint = f"tcp:port={port}:interface={interface}:backlog={get('LISTEN_BACKLOG')}"
    return [
        python, "-m", "daphne", "-e", endpoint, "-v", "0",
        "--ping-interval", get("WS_PING_INTERVAL_SECONDS"), "--ping-timeout", get("WS_PING_TIMEOUT_SECONDS"),
        "--websocket-max-message-size", str(max_bytes), asgi,
    ]  # fmt: skip
