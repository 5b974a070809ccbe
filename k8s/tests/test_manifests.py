"""What an operator relies on in k8s/: it renders, it validates against the Kubernetes
schemas, it runs every process the launcher runs, it routes exactly the route table,
and every container is probed, bounded and unprivileged."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import render
import yaml
from fleet import PROCESSES

from launcher import Fleet
from switchboard.config import SETTINGS
from switchboard.routes import load as load_routes
from ws_gateway.drain import DRAIN_SECONDS

K8S = Path(__file__).resolve().parents[1]
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
ROOT = K8S.parent
KUBE_VERSION = "1.32.0"  # oldest Kubernetes minor we support
# Custom resources of the Prometheus Operator: no schema in kubernetes-validate.
CRDS = {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}
SETTING_NAMES = {s.name for s in SETTINGS} | {"DJANGO_SETTINGS_MODULE"}


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def by_name(objects, kind):
    return {o["metadata"]["name"]: o for o in of_kind(objects, kind)}


def containers(objects):
    for o in objects:
        if o["kind"] in ("Deployment", "Job", "StatefulSet"):
            yield o, o["spec"]["template"]["spec"]


def test_base_is_generated_from_the_tables():
    """A process added to deploy/fleet.py or a route to routes.toml without
    `make k8s-generate` fails here."""
    result = subprocess.run([sys.executable, str(K8S / "generate.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_object_validates_against_the_kubernetes_schema(overlay):
    name, objects = overlay
    for obj in objects:
        if obj["kind"] in CRDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_custom_resources_are_well_formed(rendered):
    objects = rendered["prod"]
    monitor = by_name(objects, "ServiceMonitor")["switchboard"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("metrics", "/metrics")]
    # Every Service is picked up by exactly one ServiceMonitor.
    selectors = [
        m["spec"]["selector"]["matchLabels"]["switchboard.io/metrics"] for m in of_kind(objects, "ServiceMonitor")
    ]
    for svc in of_kind(objects, "Service"):
        value = svc["metadata"].get("labels", {}).get("switchboard.io/metrics")
        if svc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "switchboard":
            assert selectors.count(value) == 1, svc["metadata"]["name"]
    rules = by_name(objects, "PrometheusRule")["switchboard"]
    source = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rules["spec"]["groups"] == source["groups"]


@pytest.mark.skipif(not shutil.which("kubectl"), reason="no kubectl here to cross-check the renderer against")
@pytest.mark.parametrize("name", OVERLAYS)
def test_renderer_matches_real_kustomize(name):
    result = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / name)], capture_output=True, text=True)
    if result.returncode != 0 and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr

    def key(o):
        return (o["kind"], o["metadata"]["name"])

    theirs = sorted((d for d in yaml.safe_load_all(result.stdout) if d), key=key)
    mine = sorted(render.build(K8S / "overlays" / name), key=key)
    assert [key(o) for o in mine] == [key(o) for o in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert a == b, key(a)


def program_kind(name: str) -> str:
    """ws-gateway-1 -> ws-gateway, report-worker-flower-0 -> report-worker-flower."""
    head, _, tail = name.rpartition("-")
    return head if tail.isdigit() else name


def launcher_programs(tmp_path):
    fleet = Fleet(run_dir=tmp_path, ws_gateway_processes=2)
    fleet.plan()
    return [p for p in fleet.programs if p.service not in ("redis", "gateway")]


def test_every_launcher_process_runs_in_every_overlay(rendered, tmp_path):
    """One source of truth: each program of `make run` (from SERVICES) is a
    Deployment with the same command, scraped on its metrics port."""
    for p in launcher_programs(tmp_path):
        kind = program_kind(p.name)
        for overlay, objects in rendered.items():
            deployments = by_name(objects, "Deployment")
            assert kind in deployments, f"{overlay}: no Deployment for launcher program {p.name}"
            c = deployments[kind]["spec"]["template"]["spec"]["containers"][0]
            # Same program: the launcher's command minus its local interpreter and ports.
            assert c["command"][-1] == p.command[-1], (kind, c["command"], p.command)
            # daphne with the same options (pings, frame cap, proxy headers) as locally.
            launcher_flags = {
                (a, b) for a, b in zip(p.command, p.command[1:] + [""], strict=True) if a.startswith("--")
            }
            k8s_flags = {
                (a, b) for a, b in zip(c["command"], c["command"][1:] + [""], strict=True) if a.startswith("--")
            }
            assert k8s_flags == launcher_flags, (kind, k8s_flags ^ launcher_flags)
            if p.metrics_port:
                assert any(port["name"] == "metrics" for port in c["ports"])
                svc = by_name(objects, "Service")[kind]
                assert svc["metadata"]["labels"]["switchboard.io/metrics"] == "true"
            if p.http_port:
                assert any(port["name"] == "http" for port in c["ports"])
            if p.http_port and not p.metrics_port:  # a third-party server (Flower): /metrics on http
                svc = by_name(objects, "Service")[kind]
                value = svc["metadata"]["labels"]["switchboard.io/metrics"]
                monitors = {
                    m["spec"]["selector"]["matchLabels"]["switchboard.io/metrics"]
                    for m in of_kind(objects, "ServiceMonitor")
                }
                assert overlay == "dev" or value in monitors, (overlay, kind)


def test_ingress_paths_equal_the_route_table(overlay):
    name, objects = overlay
    ingresses = by_name(objects, "Ingress")
    deployments = by_name(objects, "Deployment")
    routed = []
    for ing in ingresses.values():
        assert ing["spec"]["ingressClassName"] == "nginx"
        ann = ing["metadata"]["annotations"]
        # Above daphne's 20 s ping interval by far: nginx's 60 s default would cut idle sockets.
        assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
        assert int(ann["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 600
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                assert p["pathType"] == "Prefix"
                # Only ever the http port: no metrics port is reachable from outside.
                assert p["backend"]["service"]["port"] == {"name": "http"}
                assert p["backend"]["service"]["name"] in deployments
                routed.append((p["path"], ing["metadata"]["name"]))
    expected = [(r.prefix, "switchboard-staff" if r.staff_only else "switchboard") for r in load_routes().http]
    # Internal paths (Flower's metrics): an Ingress of their own that refuses everyone.
    expected += [(path, "switchboard-internal") for r in load_routes().http for path in r.internal]
    assert sorted(routed) == sorted(expected)
    if "switchboard-internal" in ingresses:
        internal = ingresses["switchboard-internal"]
        ann = internal["metadata"]["annotations"]
        assert ann["nginx.ingress.kubernetes.io/denylist-source-range"] == "0.0.0.0/0,::/0"
        assert "nginx.ingress.kubernetes.io/auth-url" not in ann
        for p in internal["spec"]["rules"][0]["http"]["paths"]:
            # Not their server: were the deny ignored, ws-gateway has no such page (404).
            assert p["backend"]["service"]["name"] == "ws-gateway", p
    assert not any(path.startswith("/metrics") for path, _ in routed)
    if "switchboard-staff" in ingresses:
        url = ingresses["switchboard-staff"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"]
        namespace = ingresses["switchboard-staff"]["metadata"]["namespace"]
        assert url == f"http://ws-gateway.{namespace}.svc.cluster.local/api/auth/check-staff/"


def test_ingress_backends_are_the_services_nginx_uses(tmp_path):
    """The same upstream for each prefix as the local nginx (launcher program -> k8s workload)."""
    objects = render.build(K8S / "overlays" / "prod")
    backends = {
        p["path"]: p["backend"]["service"]["name"]
        for ing in of_kind(objects, "Ingress")
        for r in ing["spec"]["rules"]
        for p in r["http"]["paths"]
    }
    upstream_programs = {}
    for p in launcher_programs(tmp_path):
        if p.http_port:
            upstream_programs.setdefault(p.service, set()).add(program_kind(p.name))
    for r in load_routes().http:
        assert {backends[r.prefix]} == upstream_programs[r.service], r


def test_every_container_is_probed_bounded_and_unprivileged(overlay):
    name, objects = overlay
    for obj, pod in containers(objects):
        where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
        assert pod.get("automountServiceAccountToken") is False, where
        pod_sc = pod.get("securityContext", {})
        for c in pod["containers"]:
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert {"cpu", "memory"} <= set(res.get("limits", {})), where
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            if obj["kind"] == "Deployment":
                assert "livenessProbe" in c and "readinessProbe" in c, where
                ports = {p["name"] for p in c.get("ports", [])}
                for probe in ("livenessProbe", "readinessProbe"):
                    get = c[probe].get("httpGet")
                    if get:  # the health endpoints (ours, or Flower's under its prefix) on a declared port
                        assert get["path"].endswith(("/healthz", "/readyz", "/healthcheck")), where
                        assert get["port"] in ports, where


def test_http_faces_are_ready_only_with_redis(overlay):
    _, objects = overlay
    for d in of_kind(objects, "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        if c.get("command", [])[:3] == ["python", "-m", "daphne"]:  # our HTTP faces
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", d["metadata"]["name"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", d["metadata"]["name"]


def test_config_names_only_settings_that_exist(overlay):
    """A typo in a ConfigMap key is a setting silently left at its default."""
    name, objects = overlay
    for cm in of_kind(objects, "ConfigMap"):
        if cm["metadata"]["name"] == "switchboard-config":
            assert set(cm["data"]) <= SETTING_NAMES, set(cm["data"]) - SETTING_NAMES
    secrets = {s["metadata"]["name"]: s for s in of_kind(objects, "Secret")}
    example = yaml.safe_load((K8S / "overlays" / "prod" / "secret.example.yaml").read_text())
    if "switchboard-secrets" not in secrets:  # prod: created by the operator from the example
        secrets["switchboard-secrets"] = example
    for obj, pod in containers(objects):
        for c in pod["containers"]:
            if obj["metadata"]["labels"].get("app.kubernetes.io/part-of") != "switchboard":
                continue  # dev's postgres/redis: their own images' variables
            for env in c.get("env", []):
                assert env["name"] in SETTING_NAMES, (obj["metadata"]["name"], env["name"])
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):  # an optional key (shop-jwt-keys) may be absent
                    keys = secrets[ref["name"]].get("stringData", {}) | secrets[ref["name"]].get("data", {})
                    assert ref["key"] in keys, (name, obj["metadata"]["name"], ref)


def test_gateway_and_workers_scale_and_survive_disruption(rendered):
    for name, objects in rendered.items():
        hpas = by_name(objects, "HorizontalPodAutoscaler")
        pdbs = by_name(objects, "PodDisruptionBudget")
        assert "ws-gateway" in hpas and "ws-gateway" in pdbs, name
        # An autoscaler on each process kind the fleet autoscales, and on nothing else.
        assert set(hpas) == {p.name for p in PROCESSES if p.autoscaled}, name
    prod = by_name(rendered["prod"], "Deployment")
    assert prod["ws-gateway"]["spec"]["replicas"] >= 3
    assert by_name(rendered["prod"], "HorizontalPodAutoscaler")["ws-gateway"]["spec"]["minReplicas"] >= 3
    assert by_name(rendered["dev"], "Deployment")["ws-gateway"]["spec"]["replicas"] == 1


def test_gateway_grace_period_covers_the_drain(overlay):
    _, objects = overlay
    spec = by_name(objects, "Deployment")["ws-gateway"]["spec"]["template"]["spec"]
    # preStop waits for the endpoint removal to reach ingress-nginx, then SIGTERM drains.
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] > pre_stop + DRAIN_SECONDS + 5


def test_network_policies_fence_the_fleet(overlay):
    name, objects = overlay
    pols = by_name(objects, "NetworkPolicy")
    assert pols["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    http = pols["http-from-ingress"]["spec"]
    sources = http["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in sources
    assert all("namespaceSelector" not in s or "ingress-nginx" in str(s) for s in sources)
    stores = pols["datastores-from-fleet"]["spec"]
    assert stores["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "switchboard"}}}]}
    ]
    if name == "dev":
        for store in ("redis", "postgres"):
            labels = by_name(objects, "Deployment")[store]["spec"]["template"]["metadata"]["labels"]
            assert labels["switchboard.io/datastore"] == "true"
            assert labels["app.kubernetes.io/part-of"] != "switchboard"  # not admitted as "fleet"


def test_prod_reaches_redis_through_sentinel_and_dev_through_one_url(rendered, monkeypatch):
    """The settings each overlay gives the pods, read by redisconn as a pod would:
    prod's channel layers and Celery go through Sentinel, dev's to its one Redis."""
    from switchboard import redisconn

    secrets = {
        "dev": by_name(rendered["dev"], "Secret")["switchboard-secrets"]["stringData"],
        "prod": yaml.safe_load((K8S / "overlays" / "prod" / "secret.example.yaml").read_text())["stringData"],
    }
    for name in ("dev", "prod"):
        config = by_name(rendered[name], "ConfigMap")["switchboard-config"]["data"]
        for setting in ("REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "CHANNEL_LAYER_URLS"):
            monkeypatch.delenv(setting, raising=False)
        for key, value in config.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("REDIS_URL", secrets[name]["redis-url"])
        hosts = redisconn.layer_hosts()
        broker, options = redisconn.celery_broker()
        if name == "prod":
            assert [h["master_name"] for h in hosts] == ["switchboard"]
            assert len(hosts[0]["sentinels"]) == 3 and hosts[0]["password"] == "CHANGE-ME"
            assert broker.count("sentinel://") == 3 and options["master_name"] == "switchboard"
        else:
            assert hosts == [secrets["dev"]["redis-url"]] and broker == secrets["dev"]["redis-url"]


def test_every_process_gets_its_secrets_from_the_secret_and_prod_refuses_placeholders(rendered):
    """Django's key and the token keys come from the Secret (never the ConfigMap, never the
    code's default); prod runs with SWITCHBOARD_DEBUG=0, so its example's placeholders and
    any real key under 32 characters stop a process at start (settings_base)."""
    from switchboard.settings_base import insecure_secrets

    for name, objects in rendered.items():
        config = by_name(objects, "ConfigMap")["switchboard-config"]["data"]
        assert "SWITCHBOARD_SECRET_KEY" not in config and "SWITCHBOARD_JWT_KEYS" not in config
        for obj, pod in containers(objects):
            if obj["metadata"]["labels"].get("app.kubernetes.io/part-of") != "switchboard":
                continue
            for c in pod["containers"]:
                refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") for e in c.get("env", [])}
                assert refs.get("SWITCHBOARD_SECRET_KEY") == "secret-key", (name, obj["metadata"]["name"])
                assert refs.get("SWITCHBOARD_JWT_KEYS") == "jwt-keys", (name, obj["metadata"]["name"])
    prod = by_name(rendered["prod"], "ConfigMap")["switchboard-config"]["data"]
    assert prod.get("SWITCHBOARD_DEBUG", "0") == "0"
    example = yaml.safe_load((K8S / "overlays" / "prod" / "secret.example.yaml").read_text())["stringData"]
    assert insecure_secrets(example["secret-key"], example["jwt-keys"])


def test_the_ingress_never_logs_a_query_string(rendered):
    """ingress-nginx's default log format writes $request, ?token= included: every Ingress
    of Switchboard turns its access log off (the format is the controller's, not ours)."""
    for name, objects in rendered.items():
        ingresses = of_kind(objects, "Ingress")
        assert ingresses
        for ing in ingresses:
            notes = ing["metadata"].get("annotations", {})
            assert notes.get("nginx.ingress.kubernetes.io/enable-access-log") == "false", (
                name,
                ing["metadata"]["name"],
            )


def test_prod_behind_tls_sends_cookies_over_https_only(rendered):
    """prod is reached through the Ingress over TLS: its session and CSRF cookies are Secure
    (SECURE_COOKIES=1); dev keeps the code's default (plain http works)."""
    from switchboard.config import validate

    def secure(name: str) -> bool:
        value = by_name(rendered[name], "ConfigMap")["switchboard-config"]["data"]["SECURE_COOKIES"]
        return validate({"SECURE_COOKIES": value})["SECURE_COOKIES"]

    assert secure("prod") is True and secure("dev") is False


def test_every_workload_passes_the_settings_check_it_runs_at_start(rendered):
    """Every process runs switchboard.config.validate() on its environment as it starts and
    refuses to start on a value that does not parse: each workload's ConfigMap and plain env
    must pass it (values from the Secret are not here)."""
    from switchboard.config import SettingsError, validate

    for name, objects in rendered.items():
        maps = by_name(objects, "ConfigMap")
        for obj, pod in containers(objects):
            if obj["metadata"]["labels"].get("app.kubernetes.io/part-of") != "switchboard":
                continue
            for c in pod["containers"]:
                env = {}
                for source in c.get("envFrom", []):
                    env.update(maps.get(source.get("configMapRef", {}).get("name"), {}).get("data", {}))
                env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
                try:
                    validate(env)
                except SettingsError as exc:
                    pytest.fail(f"{name}/{obj['metadata']['name']} would refuse to start: {exc}")
