"""compose.yaml agrees with the fleet's two sources of truth, without Docker.

deploy/fleet.py and gateway/routes.toml make compose.yaml (by
deploy/composegen.py) and the stand-in gateway's nginx config. These tests fail when
compose.yaml is stale or hand-edited, when a route would reach a different service
through nginx-proxy (VIRTUAL_PATH) than through the generated nginx config, and when
.env.example leaves a variable of compose.yaml undocumented.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import composegen
import pytest
import yaml
from fleet import PROCESSES, SERVICES

from switchboard.routes import load as load_routes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


def compose_services() -> dict[str, str]:
    """Service name -> its block of compose.yaml (the file is generated, so regular)."""
    text = COMPOSE.read_text()
    body = text.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    blocks = re.split(r"^  (?=[a-z][\w-]*:$)", body, flags=re.M)
    return {b.split(":", 1)[0]: b for b in blocks if b.strip()}


def virtual_paths() -> dict[str, str]:
    """VIRTUAL_PATH (and VIRTUAL_HOST_MULTIPORTS paths) -> the compose service declaring it."""
    paths = {}
    for name, block in compose_services().items():
        for p in re.findall(r"^      VIRTUAL_PATH: (\S+)$", block, flags=re.M):
            paths[p] = name
        for p in re.findall(r'^          "(/[^"]*)":$', block, flags=re.M):
            paths[p] = name
    return paths


def nginx_locations() -> dict[str, str]:
    """location prefix -> service, from the stand-in gateway's generated config."""
    conf = composegen.nginx_conf(Path("/var/lib/switchboard-gateway"))
    found = re.findall(r"location (/\S*) \{\n\s+(?:auth_request \S+;\n\s+)?proxy_pass http://up_(\w+);", conf)
    return {prefix: upstream.replace("_", "-") for prefix, upstream in found}


def test_compose_yaml_is_generated_from_the_table_and_routes():
    assert COMPOSE.read_text() == composegen.compose(), "compose.yaml is stale: run `make compose-yaml`"


def test_prometheus_config_is_generated_too():
    assert (ROOT / "deploy/compose/prometheus.yml").read_text() == composegen.prometheus()
    assert (ROOT / "deploy/compose/alertmanager.yml").read_text() == composegen.alertmanager()


def test_compose_prometheus_loads_the_rules_and_labels_every_target_with_its_service():
    """The rules match `up{service!=""}` and join on `service`: a target without the label
    never alerts. The rules file is the one deploy/prometheus holds, mounted as listed."""
    config = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    mounts = yaml.safe_load(COMPOSE.read_text())["services"]["prometheus"]["volumes"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert any(m.endswith("deploy/prometheus/alerts.yml}:/etc/prometheus/alerts.yml:ro") for m in mounts)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {p.name for p in PROCESSES}
    for p in PROCESSES:
        labels = {r["target_label"]: r["replacement"] for r in jobs[p.name].get("relabel_configs", [])}
        assert labels.get("service") == p.service.name, p.name


def test_alerts_reach_the_dashboard_webhook_with_its_secret():
    """Prometheus sends to the compose service Alertmanager runs as, and Alertmanager to
    a route of the dashboard with ALERT_WEBHOOK_SECRET, which the dashboard gets too."""
    config = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    target = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert target.split(":")[0] in services
    am = yaml.safe_load((ROOT / "deploy/compose/alertmanager.yml").read_text())
    hook = am["receivers"][0]["webhook_configs"][0]
    host, path = hook["url"].removeprefix("http://").split("/", 1)
    assert host.split(":")[0] == "dashboard-http" and host.split(":")[0] in services
    assert next(r for r in load_routes().http if ("/" + path).startswith(r.prefix)).service == "dashboard"
    assert hook["http_config"]["authorization"]["credentials_file"] in " ".join(services["alertmanager"]["entrypoint"])
    for name in ("dashboard-http", "alertmanager"):
        assert "ALERT_WEBHOOK_SECRET" in services[name]["environment"], name


def route_service_of(compose_service: str) -> str:
    """The routes.toml service a compose service (a fleet process) serves."""
    return next(p.serves for p in PROCESSES if p.name == compose_service)


@pytest.mark.parametrize("route", load_routes().http, ids=lambda r: r.prefix)
def test_each_route_reaches_the_same_service_through_nginx_proxy_and_the_generated_config(route):
    paths = virtual_paths()
    assert nginx_locations()[route.prefix] == route.service
    guarded = composegen.self_guarded()
    if route.staff_only and route.service not in guarded:
        # nginx-proxy cannot ask ws-gateway whether the user is staff: never public there.
        assert route.prefix not in paths
        return
    if route.staff_only:
        # Routed only because its server asks for credentials, which compose requires.
        var = guarded[route.service]
        assert f"      {var}: ${{{var}:?" in compose_services()[paths[route.prefix]]
    # nginx-proxy makes one location per VIRTUAL_PATH; nginx picks the longest prefix.
    via_proxy = paths[max((p for p in paths if route.prefix.startswith(p)), key=len)]
    assert route_service_of(via_proxy) == route.service


def test_every_virtual_path_is_a_route_of_the_table():
    prefixes = {r.prefix: r.service for r in load_routes().http}
    for path, service in virtual_paths().items():
        assert prefixes.get(path) == route_service_of(service), f"{service}: VIRTUAL_PATH {path} not in routes.toml"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_every_service_of_the_table_runs_its_processes_in_compose(svc):
    names = compose_services()
    expected = [f"{svc.name}-migrate"] + [p.name for p in PROCESSES if p.service == svc]
    assert len(expected) >= 2
    for name in expected:
        assert name in names, f"compose.yaml lacks {name}"
        assert f"DJANGO_SETTINGS_MODULE: {svc.settings}" in names[name]
        assert f"@postgres:5432/{svc.db_name}\n" in names[name]
    for p in PROCESSES:
        if p.service == svc:
            assert "healthcheck:" in names[p.name] and "condition: service_healthy" in names[p.name]
    assert svc.db_name in names["postgres"].split("SWITCHBOARD_DATABASES: ")[1].split("\n")[0].split(",")


def test_no_compose_service_outside_the_table():
    known = {"proxy", "redis", "postgres", "prometheus", "alertmanager", "grafana"} | {p.name for p in PROCESSES}
    known |= {f"{svc.name}-migrate" for svc in SERVICES}
    assert set(compose_services()) <= known


def test_env_example_documents_every_variable_compose_reads():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    documented = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), flags=re.M))
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"


def test_only_the_gateway_publishes_a_port_and_on_loopback_by_default():
    published = {n: b for n, b in compose_services().items() if "    ports:" in b}
    assert set(published) <= {"proxy", "prometheus", "grafana"}
    assert '"${GATEWAY_BIND:-127.0.0.1}:' in published["proxy"]


def test_the_stand_in_gateway_guards_flower_as_nginx_proxy_does():
    """The local run's stand-in routes a self-guarded staff route as nginx-proxy would:
    straight to the server, whose own credentials are the check; the other staff-only
    routes keep ws-gateway's staff check."""
    conf = composegen.nginx_conf(Path("/var/lib/switchboard-gateway"))
    guarded = composegen.self_guarded()
    assert "flower" in guarded
    for route in load_routes().http:
        block = conf.split(f"location {route.prefix} {{", 1)[1].split("}", 1)[0]
        assert ("auth_request" in block) == (route.staff_only and route.service not in guarded), route.prefix


def test_nothing_pins_a_container_so_ws_gateway_scales():
    """`--scale ws-gateway=3` needs no fixed container name and no fixed host port."""
    assert "container_name:" not in COMPOSE.read_text()
    assert "    ports:" not in compose_services()["ws-gateway"]


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess:
    # The compose-spec schema ships inside check-jsonschema: no network needed.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_files_are_valid_against_the_compose_spec():
    res = check_jsonschema(COMPOSE, ROOT / "deploy/compose/local.yaml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_schema_check_refuses_a_misspelt_key(tmp_path):
    """The check above can fail: a typo in a service's keys is an error, not ignored."""
    bad = tmp_path / "compose.yaml"
    bad.write_text(COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restrat: unless-stopped\n", 1))
    res = check_jsonschema(bad)
    assert res.returncode == 1 and "'restrat' was unexpected" in res.stdout, res.stdout + res.stderr


def test_make_dotenv_writes_secrets_a_production_process_accepts():
    """.env.example's placeholders are refused at start (SWITCHBOARD_DEBUG=0); `make .env`
    fills every secret with a random value that is accepted, and differs per run."""
    import composegen

    from switchboard.settings_base import insecure_secrets

    def values(text):
        return dict(re.findall(r"^(\w+)=(.*)$", text, flags=re.M))

    example = values((ROOT / ".env.example").read_text())
    assert insecure_secrets(example["SWITCHBOARD_SECRET_KEY"], example["SWITCHBOARD_JWT_KEYS"])
    first, second = values(composegen.dotenv()), values(composegen.dotenv())
    assert insecure_secrets(first["SWITCHBOARD_SECRET_KEY"], first["SWITCHBOARD_JWT_KEYS"]) == []
    for name in composegen.DOTENV_SECRETS:
        assert first[name] != example[name] and first[name] != second[name]
    assert {k: v for k, v in first.items() if k not in composegen.DOTENV_SECRETS} == {
        k: v for k, v in example.items() if k not in composegen.DOTENV_SECRETS
    }


def test_no_proxy_writes_a_query_string_to_its_access_log():
    """nginx-proxy's default log line is "$request" (the query string, ?token= included);
    compose.yaml gives it our format, which has none. So does the local nginx."""
    import nginxconf

    assert not nginxconf.logs_query_string(nginxconf.ACCESS_LOG_FORMAT)
    for leaky in ('"$request"', "$request_uri", "$args", "$query_string", "$arg_token", "${request}"):
        assert nginxconf.logs_query_string(leaky), leaky
    proxy = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["proxy"]
    fmt = proxy["environment"].get("LOG_FORMAT")
    assert fmt, "nginx-proxy logs its default format ($request, with ?token=)"
    assert not nginxconf.logs_query_string(fmt.replace("$$", "$")), fmt


def test_grafana_is_provisioned_with_the_fleet_dashboard_on_compose_prometheus():
    """Provisioned, not only a JSON file to import: the datasource is the monitoring
    profile's Prometheus and the dashboard file is mounted where the provider reads."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    grafana = ROOT / "deploy/grafana/provisioning"
    source = yaml.safe_load((grafana / "datasources/prometheus.yml").read_text())["datasources"][0]
    host, port = source["url"].removeprefix("http://").split(":")
    assert source["type"] == "prometheus" and host in services and f":{port}" in " ".join(services[host]["ports"])
    provider = yaml.safe_load((grafana / "dashboards/switchboard.yml").read_text())["providers"][0]
    mounts = [v.split(":")[:2] for v in services["grafana"]["volumes"]]
    assert ["./deploy/grafana/provisioning", "/etc/grafana/provisioning"] in mounts
    dashboards = [dst for src, dst in mounts if src.endswith(".json")]
    assert dashboards and all(d.startswith(provider["options"]["path"] + "/") for d in dashboards)
    for src, _dst in mounts:
        assert not src.startswith("./") or (ROOT / src).exists(), src


def test_compose_allows_exactly_the_hosts_its_callers_send():
    """No `*`: the public names from .env, plus the compose network's names its own
    callers send as Host (SERVICE_URLS' proxy, Alertmanager's webhook), which Django
    must accept or those calls get 400."""
    from urllib.parse import urlsplit

    from django.http.request import validate_host

    env = yaml.safe_load(COMPOSE.read_text())["x-app-env"]
    public = re.fullmatch(r"\$\{ALLOWED_HOSTS:-(.*)\}", env["ALLOWED_HOSTS"]).group(1).split(",")
    assert "*" not in public
    allowed = public + env["INTERNAL_HOSTS"].split(",")
    callers = {urlsplit(env["SERVICE_URLS"]).hostname, urlsplit(composegen.alert_webhook_url()).hostname}
    callers |= {"127.0.0.1", "localhost"}  # make compose-test and a browser on the machine
    assert {h for h in callers if not validate_host(h, allowed)} == set()
