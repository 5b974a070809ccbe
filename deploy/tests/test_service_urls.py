"""Every service-to-service call reaches the service that owns its path, in every deployment.

The calls are what the services' code calls through switchboard.routes.internal_url
(routes.service_calls); the owner of a path is the route table's; where a call goes is
SERVICE_URLS as each deployment sets it. make run and compose are checked here; k8s by
k8s/checks.check_urls (make k8s-check, k8s/tests/test_meaning.py)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import yaml
from fleet import PROCESSES

import launcher
from switchboard.config import ROOT
from switchboard.routes import internal_url, load, service_calls, service_urls

CALLS = sorted(set().union(*service_calls().values()))


def test_the_services_call_each_other_and_every_call_has_an_owner():
    assert {"/api/chat/rooms/", "/api/orders/", "/api/auth/users/", "/api/reports/stats/"} <= set(CALLS)
    for path in CALLS:
        assert load().route_of(path) is not None, f"{path}: no route of routes.toml serves it"


def test_service_urls_reads_a_proxy_or_owner_pairs():
    assert service_urls("http://proxy/") == {"": "http://proxy"}
    assert service_urls("chat=http://chat-http, http://proxy") == {"chat": "http://chat-http", "": "http://proxy"}
    assert internal_url("/api/chat/rooms/", "chat=http://chat-http,http://proxy") == "http://chat-http/api/chat/rooms/"
    assert internal_url("/api/orders/", "chat=http://chat-http,http://proxy") == "http://proxy/api/orders/"
    with pytest.raises(LookupError, match="dashboard"):
        internal_url("/api/orders/", "chat=http://chat-http")
    with pytest.raises(ValueError, match="not an http"):
        service_urls("chat-http")


def test_make_run_calls_go_to_the_fleets_nginx_which_routes_them_to_their_owner(tmp_path):
    fleet = launcher.Fleet(run_dir=tmp_path / "run", gateway_port=launcher.free_port(), redis_url="redis://x:1/0")
    fleet.plan()
    value = fleet.setting("SERVICE_URLS")
    served = {p.service for p in fleet.programs if p.http_port}
    for path in CALLS:
        url = urlsplit(internal_url(path, value))
        assert (url.hostname, url.port) == ("127.0.0.1", fleet.gateway_port), f"{path} -> {url.geturl()}"
        owner = load().route_of(path).service
        assert owner in served, f"{path}: nginx has no upstream for {owner}"


def proxy_paths(environment: dict) -> list[str]:
    """The path prefixes nginx-proxy routes to a container (VIRTUAL_PATH, or the paths of
    VIRTUAL_HOST_MULTIPORTS)."""
    if "VIRTUAL_PATH" in environment:
        return [environment["VIRTUAL_PATH"]]
    multi = environment.get("VIRTUAL_HOST_MULTIPORTS")
    if not multi:
        return []
    hosts = yaml.safe_load(re.sub(r"\$\{[^}]*\}", "host", multi))
    return [p for paths in hosts.values() for p in paths]


def test_compose_calls_go_to_the_proxy_which_routes_them_to_their_owner():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    serves = {p.name: p.serves for p in PROCESSES}
    routed = {
        prefix: serves.get(name)
        for name, svc in compose["services"].items()
        for prefix in proxy_paths(svc.get("environment") or {})
    }
    callers = {
        name: svc["environment"]["SERVICE_URLS"]
        for name, svc in compose["services"].items()
        if name in serves and "SERVICE_URLS" in (svc.get("environment") or {})
    }
    assert set(callers) == {p.name for p in PROCESSES}, "every process of the fleet gets SERVICE_URLS"
    for name, value in callers.items():
        for path in CALLS:
            url = urlsplit(internal_url(path, value))
            assert url.hostname in compose["services"], f"{name}: {url.hostname} is no compose service"
            assert "nginx-proxy" in compose["services"][url.hostname]["image"], f"{url.hostname} is not the proxy"
            prefix = max((p for p in routed if path.startswith(p)), key=len)
            owner = load().route_of(path).service
            assert routed[prefix] == owner, f"{name}: {path} reaches {routed[prefix]} via {prefix}, not {owner}"
