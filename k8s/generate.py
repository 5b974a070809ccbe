"""Writes k8s/base/ from the fleet's two tables: deploy/launcher.py's SERVICES and
gateway/routes.toml. Nothing in k8s/base/ is edited by hand.

    python k8s/generate.py          # rewrite k8s/base/
    python k8s/generate.py --check  # exit 1 if k8s/base/ is stale (make k8s-check)

One process kind of the launcher = one Deployment: `<svc>-http` for each HTTP face
(ws-gateway is just `ws-gateway`), `<svc>-inbox` for inbox workers, and
`<svc>-<daemon>` for further daemons. Every pod exposes its metrics on port 9100
(named `metrics`) through a Service labelled for the ServiceMonitor, so a service
added to SERVICES shows up in Kubernetes and in Prometheus with one regeneration,
and k8s/tests fail until then.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "k8s" / "base"
sys.path.insert(0, str(ROOT / "deploy"))

from launcher import SERVICES, daphne_command  # noqa: E402
from switchboard.routes import MAX_BODY_BYTES  # noqa: E402


def _block_strings(dumper, value: str):
    # Multi-line strings (SQL, rule expressions) as YAML blocks, readable in review.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


yaml.SafeDumper.add_representer(str, _block_strings)

IMAGE = "switchboard"  # one image for every process; overlays pin its tag
HTTP_PORT = 8000
METRICS_PORT = 9100
PART_OF = {"app.kubernetes.io/part-of": "switchboard"}
# daphne closes sockets after 24 h by default; the Ingress allows one hour idle and
# the pings every 20 s keep a live socket far from it.
WS_TIMEOUT_SECONDS = 3600
# Long enough for the gateway's drain (close every socket with 4000, then exit).
GATEWAY_GRACE_SECONDS = 30
PRE_STOP_SECONDS = 5
# ingress-nginx calls this before a staff-only route (overlays set their namespace).
STAFF_CHECK_URL = "http://ws-gateway.switchboard.svc.cluster.local/api/auth/check-staff/"
# Daemons that scale with load (Celery workers); others are singletons or leased.
AUTOSCALED_DAEMONS = {"celery"}

SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

# Requests sized from the local fleet's idle RSS (~80 MiB per Django process) plus
# headroom; the gateway's limit leaves room for ~10k idle sockets at ~14 KiB each.
RESOURCES = {
    "http": {"requests": {"cpu": "100m", "memory": "160Mi"}, "limits": {"cpu": "1", "memory": "384Mi"}},
    "gateway": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    "worker": {"requests": {"cpu": "100m", "memory": "160Mi"}, "limits": {"cpu": "1", "memory": "384Mi"}},
}


def labels(workload: str, service: str, role: str) -> dict:
    return {
        "app.kubernetes.io/name": workload,
        "app.kubernetes.io/component": role,
        "switchboard.io/service": service,
        **PART_OF,
    }


def secret_env(name: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": "switchboard-secrets", "key": key}}}


def container(
    workload: str,
    service: str,
    settings: str,
    command: list[str],
    role: str,
    http: bool,
    health: str = "/healthz",
    ready: str = "/readyz",
    own_metrics: bool = True,
) -> dict:
    # own_metrics=False: a third-party server (Flower) with /metrics on its HTTP port.
    ports = [{"name": "metrics", "containerPort": METRICS_PORT}] if own_metrics else []
    if http:
        ports.insert(0, {"name": "http", "containerPort": HTTP_PORT})
    # Liveness asks only "does the process answer"; readiness on /readyz also asks
    # Redis, so a Redis outage takes pods out of rotation without restarting them.
    # Workers have no HTTP face: their metrics server's /healthz is their liveness.
    probe_port = "http" if http else "metrics"
    c = {
        "name": workload,
        "image": IMAGE,
        "command": command,
        "envFrom": [{"configMapRef": {"name": "switchboard-config"}}],
        "env": [
            # Secrets by key, not envFrom: each service gets only its own database.
            secret_env("SWITCHBOARD_SECRET_KEY", "secret-key"),
            secret_env("REDIS_URL", "redis-url"),
            secret_env("DATABASE_URL", f"database-url-{service}"),
            {"name": "DJANGO_SETTINGS_MODULE", "value": settings},
            {"name": "METRICS_PORT", "value": str(METRICS_PORT)},
            {"name": "METRICS_HOST", "value": "0.0.0.0"},
            {"name": "SERVICE_NAME", "value": workload},
        ],
        "ports": ports,
        "livenessProbe": {
            "httpGet": {"path": health, "port": probe_port},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": ready if http else health, "port": probe_port},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
        "startupProbe": {
            "httpGet": {"path": health, "port": probe_port},
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "resources": RESOURCES[role],
        "securityContext": SECURITY_CONTEXT,
        # read-only root: Python and Django only need a writable /tmp.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return c


def deployment(
    workload: str,
    service: str,
    role: str,
    c: dict,
    replicas: int,
    grace: int = 20,
    metrics_port: int = METRICS_PORT,
    metrics_path: str = "/metrics",
) -> dict:
    lab = labels(workload, service, role)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload, "labels": lab},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": workload}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": lab,
                    # For Prometheus setups without the operator (kubernetes_sd + relabel).
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(metrics_port),
                        "prometheus.io/path": metrics_path,
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "fsGroup": 10001},
                    "containers": [c],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def service(workload: str, service_name: str, role: str, http: bool, metrics_label: str = "true") -> dict:
    # metrics_label "true": /metrics on the metrics port; otherwise the name of a
    # ServiceMonitor endpoint with its own path (Flower: /flower/metrics on http).
    target = "metrics" if metrics_label == "true" else "http"
    ports = [{"name": "metrics", "port": METRICS_PORT, "targetPort": target}]
    if http:
        ports.insert(0, {"name": "http", "port": 80, "targetPort": "http"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": workload,
            "labels": {**labels(workload, service_name, role), "switchboard.io/metrics": metrics_label},
        },
        "spec": {"selector": {"app.kubernetes.io/name": workload}, "ports": ports},
    }


def hpa(workload: str, min_r: int, max_r: int) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": workload, "labels": PART_OF},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload},
            "minReplicas": min_r,
            "maxReplicas": max_r,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
            # Scale the gateway down slowly: each removed pod reconnects all its sockets.
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 600,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                }
            },
        },
    }


def pdb(workload: str) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": workload, "labels": PART_OF},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": workload}}},
    }


def workloads() -> list[dict]:
    """Every process of the fleet as (name, service, role, http, command, settings)."""
    out = []
    for svc in SERVICES:
        gateway = svc.name == "ws-gateway"
        out.append(
            {
                "name": svc.name if gateway else f"{svc.name}-http",
                "service": svc.name,
                "role": "gateway" if gateway else "http",
                "http": True,
                "command": daphne_command(svc.asgi, bind="0.0.0.0", port=HTTP_PORT),
                "settings": svc.settings,
                "replicas": 2 if gateway else 1,
                "autoscale": gateway,
            }
        )
        if svc.inbox:
            out.append(
                {
                    "name": f"{svc.name}-inbox",
                    "service": svc.name,
                    "role": "worker",
                    "http": False,
                    "command": ["python", "-m", "django", "inbox"],
                    "settings": svc.settings,
                    "replicas": 1,
                    "autoscale": True,
                }
            )
        for d in svc.daemons:
            w = {
                "name": f"{svc.name}-{d.name}",
                "service": svc.name,
                "role": "worker",
                "http": False,
                "command": ["python", "-m", "django", *d.command],
                "settings": svc.settings,
                "replicas": d.copies,
                "autoscale": d.name in AUTOSCALED_DAEMONS,
            }
            if d.serves:
                # A third-party HTTP server (Flower) routed under /<serves>/: its
                # health and metrics live under that prefix, on its HTTP port.
                prefix = route_prefix(d.serves)
                w |= {
                    "role": "http",
                    "http": True,
                    "serves": d.serves,
                    "health": prefix + "healthcheck",
                    "metrics_path": prefix + "metrics",
                    "env": {d.port_setting: str(HTTP_PORT)},
                }
            out.append(w)
    return out


def route_prefix(upstream: str) -> str:
    table = tomllib.loads((ROOT / "gateway" / "routes.toml").read_text())
    return next(r["prefix"] for r in table["http"] if r["service"] == upstream)


def workload_docs() -> list[dict]:
    docs = []
    for w in workloads():
        third_party = "serves" in w
        health = w.get("health", "/healthz")
        c = container(
            w["name"], w["service"], w["settings"], w["command"], w["role"], w["http"],
            health=health, ready="/readyz" if not third_party else health, own_metrics=not third_party,
        )  # fmt: skip
        for name, value in w.get("env", {}).items():
            c["env"].append({"name": name, "value": value})
        if third_party:
            c["env"] = [e for e in c["env"] if e["name"] != "METRICS_PORT"]
        grace = GATEWAY_GRACE_SECONDS if w["role"] == "gateway" else 20
        if w["role"] == "gateway":
            # The endpoint removal takes a few seconds to reach ingress-nginx: keep
            # serving until then, so no new socket lands on a pod that is draining.
            c["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
        metrics = (HTTP_PORT, w["metrics_path"]) if third_party else (METRICS_PORT, "/metrics")
        docs.append(deployment(w["name"], w["service"], w["role"], c, w["replicas"], grace, *metrics))
        docs.append(service(w["name"], w["service"], w["role"], w["http"], w.get("serves", "true")))
        if w["replicas"] > 1 or w["autoscale"]:
            docs.append(pdb(w["name"]))
        if w["autoscale"]:
            docs.append(hpa(w["name"], w["replicas"], 10 if w["role"] == "gateway" else 4))
    return docs


def service_monitors() -> list[dict]:
    """One ServiceMonitor for our own /metrics ports, one per third-party server."""
    endpoints = {"true": ("metrics", "/metrics")}
    for w in workloads():
        if "serves" in w:
            endpoints[w["serves"]] = ("metrics", w["metrics_path"])
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "switchboard" if value == "true" else f"switchboard-{value}", "labels": PART_OF},
            "spec": {
                "selector": {"matchLabels": {"switchboard.io/metrics": value}},
                "endpoints": [
                    {
                        "port": port,
                        "path": path,
                        "interval": "15s",
                        # The same labels as the local fleet's scrape config.
                        "relabelings": [
                            {
                                "sourceLabels": ["__meta_kubernetes_pod_label_switchboard_io_service"],
                                "targetLabel": "service",
                            },
                            {
                                "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                                "targetLabel": "job",
                            },
                            {"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "instance"},
                        ],
                    }
                ],
            },
        }
        for value, (port, path) in endpoints.items()
    ]


def ingress() -> list[dict]:
    """The route table's [[http]] prefixes, to the same services nginx routes them to;
    staff-only prefixes in a second Ingress that asks ws-gateway first, as nginx's
    auth_request does locally."""
    table = tomllib.loads((ROOT / "gateway" / "routes.toml").read_text())
    by_name = {w.get("serves", w["service"]): w["name"] for w in workloads() if w["http"]}
    common = {
        # WebSockets: ingress-nginx upgrades by itself; these keep idle sockets open
        # (its 60 s default would cut them between pings) and stream frames.
        "nginx.ingress.kubernetes.io/proxy-read-timeout": str(WS_TIMEOUT_SECONDS),
        "nginx.ingress.kubernetes.io/proxy-send-timeout": str(WS_TIMEOUT_SECONDS),
        "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-body-size": str(MAX_BODY_BYTES),  # as gateway/nginxconf.py
    }
    out = []
    for staff in (False, True):
        paths = [
            {
                "path": r["prefix"],
                "pathType": "Prefix",
                # Always the `http` port: metrics ports are never behind the Ingress.
                "backend": {"service": {"name": by_name[r["service"]], "port": {"name": "http"}}},
            }
            for r in table["http"]
            if bool(r.get("staff_only")) == staff
        ]
        if not paths:
            continue
        annotations = dict(common)
        if staff:
            annotations["nginx.ingress.kubernetes.io/auth-url"] = STAFF_CHECK_URL
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": "switchboard-staff" if staff else "switchboard",
                    "labels": PART_OF,
                    "annotations": annotations,
                },
                "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": paths}}]},
            }
        )
    return out


def network_policies() -> list[dict]:
    fleet = {"podSelector": {"matchLabels": PART_OF}}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny-ingress", "labels": PART_OF},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
        {
            # Only ingress-nginx reaches the HTTP ports; the fleet reaches them too
            # (services call each other's REST APIs).
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "http-from-ingress", "labels": PART_OF},
            "spec": {
                "podSelector": {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["gateway", "http"]}
                    ]
                },
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
                            fleet,
                        ],
                        "ports": [{"port": "http"}],
                    }
                ],
            },
        },
        {
            # Prometheus (in its own namespace) scrapes every pod's metrics port.
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "metrics-from-monitoring", "labels": PART_OF},
            "spec": {
                "podSelector": {"matchLabels": PART_OF},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                        "ports": [{"port": "metrics"}],
                    }
                ],
            },
        },
        {
            # Redis and PostgreSQL (dev's in-cluster ones) take connections from the fleet only.
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "datastores-from-fleet", "labels": PART_OF},
            "spec": {
                "podSelector": {"matchLabels": {"switchboard.io/datastore": "true"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [fleet]}],
            },
        },
    ]


def migrate_jobs() -> list[dict]:
    """One Job per service migrates its own database; apply it before the Deployments roll."""
    jobs = []
    for svc in SERVICES:
        c = container(
            f"migrate-{svc.name}",
            svc.name,
            svc.settings,
            ["python", "-m", "django", "migrate", "--noinput"],
            "worker",
            False,
        )
        for key in ("livenessProbe", "readinessProbe", "startupProbe", "ports"):
            c.pop(key)  # run to completion: nothing to probe or scrape
        c["env"] = [e for e in c["env"] if e["name"] not in ("METRICS_PORT", "METRICS_HOST")]
        jobs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": f"migrate-{svc.name}", "labels": PART_OF},
                "spec": {
                    "backoffLimit": 3,
                    "ttlSecondsAfterFinished": 3600,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": f"migrate-{svc.name}", **PART_OF}},
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            "securityContext": {"runAsNonRoot": True, "fsGroup": 10001},
                            "containers": [c],
                            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                        },
                    },
                },
            }
        )
    return jobs


def config_map() -> dict:
    # Only what differs from the code's defaults in a cluster; overlays patch the rest.
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "switchboard-config", "labels": PART_OF},
        "data": {
            "ALLOWED_HOSTS": "*",
            "ALLOWED_ORIGINS": "https://switchboard.example.com",
            "GATEWAY_URL": "http://ws-gateway",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "SWITCHBOARD_DATA_DIR": "/tmp/switchboard",
        },
    }


FILES = {
    "workloads.yaml": workload_docs,
    "ingress.yaml": ingress,
    "networkpolicies.yaml": network_policies,
    "migrate-jobs.yaml": migrate_jobs,
    "configmap.yaml": lambda: [config_map()],
}

HEADER = "# Generated by k8s/generate.py from deploy/launcher.py SERVICES and gateway/routes.toml. Do not edit.\n"


def prometheus_rule() -> dict:
    """deploy/prometheus/alerts.yml as a PrometheusRule: one set of rules everywhere."""
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "switchboard", "labels": PART_OF},
        "spec": {"groups": groups},
    }


def dev_secret() -> dict:
    """dev's throwaway Secret: one database per service on the in-cluster PostgreSQL."""
    data = {
        "secret-key": "dev-insecure-change-me",
        "redis-url": "redis://redis:6379/0",
        "postgres-password": "dev-postgres",
    }
    for svc in SERVICES:
        db = svc.name.replace("-", "_")
        data[f"database-url-{svc.name}"] = f"postgres://switchboard:dev-postgres@postgres:5432/{db}"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "switchboard-secrets", "labels": PART_OF},
        "type": "Opaque",
        "stringData": data,
    }


def dev_databases() -> dict:
    sql = "".join(f"CREATE DATABASE {svc.name.replace('-', '_')};\n" for svc in SERVICES)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "postgres-init"},
        "data": {"databases.sql": sql},
    }


def render() -> dict[str, str]:
    out = {name: HEADER + yaml.safe_dump_all(make(), sort_keys=False) for name, make in FILES.items()}
    out["kustomization.yaml"] = HEADER + yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": list(FILES),
        },
        sort_keys=False,
    )
    dev_header = (
        "# Generated by k8s/generate.py from deploy/launcher.py SERVICES. Example values only: never real secrets.\n"
    )
    out["../overlays/dev/secret.yaml"] = dev_header + yaml.safe_dump(dev_secret(), sort_keys=False)
    out["../overlays/dev/postgres-init.yaml"] = dev_header + yaml.safe_dump(dev_databases(), sort_keys=False)
    out["../components/monitoring/servicemonitor.yaml"] = HEADER + yaml.safe_dump_all(
        service_monitors(), sort_keys=False
    )
    out["../components/monitoring/prometheusrule.yaml"] = HEADER.replace(
        "SERVICES and gateway/routes.toml", "deploy/prometheus/alerts.yml"
    ) + yaml.safe_dump(prometheus_rule(), sort_keys=False)
    return out


def main() -> int:
    files = render()
    if "--check" in sys.argv:
        stale = [n for n, text in files.items() if not (BASE / n).exists() or (BASE / n).read_text() != text]
        if stale:
            print(f"k8s/base is stale ({', '.join(stale)}): run `make k8s-generate`", file=sys.stderr)
            return 1
        return 0
    BASE.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (BASE / name).resolve().write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
