"""What the rendered manifests mean, checked against the fleet (deploy/fleet.py), the
route table and compose.yaml: the defects a schema check cannot see.

    python k8s/checks.py k8s/overlays/dev k8s/overlays/prod   # make k8s-check

* every path a service calls another service at reaches, through SERVICE_URLS and the
  route table, a Service of the deployment whose pods serve that path;
* no pod-local volume (emptyDir) holds files another pod reads;
* every Deployment with an autoscaler, or more than one replica, may scale;
* the env of each workload equals what compose runs for it;
* a process that trusts the proxy's staff check (Flower) takes connections from the
  ingress controller and Prometheus only, and its internal paths are not routed out.

Each function returns the problems it found ([]: none), as sentences for an operator.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

K8S = Path(__file__).resolve().parent
ROOT = K8S.parent
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(K8S))

import render  # noqa: E402
from fleet import DEPLOYMENT_SETTINGS, PROCESSES  # noqa: E402

from switchboard.config import default as setting_default  # noqa: E402
from switchboard.routes import load as load_routes  # noqa: E402
from switchboard.routes import service_calls, service_urls  # noqa: E402

BY_NAME = {p.name: p for p in PROCESSES}
# Variables of compose.yaml that are nginx-proxy's (its routing), not the process's.
PROXY_VARIABLES = re.compile(r"^VIRTUAL_")


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def config(objects: list[dict]) -> dict[str, str]:
    return of_kind(objects, "ConfigMap").get("switchboard-config", {}).get("data", {})


def pod_env(objects: list[dict], deployment: dict) -> dict[str, str | None]:
    """A container's variables as the pod sees them: the ConfigMaps it loads, then its
    own env (None: from a Secret)."""
    maps = of_kind(objects, "ConfigMap")
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str | None] = {}
    for source in c.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            env.update(maps.get(ref["name"], {}).get("data", {}))
    for e in c.get("env", []):
        env[e["name"]] = e.get("value")
    return env


# ------------------------------------------------------------------ addresses ----
def route_of(path: str):
    """The http route a path takes: the longest prefix, as nginx and the Ingress pick it."""
    return load_routes().route_of(path)


def service_name(host: str, namespace: str | None) -> str | None:
    """`name`, `name.ns`, `name.ns.svc` or `name.ns.svc.cluster.local` of this namespace."""
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0]
    suffix = ".".join(parts[1:])
    if namespace and suffix in (namespace, f"{namespace}.svc", f"{namespace}.svc.cluster.local"):
        return parts[0]
    return None


def check_urls(objects: list[dict]) -> list[str]:
    """Every service-to-service call (switchboard.routes.service_calls: the paths each
    module calls through internal_url) goes, by each workload's SERVICE_URLS, to a Service
    of this deployment whose pods serve the route's owner."""
    problems = []
    services = of_kind(objects, "Service")
    namespace = next((o["metadata"].get("namespace") for o in objects if o["metadata"].get("namespace")), None)
    paths = sorted(set().union(*service_calls().values()))
    for deployment in of_kind(objects, "Deployment").values():
        if deployment["metadata"]["name"] not in BY_NAME:
            continue  # dev's datastores
        value = pod_env(objects, deployment).get("SERVICE_URLS") or setting_default("SERVICE_URLS")
        try:
            urls = service_urls(value)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        for path in paths:
            route = route_of(path)
            if route is None:
                problems.append(f"the services call {path}, which no route of routes.toml serves")
                continue
            base = urls.get(route.service) or urls.get("")
            if not base:
                problems.append(f"SERVICE_URLS={value}: no address for {route.service}, which serves {path}")
                continue
            host = urlsplit(base).hostname or ""
            svc = service_name(host, namespace)
            if svc not in services:
                problems.append(f"SERVICE_URLS={value}: {host} is not a Service of this deployment")
                continue
            selector = services[svc]["spec"].get("selector", {}).get("app.kubernetes.io/name")
            behind = BY_NAME.get(selector)
            if behind is None or behind.serves != route.service:
                serves = behind.serves if behind else "nothing of routes.toml"
                problems.append(
                    f"SERVICE_URLS={value}: a call to {path} (route {route.prefix} of {route.service}) "
                    f"reaches Service {svc}, which serves {serves}"
                )
    return sorted(set(problems))


# -------------------------------------------------------------------- storage ----
def check_storage(objects: list[dict]) -> list[str]:
    """A process whose files another pod reads (fleet.Process.shares) must keep them
    on a volume every such pod mounts, never on an emptyDir of its own pod."""
    problems = []
    for name, deployment in of_kind(objects, "Deployment").items():
        p = BY_NAME.get(name)
        if p is None or not p.shares:
            continue
        spec = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = spec["containers"][0].get("volumeMounts", [])
        for setting, value in pod_env(objects, deployment).items():
            if setting != "SWITCHBOARD_DATA_DIR" or not value:
                continue
            mount = max(
                (m for m in mounts if value == m["mountPath"] or value.startswith(m["mountPath"].rstrip("/") + "/")),
                key=lambda m: len(m["mountPath"]),
                default=None,
            )
            volume = volumes.get(mount["name"], {}) if mount else {}
            if mount is None or "emptyDir" in volume:
                where = f"emptyDir volume {mount['name']}" if mount else "the container's own filesystem"
                problems.append(
                    f"{name}: {setting}={value} is on {where}, but its {p.shares} are read by other pods "
                    f"({', '.join(q.name for q in PROCESSES if q.service == p.service and q.shares)})"
                )
    return problems


# -------------------------------------------------------------------- scaling ----
def check_scaling(objects: list[dict]) -> list[str]:
    problems = []
    deployments = of_kind(objects, "Deployment")
    for hpa in of_kind(objects, "HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]["name"]
        p = BY_NAME.get(target)
        if p is None or not p.may_scale:
            why = f"a {p.scaling} process that may not run twice now" if p else "not a process of the fleet"
            problems.append(f"HorizontalPodAutoscaler {hpa['metadata']['name']} scales {target}: {why}")
    for name, d in deployments.items():
        p = BY_NAME.get(name)
        if p is not None and d["spec"].get("replicas", 1) > 1 and not p.may_scale:
            problems.append(f"Deployment {name} runs {d['spec']['replicas']} replicas of a {p.scaling} process")
    return problems


# ------------------------------------------------------------------------ env ----
def compose_env() -> dict[str, dict[str, str]]:
    """compose service -> its environment as compose.yaml gives it (anchors merged)."""
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return {name: {k: str(v) for k, v in (s.get("environment") or {}).items()} for name, s in doc["services"].items()}


def check_env(objects: list[dict]) -> list[str]:
    """The same variables as compose gives the process, with the same values where the
    value is the process's own (not a deployment-wide setting, which each deployment
    sets its own way; not compose's proxy routing, nor the credentials a process asks
    for only where the proxy cannot make the staff check)."""
    problems = []
    composed = compose_env()
    deployment_wide = {d.name for d in DEPLOYMENT_SETTINGS}
    for name, deployment in of_kind(objects, "Deployment").items():
        p = BY_NAME.get(name)
        if p is None:
            continue
        if name not in composed:
            problems.append(f"{name}: runs in k8s but not in compose")
            continue
        mine = pod_env(objects, deployment)
        theirs = {k: v for k, v in composed[name].items() if not PROXY_VARIABLES.match(k) and k != p.auth_setting}
        for key in sorted(set(mine) ^ set(theirs)):
            side = "k8s" if key in mine else "compose"
            problems.append(f"{name}: {key} is set only in {side}")
        for key in sorted((set(mine) & set(theirs)) - deployment_wide):
            if mine[key] is not None and mine[key] != theirs[key]:
                problems.append(f"{name}: {key}={mine[key]} in k8s, {theirs[key]} in compose")
    return problems


# ------------------------------------------------------------ network policy ----
# The pods a NetworkPolicy is weighed against: ingress-nginx's controller and
# Prometheus as their usual charts label them, in their usual namespaces, and a pod of
# any other application. Namespaces carry only their automatic name label.
INGRESS_CONTROLLER = (
    "ingress-nginx",
    {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
)
PROMETHEUS = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
STRANGER = ("elsewhere", {"app.kubernetes.io/name": "something-else"})


def selects(selector: dict | None, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against labels."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def peer_admits(peer: dict, pod_ns: str, source: tuple[str, dict]) -> bool:
    ns, labels = source
    if "ipBlock" in peer:
        return True  # an address range: anyone in it, pods of the fleet included
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None and ns != pod_ns:
        return False  # a podSelector alone means the policy's own namespace
    if ns_sel is not None and not selects(ns_sel, {"kubernetes.io/metadata.name": ns}):
        return False
    return selects(peer.get("podSelector"), labels)


def admitted(objects: list[dict], pod_ns: str, pod_labels: dict, port_names: dict, source) -> set[str]:
    """The port names of a pod that `source` (namespace, labels) may connect to."""
    policies = [
        p
        for p in of_kind(objects, "NetworkPolicy").values()
        if "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) and selects(p["spec"]["podSelector"], pod_labels)
    ]
    if not policies:
        return set(port_names)  # not isolated: everyone reaches every port
    ports: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if peers and not any(peer_admits(peer, pod_ns, source) for peer in peers):
                continue
            rule_ports = rule.get("ports")
            if not rule_ports:
                ports |= set(port_names)
            for rp in rule_ports or []:
                ports |= {n for n, num in port_names.items() if rp.get("port") in (n, num)}
    return ports


def check_proxy_only(objects: list[dict]) -> list[str]:
    """A process whose server trusts the proxy's staff check (fleet.Process.proxy_only:
    Flower and its unauthenticated API) takes connections from ingress-nginx's controller
    and Prometheus only: no pod of the fleet, nor of anyone else, reaches any of its
    ports; and no Ingress path leads outside to a path the route table calls internal."""
    problems = []
    deployments = of_kind(objects, "Deployment")
    namespace = next((o["metadata"].get("namespace") for o in objects if o["metadata"].get("namespace")), "default")
    fleet_pods = [
        (name, d["spec"]["template"]["metadata"]["labels"]) for name, d in deployments.items() if name in BY_NAME
    ]
    for name, d in deployments.items():
        p = BY_NAME.get(name)
        if p is None or not p.proxy_only:
            continue
        labels = d["spec"]["template"]["metadata"]["labels"]
        ports = {
            port["name"]: port["containerPort"]
            for c in d["spec"]["template"]["spec"]["containers"]
            for port in c.get("ports", [])
        }
        for other, other_labels in fleet_pods:
            if other != name and admitted(objects, namespace, labels, ports, (namespace, other_labels)):
                problems.append(f"{name}: pods of {other} may connect to it (only the proxy and Prometheus may)")
        if admitted(objects, namespace, labels, ports, STRANGER):
            problems.append(f"{name}: a pod of any other application may connect to it")
        for who, source in (("ingress-nginx's controller", INGRESS_CONTROLLER), ("Prometheus", PROMETHEUS)):
            if "http" not in admitted(objects, namespace, labels, ports, source):
                problems.append(f"{name}: {who} may not connect to its http port")
    paths = [
        (path["path"], path["backend"]["service"]["name"])
        for ing in of_kind(objects, "Ingress").values()
        for rule in ing["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    services = of_kind(objects, "Service")
    for route in load_routes().http:
        for internal in getattr(route, "internal", ()):
            matching = [(prefix, svc) for prefix, svc in paths if (internal + "/").startswith(prefix.rstrip("/") + "/")]
            if not matching:
                continue
            _, svc = max(matching, key=lambda m: len(m[0]))
            selector = services.get(svc, {}).get("spec", {}).get("selector", {}).get("app.kubernetes.io/name")
            behind = BY_NAME.get(selector)
            if behind is not None and behind.serves == route.service:
                problems.append(f"Ingress: {internal} (internal in routes.toml) is routed to {svc} from outside")
    return problems


# ---------------------------------------------------------------------- hosts ----
def callers_hosts(objects: list[dict]) -> set[str]:
    """Every Host header the deployment's own callers send to the fleet's HTTP faces:
    SERVICE_URLS of each workload, the Ingresses' staff check (auth-url), the
    AlertmanagerConfig's webhooks."""
    hosts = set()
    for deployment in of_kind(objects, "Deployment").values():
        if deployment["metadata"]["name"] in BY_NAME:
            value = pod_env(objects, deployment).get("SERVICE_URLS") or setting_default("SERVICE_URLS")
            with contextlib.suppress(ValueError):  # check_urls reports it
                hosts |= {urlsplit(u).hostname or "" for u in service_urls(value).values()}
    for ingress in of_kind(objects, "Ingress").values():
        url = (ingress["metadata"].get("annotations") or {}).get("nginx.ingress.kubernetes.io/auth-url")
        if url:
            hosts.add(urlsplit(url).hostname or "")
    for am in of_kind(objects, "AlertmanagerConfig").values():
        for receiver in am["spec"].get("receivers", []):
            hosts |= {urlsplit(w["url"]).hostname or "" for w in receiver.get("webhookConfigs", [])}
    return hosts


def check_hosts(objects: list[dict]) -> list[str]:
    """ALLOWED_HOSTS is explicit (never `*`) on every fleet workload, and Django's own host
    check there accepts every Host the deployment's callers send: else those calls get
    400 (the prod overlay of 7 Dec allowed only its public host)."""
    from django.http.request import validate_host

    problems = []
    wanted = callers_hosts(objects)
    for name, deployment in of_kind(objects, "Deployment").items():
        p = BY_NAME.get(name)
        if p is None or not p.http:
            continue
        env = pod_env(objects, deployment)
        public = [h for h in (env.get("ALLOWED_HOSTS") or setting_default("ALLOWED_HOSTS")).split(",") if h]
        allowed = public + [h for h in (env.get("INTERNAL_HOSTS") or "").split(",") if h]
        if "*" in public:
            problems.append(f"{name}: ALLOWED_HOSTS is *")
        for host in sorted(wanted):
            if not validate_host(host, allowed):
                problems.append(f"{name}: Django refuses Host {host}, which this deployment's callers send")
    return problems


# Every rendering (base and overlays) is checked by these; the env comparison reads
# k8s/base only: an overlay adds its environment's own settings (prod's Sentinels).
CHECKS = (check_urls, check_storage, check_scaling, check_proxy_only, check_hosts)


def problems(objects: list[dict], *, env: bool = False) -> list[str]:
    return [p for check in CHECKS + ((check_env,) if env else ()) for p in check(objects)]


def main(argv: list[str]) -> int:
    """Check k8s/base (env too) and the given overlays (default: every one)."""
    overlays = argv or [str(p) for p in sorted((K8S / "overlays").iterdir()) if (p / "kustomization.yaml").exists()]
    found = []
    for path in [str(K8S / "base"), *overlays]:
        base = Path(path).resolve() == (K8S / "base").resolve()
        found += [f"{path}: {p}" for p in problems(render.build(Path(path)), env=base)]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
