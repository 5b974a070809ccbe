"""The alert rules and the Grafana dashboard name only metrics that exist, every alert
has a description and a runbook section in docs/operations.md that its runbook_url names, and the local scrape config covers every process the
launcher runs (from SERVICES)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from flower.events import get_prometheus_metrics
from prometheus_client import REGISTRY

import switchboard.metrics  # noqa: F401  (registers every Switchboard metric)
from launcher import Fleet

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "switchboard-fleet.json"

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan", "time", "vector", "scalar",
}  # fmt: skip
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def known_metrics() -> set[str]:
    """Sample names of Switchboard's registry (incl. process_/python_ collectors),
    Flower's metrics, and Prometheus' own `up`."""
    get_prometheus_metrics()  # registers Flower's metrics in the same registry
    names = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
    for family in REGISTRY.collect():
        names.add(family.name)
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(s.name for s in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a small lexer, not a parser:
    strings, label matchers, grouping clauses, ranges and functions are removed)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", expr):
        if m.group(2) or m.group(1) in KEYWORDS:
            continue  # a function call or a keyword
        names.add(m.group(1))
    return names


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])]


def test_the_lexer_finds_names_and_skips_the_rest():
    expr = 'histogram_quantile(0.99, sum by (le, service) (rate(x_bucket{code="a b"}[5m]))) > 0.5 and on() up == 0'
    assert metric_names(expr) == {"x_bucket", "up"}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alerts_name_only_metrics_that_exist(rule):
    unknown = metric_names(rule["expr"]) - known_metrics()
    assert not unknown, f"{rule['alert']} names metrics no process exports: {unknown}"


def test_dashboard_names_only_metrics_that_exist():
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        unknown = metric_names(expr) - known_metrics()
        assert not unknown, f"dashboard query names unknown metrics {unknown}: {expr}"


def test_dashboard_covers_what_operators_look_at():
    exprs = " ".join(dashboard_exprs())
    for metric in (
        "switchboard_gateway_connections",
        "switchboard_gateway_frames_total",
        "switchboard_inbox_handling_seconds_bucket",
        "switchboard_inbox_commands_total",
        "switchboard_inbox_last_command_timestamp_seconds",
        "flower_events_total",
    ):
        assert metric in exprs, metric
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_every_alert_has_a_description_and_a_runbook_section():
    page = (ROOT / "docs" / "operations.md").read_text()
    sections = set(re.findall(r"^### (Switchboard\w+)$", page, re.M))
    names = set()
    for rule in alert_rules():
        name = rule["alert"]
        names.add(name)
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"].get("description"), f"{name} has no description"
        # GitHub's anchor of a "### <Name>" heading is the name in lower case.
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
    assert names == sections, f"runbook sections without an alert or alerts without one: {names ^ sections}"


def test_local_scrape_config_lists_every_process_of_the_launcher(tmp_path):
    from localconfig import write

    fleet = Fleet(run_dir=tmp_path / "run", ws_gateway_processes=2)
    fleet.plan()
    config = write(fleet.run_dir, tmp_path / "prom", interval="1s")
    groups = json.loads((tmp_path / "prom" / "targets" / "fleet.json").read_text())
    scraped = {g["labels"]["instance"]: g for g in groups}
    for p in fleet.programs:
        if p.metrics_port:
            assert scraped[p.name]["targets"] == [f"127.0.0.1:{p.metrics_port}"]
            assert scraped[p.name]["labels"]["service"] in (p.service, p.name.rsplit("-", 2)[0])
        elif p.http_port and p.service not in ("ws-gateway",) and "flower" in p.name:
            # Flower: its own /metrics under its route prefix, on its HTTP port.
            assert scraped[p.name]["targets"] == [f"127.0.0.1:{p.http_port}"]
            assert scraped[p.name]["labels"]["__metrics_path__"] == "/flower/metrics"
    assert {g["labels"]["job"] for g in groups} >= {"ws-gateway"}
    if shutil.which("promtool"):
        result = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
