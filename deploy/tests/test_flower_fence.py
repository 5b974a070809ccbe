"""Flower's API trusts whoever reaches it, so only the proxy that makes the staff check
(and Prometheus, which scrapes it) may connect to it, and no proxy serves its metrics
or health check to the outside. Checked on the generated files: compose.yaml's networks
and every proxy's config (make run's nginx, compose's nginx-proxy and its stand-in).
k8s/ has the same checks in k8s/checks.py (check_proxy_only) and k8s/tests."""

from __future__ import annotations

import re
from pathlib import Path

import composegen
import yaml
from fleet import PROCESSES, serving

from nginxconf import render as render_nginx
from switchboard.routes import load as load_routes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
FLOWER = serving("flower")
# What no proxy may serve from outside: Prometheus and the probes reach them on the port.
REFUSED = ("/flower/metrics", "/flower/healthcheck")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def networks(service: dict) -> set[str]:
    """The networks a compose service joins (none listed: the project's default)."""
    return set(service.get("networks") or ["default"])


def app_containers(services: dict) -> set[str]:
    """Containers of the Switchboard image: every fleet process and migration job."""
    return {n for n, s in services.items() if "SWITCHBOARD_IMAGE" in str(s.get("image", ""))}


def test_the_fleet_marks_flower_as_reached_only_through_the_proxy():
    assert [p.name for p in PROCESSES if p.proxy_only] == [FLOWER.name]


def test_no_app_container_shares_a_network_with_flower():
    services = compose()
    mine = networks(services[FLOWER.name])
    neighbours = {n for n, s in services.items() if n != FLOWER.name and networks(s) & mine}
    assert not neighbours & app_containers(services), sorted(neighbours & app_containers(services))


def test_the_proxy_and_prometheus_reach_flower_and_flower_reaches_redis():
    services = compose()
    mine = networks(services[FLOWER.name])
    for other in ("proxy", "prometheus", "redis"):
        assert networks(services[other]) & mine, other
    # The proxy's side of it is not Redis' side: the proxy and Prometheus share one
    # network with Flower, Redis another.
    front = networks(services["proxy"]) & mine
    assert front == networks(services["prometheus"]) & mine
    assert not front & networks(services["redis"])
    # The networks Flower is on lead nowhere else (no route out of the host).
    declared = yaml.safe_load(COMPOSE.read_text())["networks"]
    assert all(declared[n].get("internal") is True for n in mine), mine


def refused_locations(conf: str) -> dict[str, str]:
    """location prefix -> its body, for the locations that answer by themselves."""
    return {
        prefix: body
        for prefix, body in re.findall(r"location (/\S*) \{\n(.*?)\n\s*\}", conf, flags=re.S)
        if "return " in body and "proxy_pass" not in body
    }


def assert_refuses(conf: str, where: str) -> None:
    found = refused_locations(conf)
    for path in REFUSED:
        assert path in found and "return 404;" in found[path], f"{where} serves {path} from outside"


def test_make_runs_nginx_refuses_flowers_metrics_and_health_check():
    upstreams = {p.serves: ["127.0.0.1:1"] for p in PROCESSES if p.http}
    assert_refuses(render_nginx(upstreams, "127.0.0.1:8080", Path("/tmp")), "gateway/nginxconf.py")


def test_composes_stand_in_gateway_refuses_them_too():
    assert_refuses(composegen.nginx_conf(Path("/var/lib/switchboard-gateway")), "the stand-in gateway")


def test_nginx_proxy_is_given_the_same_refusals():
    """nginx-proxy includes /etc/nginx/vhost.d/default in every server it generates: the
    refusals are there, generated from the route table, and mounted."""
    path = ROOT / "deploy" / "compose" / "nginx-proxy-vhost.conf"
    assert path.read_text() == composegen.proxy_vhost()
    assert_refuses(path.read_text(), str(path))
    volumes = compose()["proxy"]["volumes"]
    assert "./deploy/compose/nginx-proxy-vhost.conf:/etc/nginx/vhost.d/default:ro" in volumes


def test_the_route_table_names_them_internal():
    (route,) = [r for r in load_routes().http if r.service == "flower"]
    assert set(REFUSED) <= set(route.internal)
