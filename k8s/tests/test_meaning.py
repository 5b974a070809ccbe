"""The manifests mean what the fleet says (k8s/checks.py), and each check can fail: the
three defects issue 17 found in the k8s/ of 2 Dec (an HPA on a sharded inbox worker,
service calls to ws-gateway, report files on an emptyDir) are put back into a rendering
and each is caught."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import checks
import pytest
import render
from fleet import PROCESSES

K8S = Path(__file__).resolve().parents[1]


def by_name(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


# A check today's manifests fail, with why (strict: a fix fails here until its mark
# goes). Empty since report files moved into the report service's database.
PENDING: dict[str, str] = {}


def params():
    for check in checks.CHECKS:
        mark = pytest.mark.xfail(strict=True, reason=PENDING[check.__name__]) if check.__name__ in PENDING else ()
        yield pytest.param(check, marks=mark, id=check.__name__)


@pytest.mark.parametrize("check", params())
def test_every_rendering_means_what_the_fleet_says(check, rendered):
    found = {name: check(objects) for name, objects in rendered.items()}
    found["base"] = check(render.build(K8S / "base"))
    assert found == {name: [] for name in found}


def test_the_env_of_each_workload_is_what_compose_runs_for_it():
    assert checks.check_env(render.build(K8S / "base")) == []


def base():
    return copy.deepcopy(render.build(K8S / "base"))


def test_an_autoscaler_on_an_inbox_worker_is_caught():
    """2 Dec: chat-inbox had an HPA (prod: minReplicas 2), and two consumers of one shard
    reorder a room's messages."""
    objects = base()
    inbox = next(p for p in PROCESSES if p.name == "chat-inbox")
    hpa = copy.deepcopy(by_name(objects, "HorizontalPodAutoscaler")["ws-gateway"])
    hpa["metadata"]["name"] = hpa["spec"]["scaleTargetRef"]["name"] = "chat-inbox"
    objects.append(hpa)
    found = checks.check_scaling(objects)
    if inbox.may_scale:  # shard ownership holds: an autoscaler is allowed
        assert found == []
    else:
        assert found == [
            "HorizontalPodAutoscaler chat-inbox scales chat-inbox: a sharded process that may not run twice now"
        ]
    by_name(objects, "Deployment")["dashboard-publisher"]["spec"]["replicas"] = 2  # leased: fine
    by_name(objects, "Deployment")["report-worker-flower"]["spec"]["replicas"] = 2
    assert "Deployment report-worker-flower runs 2 replicas of a single process" in checks.check_scaling(objects)


def test_service_calls_to_ws_gateway_are_caught():
    """2 Dec: every service-to-service call went to http://ws-gateway (GATEWAY_URL), which
    serves only /api/auth/ and pages: the report worker's and the dashboard's calls got 404."""
    objects = base()
    config = by_name(objects, "ConfigMap")["switchboard-config"]["data"]
    config["SERVICE_URLS"] = "http://ws-gateway"
    found = checks.check_urls(objects)
    assert any("/api/chat/rooms/ (route /api/chat/ of chat) reaches Service ws-gateway" in p for p in found), found
    assert any("/api/orders/ (route /api/orders/ of dashboard) reaches Service ws-gateway" in p for p in found)
    config["SERVICE_URLS"] = "http://nowhere"
    assert "SERVICE_URLS=http://nowhere: nowhere is not a Service of this deployment" in checks.check_urls(objects)
    # The 2 Dec ConfigMap had no SERVICE_URLS: the default (a make run address) is no Service.
    del config["SERVICE_URLS"]
    config["GATEWAY_URL"] = "http://ws-gateway"
    assert any("127.0.0.1 is not a Service" in p for p in checks.check_urls(objects))


def test_report_files_on_an_empty_dir_are_caught(monkeypatch):
    """2 Dec: SWITCHBOARD_DATA_DIR=/tmp/switchboard on each pod's emptyDir: the HTTP pod
    that serves a download never sees the file the worker pod wrote (the report
    processes declared as sharing files, as they did then)."""
    objects = base()
    by_name(objects, "ConfigMap")["switchboard-config"]["data"]["SWITCHBOARD_DATA_DIR"] = "/tmp/switchboard"
    then = {"report-worker-http", "report-worker-celery"}
    for name in then:
        monkeypatch.setitem(checks.BY_NAME, name, dataclasses.replace(checks.BY_NAME[name], shares="report files"))
    found = checks.check_storage(objects)
    assert {p.split(":")[0] for p in found} == then and all("on emptyDir volume tmp" in p for p in found), found


def test_env_drift_between_compose_and_k8s_is_caught():
    objects = base()
    c = by_name(objects, "Deployment")["chat-inbox"]["spec"]["template"]["spec"]["containers"][0]
    c["env"] = [e for e in c["env"] if e["name"] != "METRICS_HOST"] + [{"name": "INBOX_CAPACITY", "value": "9"}]
    next(e for e in c["env"] if e["name"] == "DJANGO_SETTINGS_MODULE")["value"] = "collab.settings"
    assert checks.check_env(objects) == [
        "chat-inbox: INBOX_CAPACITY is set only in k8s",
        "chat-inbox: METRICS_HOST is set only in compose",
        "chat-inbox: DJANGO_SETTINGS_MODULE=collab.settings in k8s, chat.settings in compose",
    ]
