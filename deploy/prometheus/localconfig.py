"""Prometheus for the local fleet: scrape targets from the launcher's ports.json.

    python deploy/prometheus/localconfig.py RUN_DIR OUT_DIR [--interval 1s]

writes OUT_DIR/prometheus.yml (deploy/prometheus/prometheus.yml with absolute paths
and the given intervals), OUT_DIR/alerts.yml and OUT_DIR/targets/fleet.json: one
target group per process that has a metrics port, so every program the launcher runs
from SERVICES is scraped, named like the Kubernetes pods are (job = process kind,
service = owning service, instance = program name).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def job_of(program: str) -> str:
    """The process kind of a launcher program: ws-gateway-0 -> ws-gateway, the
    dashboard's publisher-1 -> dashboard-publisher; chat-http stays chat-http."""
    return re.sub(r"-\d+$", "", program)


def target_groups(ports: dict, services: dict[str, str], http_metrics: dict[str, str] | None = None) -> list[dict]:
    """ports: ports.json; services: program name -> owning service; http_metrics:
    program name -> metrics path on its HTTP port, for third-party servers (Flower)."""
    http_metrics = http_metrics or {}
    groups = []
    for name, p in sorted(ports.items()):
        labels = {"job": job_of(name), "service": services.get(name, ""), "instance": name}
        if p.get("metrics"):
            groups.append({"targets": [f"127.0.0.1:{p['metrics']}"], "labels": labels})
        elif name in http_metrics and p.get("http"):
            labels["__metrics_path__"] = http_metrics[name]
            groups.append({"targets": [f"127.0.0.1:{p['http']}"], "labels": labels})
    return groups


def third_party_metrics(ports: dict) -> dict[str, str]:
    """Programs that are daemons serving HTTP under a route prefix (Flower under
    /flower/): their /metrics is <prefix>metrics on that port, as the route table says."""
    import sys
    import tomllib

    sys.path.insert(0, str(HERE.parent))
    from launcher import SERVICES

    table = tomllib.loads((HERE.parent.parent / "gateway" / "routes.toml").read_text())
    prefixes = {r["service"]: r["prefix"] for r in table["http"]}
    out = {}
    for svc in SERVICES:
        for d in svc.daemons:
            if d.serves:
                for name in ports:
                    if re.fullmatch(rf"{re.escape(svc.name)}-{re.escape(d.name)}-\d+", name):
                        out[name] = prefixes[d.serves] + "metrics"
    return out


def write(run_dir: Path, out: Path, interval: str = "15s", services: dict[str, str] | None = None) -> Path:
    ports = json.loads((run_dir / "ports.json").read_text())
    if services is None:
        services = {name: _service_of(name) for name in ports}
    (out / "targets").mkdir(parents=True, exist_ok=True)
    groups = target_groups(ports, services, third_party_metrics(ports))
    (out / "targets" / "fleet.json").write_text(json.dumps(groups, indent=2))
    shutil.copy(HERE / "alerts.yml", out / "alerts.yml")
    config = yaml.safe_load((HERE / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(out / "alerts.yml")]
    config["scrape_configs"][0]["file_sd_configs"] = [{"files": [str(out / "targets" / "*.json")]}]
    path = out / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _service_of(program: str) -> str:
    """Owning service of a launcher program, from the launcher's own table."""
    import sys

    sys.path.insert(0, str(HERE.parent))
    from launcher import SERVICES

    for svc in sorted(SERVICES, key=lambda s: -len(s.name)):  # longest prefix wins
        if program == svc.name or program.startswith(svc.name + "-"):
            return svc.name
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--interval", default="15s")
    args = parser.parse_args()
    print(write(args.run_dir, args.out_dir, args.interval))


if __name__ == "__main__":
    main()
