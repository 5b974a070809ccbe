"""Writes k8s/base/ from the fleet's two tables: deploy/fleet.py and gateway/routes.toml
(read through switchboard.routes). Nothing in k8s/base/ is edited by hand.

    python k8s/generate.py          # rewrite k8s/base/
    python k8s/generate.py --check  # exit 1 if k8s/base/ is stale (make k8s-check)

One fleet.Process = one Deployment of the same name, with its command, probes,
replicas, environment and (where it may) autoscaler from there. Every pod exposes its
metrics (named port `metrics`, or Flower's under its prefix) through a Service
labelled for the ServiceMonitor, so a process added to the fleet shows up in
Kubernetes and in Prometheus with one regeneration, and k8s/tests fail until then.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "k8s" / "base"
sys.path.insert(0, str(ROOT / "deploy"))

import fleet  # noqa: E402
from fleet import ALERT_WEBHOOK_ROUTE, HTTP_PORT, METRICS_PORT, PROCESSES, SERVICES, Process, Role, serving  # noqa: E402

from switchboard.routes import MAX_BODY_BYTES, PROXY_IDLE_TIMEOUT_SECONDS  # noqa: E402
from switchboard.routes import load as load_routes  # noqa: E402


def _block_strings(dumper, value: str):
    # Multi-line strings (SQL, rule expressions) as YAML blocks, readable in review.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


yaml.SafeDumper.add_representer(str, _block_strings)

IMAGE = "switchboard"  # one image for every process; overlays pin its tag
PART_OF = {"app.kubernetes.io/part-of": "switchboard"}
# Long enough for the gateway's drain (close every socket with 4000, then exit).
GATEWAY_GRACE_SECONDS = 30
PRE_STOP_SECONDS = 5
# ingress-nginx calls this before a staff-only route (overlays set their namespace).
STAFF_CHECK_URL = "http://ws-gateway.switchboard.svc.cluster.local/api/auth/check-staff/"


def service_urls() -> str:
    """SERVICE_URLS for the cluster: each routes.toml service with an HTTP face, at the
    Service of the process that serves it (there is no proxy inside the cluster; the
    Ingress is the way in from outside)."""
    pairs = []
    for owner in load_routes().services():
        process = next((p for p in PROCESSES if p.serves == owner and p.role in (Role.GATEWAY, Role.HTTP)), None)
        if process is not None:
            pairs.append(f"{owner}=http://{process.name}")
    return ",".join(pairs)


def internal_hosts(namespace: str) -> str:
    """INTERNAL_HOSTS in a namespace: the Services the fleet calls each other at, and the
    namespaced names callers from other namespaces send as Host: ingress-nginx's staff
    check (auth-url) and Alertmanager's webhook (monitoring)."""
    staff = urlsplit(STAFF_CHECK_URL).hostname.replace(".switchboard.", f".{namespace}.", 1)
    webhook = urlsplit(fleet.alert_webhook_url(f".{namespace}.svc")).hostname
    return ",".join([*fleet.internal_hosts(), staff, webhook])


# Each deployment-wide setting (fleet.DEPLOYMENT_SETTINGS) that is not a secret, as the
# base ConfigMap gives it: only what differs from the code's defaults in a cluster, and
# what compose sets too; overlays patch the rest.
CONFIG_VALUES = {
    # The public host; the cluster's own names (Services, the staff check) are INTERNAL_HOSTS.
    "ALLOWED_HOSTS": "switchboard.example.com",
    "INTERNAL_HOSTS": internal_hosts("switchboard"),
    "ALLOWED_ORIGINS": "https://switchboard.example.com",
    # The overlay behind TLS (prod) turns it on; dev may be reached over plain http.
    "SECURE_COOKIES": "0",
    "SERVICE_URLS": service_urls(),
    # Shop tokens off; an overlay sets a JWKS URL (or mounts a file) and the audience/issuer.
    "SHOP_JWKS": "",
    "SHOP_JWT_AUDIENCE": "",
    "SHOP_JWT_ISSUER": "",
    "INBOX_SHARDS": "4",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
    "SWITCHBOARD_DATA_DIR": "/tmp/switchboard",
    # ingress-nginx's pod address: its X-Real-IP names the client.
    "TRUSTED_PROXIES": "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16",
}

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


# The label of pods only the ingress controller and Prometheus may connect to
# (fleet.Process.proxy_only: Flower, whose API trusts the proxy's staff check).
PROXY_ONLY = "switchboard.io/proxy-only"
# Who those are, as ingress-nginx's and the Prometheus Operator's charts label their pods
# (an overlay whose controller or Prometheus is labelled otherwise patches the policy).
INGRESS_CONTROLLER_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
    "podSelector": {
        "matchLabels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    },
}
PROMETHEUS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def labels(workload: str, service: str, role: str) -> dict:
    out = {
        "app.kubernetes.io/name": workload,
        "app.kubernetes.io/component": role,
        "switchboard.io/service": service,
        **PART_OF,
    }
    if workload in {p.name for p in PROCESSES if p.proxy_only}:
        out[PROXY_ONLY] = "true"
    return out


def secret_env(name: str, key: str, optional: bool = False) -> dict:
    ref = {"name": "switchboard-secrets", "key": key, **({"optional": True} if optional else {})}
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def deployment_env(service: str) -> list[dict]:
    """The deployment-wide settings that are secrets, by key, not envFrom: each service
    gets only its own database."""
    return [
        secret_env(d.name, f"{d.secret}-{service}" if d.per_service else d.secret, d.optional)
        for d in fleet.DEPLOYMENT_SETTINGS
        if d.secret
    ]


def service_secret_env(p: Process) -> list[dict]:
    """The secrets only the process's service reads (fleet.Service.secrets), optional:
    a Secret without the key leaves the feature it guards off, as compose does."""
    return [secret_env(name, key, optional=True) for name, key in p.service.secrets]


def probe(p: Process, which: str, **timing) -> dict:
    spec = p.liveness if which == "liveness" else p.readiness
    return {"httpGet": {"path": spec.path, "port": spec.port}, **timing}


def container(p: Process) -> dict:
    ports = [{"name": "metrics", "containerPort": METRICS_PORT}] if p.own_metrics else []
    if p.http:
        ports.insert(0, {"name": "http", "containerPort": HTTP_PORT})
    return {
        "name": p.name,
        "image": IMAGE,
        "command": p.command(),
        "envFrom": [{"configMapRef": {"name": "switchboard-config"}}],
        "env": deployment_env(p.service.name)
        + service_secret_env(p)
        + [{"name": k, "value": v} for k, v in p.container_env().items()],
        "ports": ports,
        "livenessProbe": probe(p, "liveness", periodSeconds=10, timeoutSeconds=3, failureThreshold=3),
        "readinessProbe": probe(p, "readiness", periodSeconds=5, timeoutSeconds=3, failureThreshold=2),
        "startupProbe": probe(p, "liveness", periodSeconds=2, failureThreshold=30),
        "resources": RESOURCES["worker" if p.role == Role.WORKER else str(p.role)],
        "securityContext": SECURITY_CONTEXT,
        # read-only root: Python and Django only need a writable /tmp.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


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


def workload_docs() -> list[dict]:
    docs = []
    for p in PROCESSES:
        c = container(p)
        grace = 20
        if p.role == Role.GATEWAY:
            grace = GATEWAY_GRACE_SECONDS
            # The endpoint removal takes a few seconds to reach ingress-nginx: keep
            # serving until then, so no new socket lands on a pod that is draining.
            c["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
        port_name, path = p.metrics
        metrics_port = {"http": HTTP_PORT, "metrics": METRICS_PORT}[port_name]
        docs.append(deployment(p.name, p.service.name, str(p.role), c, p.replicas, grace, metrics_port, path))
        docs.append(service(p.name, p.service.name, str(p.role), p.http, "true" if p.own_metrics else p.serves))
        if p.replicas > 1 or p.autoscaled:
            docs.append(pdb(p.name))
        if p.autoscaled:
            docs.append(hpa(p.name, p.replicas, p.autoscale_max))
    return docs


def service_monitors() -> list[dict]:
    """One ServiceMonitor for our own /metrics ports, one per third-party server."""
    endpoints = {"true": ("metrics", "/metrics")}
    for p in PROCESSES:
        if not p.own_metrics:
            endpoints[p.serves] = ("metrics", p.metrics[1])
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
    by_name = {p.serves: p.name for p in PROCESSES if p.http}
    common = {
        # WebSockets: ingress-nginx upgrades by itself; these keep idle sockets open
        # (its 60 s default would cut them between pings) and stream frames.
        "nginx.ingress.kubernetes.io/proxy-read-timeout": str(PROXY_IDLE_TIMEOUT_SECONDS),
        "nginx.ingress.kubernetes.io/proxy-send-timeout": str(PROXY_IDLE_TIMEOUT_SECONDS),
        "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-body-size": str(MAX_BODY_BYTES),  # as gateway/nginxconf.py
        # ingress-nginx's default log line is $request, query string (?token=) included,
        # and its format is the controller's, not ours: no access log for these paths.
        # (Where you own the controller: log-format-upstream without $request/$args.)
        "nginx.ingress.kubernetes.io/enable-access-log": "false",
    }
    out = []
    for staff in (False, True):
        paths = [
            {
                "path": r.prefix,
                "pathType": "Prefix",
                # Always the `http` port: metrics ports are never behind the Ingress.
                "backend": {"service": {"name": by_name[r.service], "port": {"name": "http"}}},
            }
            for r in load_routes().http
            if r.staff_only == staff
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
    # The route table's internal paths (Flower's metrics and health check), refused to
    # everyone: the controller denies every address, and the backend is not their server
    # but the owner of "/" (ws-gateway, which has no such page: 404), so a controller that
    # ignored the annotation would still not reach Flower. Longest prefix wins over /flower/.
    root = by_name[load_routes().route_of("/").service]
    internal = [
        {"path": path, "pathType": "Prefix", "backend": {"service": {"name": root, "port": {"name": "http"}}}}
        for r in load_routes().http
        for path in r.internal
    ]
    if internal:
        annotations = dict(common) | {"nginx.ingress.kubernetes.io/denylist-source-range": "0.0.0.0/0,::/0"}
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "switchboard-internal", "labels": PART_OF, "annotations": annotations},
                "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": internal}}]},
            }
        )
    return out


def network_policy(name: str, pods: dict, ingress: list[dict] | None = None) -> dict:
    """A NetworkPolicy of the fleet: the pods `pods` selects admit only `ingress`
    (a list of {"from": [...], "ports": [...]}; None: nothing)."""
    spec: dict = {"podSelector": pods, "policyTypes": ["Ingress"]}
    if ingress is not None:
        spec["ingress"] = ingress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": PART_OF},
        "spec": spec,
    }


def network_policies() -> list[dict]:
    fleet = {"podSelector": {"matchLabels": PART_OF}}
    ingress_nginx = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    return [
        network_policy("default-deny-ingress", {}),
        # Only ingress-nginx reaches the HTTP ports; the fleet reaches them too
        # (services call each other's REST APIs).
        network_policy(
            "http-from-ingress",
            {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/component", "operator": "In", "values": ["gateway", "http"]},
                    # Not Flower: the fleet must not reach it (proxy-only-from-ingress).
                    {"key": PROXY_ONLY, "operator": "DoesNotExist"},
                ]
            },
            [{"from": [ingress_nginx, fleet], "ports": [{"port": "http"}]}],
        ),
        # A process whose server trusts the proxy's staff check (Flower's API answers
        # anyone who reaches it): ingress-nginx's controller, and Prometheus for its
        # metrics (on the http port), only. No pod of the fleet.
        network_policy(
            "proxy-only-from-ingress",
            {"matchLabels": {PROXY_ONLY: "true"}},
            [
                {"from": [INGRESS_CONTROLLER_PEER], "ports": [{"port": "http"}]},
                {"from": [PROMETHEUS_PEER], "ports": [{"port": "http"}]},
            ],
        ),
        # Prometheus (in its own namespace) scrapes every pod's metrics port.
        network_policy(
            "metrics-from-monitoring",
            {"matchLabels": PART_OF},
            [{"from": [monitoring], "ports": [{"port": "metrics"}]}],
        ),
        # Alertmanager (in `monitoring`) delivers alerts to the dashboard's webhook.
        network_policy(
            "alerts-from-monitoring",
            {"matchLabels": {"app.kubernetes.io/name": serving(ALERT_WEBHOOK_ROUTE[0]).name}},
            [{"from": [monitoring], "ports": [{"port": "http"}]}],
        ),
        # Redis and PostgreSQL (dev's in-cluster ones) take connections from the fleet only.
        network_policy(
            "datastores-from-fleet", {"matchLabels": {"switchboard.io/datastore": "true"}}, [{"from": [fleet]}]
        ),
    ]


def migrate_jobs() -> list[dict]:
    """One Job per service migrates its own database; apply it before the Deployments roll."""
    jobs = []
    for svc in SERVICES:
        c = {
            "name": f"migrate-{svc.name}",
            "image": IMAGE,
            "command": ["python", "-m", "django", "migrate", "--noinput"],
            "envFrom": [{"configMapRef": {"name": "switchboard-config"}}],
            "env": deployment_env(svc.name)
            + [
                {"name": "DJANGO_SETTINGS_MODULE", "value": svc.settings},
                {"name": "SERVICE_NAME", "value": f"{svc.name}-migrate"},
            ],
            "resources": RESOURCES["worker"],
            "securityContext": SECURITY_CONTEXT,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
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
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "switchboard-config", "labels": PART_OF},
        "data": {d.name: CONFIG_VALUES[d.name] for d in fleet.DEPLOYMENT_SETTINGS if not d.secret},
    }


FILES = {
    "workloads.yaml": workload_docs,
    "ingress.yaml": ingress,
    "networkpolicies.yaml": network_policies,
    "migrate-jobs.yaml": migrate_jobs,
    "configmap.yaml": lambda: [config_map()],
}

HEADER = "# Generated by k8s/generate.py from deploy/fleet.py and gateway/routes.toml. Do not edit.\n"


def prometheus_rule() -> dict:
    """deploy/prometheus/alerts.yml as a PrometheusRule: one set of rules everywhere."""
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "switchboard", "labels": PART_OF},
        "spec": {"groups": groups},
    }


# The namespace the prod overlay (the one that includes components/monitoring) runs in:
# Alertmanager runs in `monitoring`, so it needs the dashboard's namespaced name.
MONITORED_NAMESPACE = "switchboard"


def alertmanager_config() -> dict:
    """Every alert to the staff dashboard's webhook, as compose's alertmanager.yml routes
    them (deploy/composegen.py), for the Prometheus Operator's Alertmanager."""
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {"name": "switchboard-dashboard", "labels": PART_OF},
        "spec": {
            "route": {
                "receiver": "switchboard-dashboard",
                "groupBy": ["alertname", "service"],
                "groupWait": "10s",
                "groupInterval": "1m",
                "repeatInterval": "4h",
            },
            "receivers": [
                {
                    "name": "switchboard-dashboard",
                    "webhookConfigs": [
                        {
                            "url": fleet.alert_webhook_url(f".{MONITORED_NAMESPACE}.svc"),
                            "sendResolved": True,
                            "httpConfig": {
                                "authorization": {
                                    "type": "Bearer",
                                    "credentials": {"name": "switchboard-secrets", "key": "alert-webhook-secret"},
                                }
                            },
                        }
                    ],
                }
            ],
        },
    }


def dev_secret() -> dict:
    """dev's throwaway Secret: one database per service on the in-cluster PostgreSQL."""
    data = {
        # Placeholders a process refuses unless SWITCHBOARD_DEBUG=1 (dev's dev-config.yaml).
        "secret-key": "dev-insecure-change-me",
        "jwt-keys": "dev:dev-insecure-change-me",
        "alert-webhook-secret": "dev-insecure-change-me-alerts",
        "redis-url": "redis://redis:6379/0",
        "postgres-password": "dev-postgres",
    }
    for svc in SERVICES:
        data[f"database-url-{svc.name}"] = f"postgres://switchboard:dev-postgres@postgres:5432/{svc.db_name}"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "switchboard-secrets", "labels": PART_OF},
        "type": "Opaque",
        "stringData": data,
    }


def dev_databases() -> dict:
    sql = "".join(f"CREATE DATABASE {svc.db_name};\n" for svc in SERVICES)
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
    dev_header = "# Generated by k8s/generate.py from deploy/fleet.py. Example values only: never real secrets.\n"
    out["../overlays/dev/secret.yaml"] = dev_header + yaml.safe_dump(dev_secret(), sort_keys=False)
    # dev's namespace differs, and with it the staff check's host (staff-auth.yaml).
    out["../overlays/dev/internal-hosts.yaml"] = dev_header + yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "switchboard-config"},
            "data": {"INTERNAL_HOSTS": internal_hosts("switchboard-dev")},
        },
        sort_keys=False,
    )
    out["../overlays/dev/postgres-init.yaml"] = dev_header + yaml.safe_dump(dev_databases(), sort_keys=False)
    out["../components/monitoring/servicemonitor.yaml"] = HEADER + yaml.safe_dump_all(
        service_monitors(), sort_keys=False
    )
    out["../components/monitoring/alertmanagerconfig.yaml"] = HEADER + yaml.safe_dump(
        alertmanager_config(), sort_keys=False
    )
    out["../components/monitoring/prometheusrule.yaml"] = HEADER.replace(
        "deploy/fleet.py and gateway/routes.toml", "deploy/prometheus/alerts.yml"
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
