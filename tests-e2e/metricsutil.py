"""Read one process's Prometheus metrics straight from its metrics port (ports.json)."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families


def metrics_port(fleet, program: str) -> int:
    return json.loads((fleet.run_dir / "ports.json").read_text())[program]["metrics"]


def sample(fleet, program: str, name: str, **labels) -> float:
    """The sum of `name`'s samples on `program` whose labels include `labels`."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port(fleet, program)}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total
