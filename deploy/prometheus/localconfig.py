"""Prometheus for the local fleet: scrape targets from the launcher's ports.json.

    python deploy/prometheus/localconfig.py RUN_DIR OUT_DIR [--interval 1s]

writes OUT_DIR/prometheus.yml (deploy/prometheus/prometheus.yml with absolute paths
and the given intervals), OUT_DIR/alerts.yml and OUT_DIR/targets/fleet.json: one
target group per process that has a metrics port, so every program the launcher runs
from deploy/fleet.py is scraped, named like the Kubernetes pods are (job = process kind,
service = owning service, instance = program name).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def target_groups(ports: dict) -> list[dict]:
    """ports: the launcher's ports.json, which names each program's process kind, owning
    service and metrics path (deploy/fleet.py): one target group per program with a
    /metrics, on its metrics port or, for a third-party server (Flower), on its HTTP port."""
    groups = []
    for name, p in sorted(ports.items()):
        if not p.get("kind"):
            continue  # redis, nginx: not the fleet's processes
        labels = {"job": p["kind"], "service": p["service"], "instance": name}
        if p.get("metrics"):
            groups.append({"targets": [f"127.0.0.1:{p['metrics']}"], "labels": labels})
        elif p.get("http"):
            labels["__metrics_path__"] = p["metrics_path"]
            groups.append({"targets": [f"127.0.0.1:{p['http']}"], "labels": labels})
    return groups


def write(run_dir: Path, out: Path, interval: str = "15s") -> Path:
    ports = json.loads((run_dir / "ports.json").read_text())
    (out / "targets").mkdir(parents=True, exist_ok=True)
    groups = target_groups(ports)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--interval", default="15s")
    args = parser.parse_args()
    print(write(args.run_dir, args.out_dir, args.interval))


if __name__ == "__main__":
    main()
