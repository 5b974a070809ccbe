"""`make bench`: Switchboard, the floor and the peer, side by side, in one run.

    python bench/run.py                  # full scale: 100 and 1,000 receivers, 10,000 idle sockets
    python bench/run.py --scale smoke    # seconds: proves the harness works, numbers mean nothing
    python bench/run.py --only switchboard,floor
    python bench/run.py --only patches --scale mid --label patches   # what each server patch buys
    python bench/run.py --only switchboard --patches-off twisted_writes
    python bench/run.py --only switchboard,rooms --db sqlite,postgres   # both databases, one table
    python bench/run.py --only notify    # notification push latency at 100/s through nginx
    python bench/run.py --only reconnect --scale mid   # the reconnect storm after a ws-gateway SIGKILL

For each server in turn: boot it (Switchboard with deploy/launcher.py's Fleet, the
same launcher as `make run`, with production settings and rate limits raised for the
load; the floor and the peer on a Redis of their own), run the load client
(bench/loadclient.py, one subprocess per scenario, so its CPU is its own), stop it.
Then print one table and write the figures as JSON to bench/results/.

What users meet (issue 21): Switchboard's idle, round trip and fan-out go through the
fleet's nginx to its default ws-gateway processes (WS_GATEWAY_PROCESSES), and CPU and
RSS are summed over every process of each system (bench/procstat.py): Switchboard's
every fleet process (services, workers, nginx's master and workers, Redis), the
floor's server and its Redis, the peer's uvicorn and its Redis. RSS per idle socket is
the growth of that sum. The table's first rows say how each system was reached and
over how many processes it was measured; the JSON lists them (`processes`). nginx
holds two connections per socket in its one worker, so the idle scenario through it
opens at most NGINX_IDLE_MAX sockets (its row says how many). `--direct` runs the
same scenarios straight to one ws-gateway process, that process's CPU and RSS only
(the figures of runs before 7 Dec 2026).

A fan-out whose one client process was at CLIENT_LIMIT of a core runs again with its
receivers split over several client processes (`--client-procs auto`, the default;
a number forces it): deliveries, lost and duplicated are merged exactly, latencies
are on one clock, and `*` marks a figure where any client process was at the limit.

`--db` picks Switchboard's databases: `sqlite` (each service's own file, as `make run`
runs it), `postgres` (each service's own database on one PostgreSQL 15 cluster, as
compose runs it; a throwaway cluster on a free port, switchboard.testing.PostgresCluster,
the fault campaign's), or both in turn, each fleet through the same scenarios; the
table has one column per database.

`--only reconnect` boots a fleet as `make run` runs it (its default ws-gateway
processes, nginx in front) and, for sockets spread over 5 rooms and then all in one
room, SIGKILLs one ws-gateway process and then all of them (BENCH_RECONNECT_KILL):
every dropped client reconnects at once with `since`, 200 handshakes in flight, while a
sender posts to each room; the figures are the time until every socket is back, the
attempts refused, and whether every client's stream is exact (loadclient's `reconnect`).

`--only patches` boots one fleet and, on it, one extra ws-gateway process per variant
(all patches on, then each patch that can be switched off, off alone; the names are
ws_gateway/patches.py's and the switch is the gateway's own WS_PATCHES_DISABLE), each
running the top fan-out and the idle scenario, `--rounds` times in turn, so every
variant meets the same load on the machine (docs/performance.md, "What each server
patch buys").

Ratios from one run are the result: absolute figures on a shared 2-core machine move
by a third between runs. A figure whose client CPU was at or above CLIENT_LIMIT of a
core is marked `*`: the client may have been the limit there, not the server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "services"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "gateway"))

from fleet import SERVICES, process  # noqa: E402
from procstat import describe, with_children  # noqa: E402

from launcher import Fleet, free_port, redis_server  # noqa: E402
from nginxconf import WORKER_CONNECTIONS  # noqa: E402
from switchboard.config import env, env_int  # noqa: E402
from switchboard.pgcluster import PostgresCluster, postgres_missing  # noqa: E402
from ws_gateway.patches import PATCHES  # noqa: E402

PY = sys.executable
CLIENT = str(ROOT / "bench" / "loadclient.py")
RESULTS = ROOT / "bench" / "results"
CLIENT_LIMIT = 0.9
# Migrating every service and booting the fleet takes minutes when other suites load the machine.
BOOT_SECONDS = 600

SECRET = "bench-only-secret-key-0123456789abcdef0123456789"  # never a production key
JWT_KEYS = "bench:bench-only-jwt-key-0123456789abcdef0123456789"  # never a production key
SCALES = {
    "full": {
        "receivers": [100, 1000],
        "idle": 10_000,
        "duration": 5.0,
        "rt": 300,
        "users": 100,
        "dashboard_viewers": 200,
        "dashboard_intervals": 4,
        # roomjoin: connects into one chat room of each size, through nginx
        "room_sizes": [100, 1000, 5000],
        "room_connects": 300,
        # roomstorm: this many sockets into one room at once, a quiet room probed meanwhile
        "storm_sockets": 2000,
        # reconnect: this many sockets (in 5 rooms, then in one), a ws-gateway SIGKILLed
        "reconnect_sockets": 5000,
    },
    # What one server process's patches cost or buy (`--only patches`): 1,000 receivers
    # and 3,000 idle sockets show each effect in a minute a variant.
    "mid": {
        "receivers": [1000],
        "idle": 3000,
        "duration": 5.0,
        "rt": 100,
        "users": 100,
        "dashboard_viewers": 50,
        "dashboard_intervals": 2,
        "room_sizes": [100, 1000],
        "room_connects": 100,
        "storm_sockets": 500,
        "reconnect_sockets": 1000,
    },
    "smoke": {
        "receivers": [20],
        "idle": 100,
        "duration": 1.0,
        "rt": 30,
        "users": 20,
        "dashboard_viewers": 20,
        "dashboard_intervals": 2,
        "room_sizes": [20],
        "room_connects": 20,
        "storm_sockets": 50,
        "reconnect_sockets": 50,
    },
}
# Production settings, with every rate limit far above the load: the bench measures
# throughput, and a refused frame would look like a lost message.
SWITCHBOARD_ENV = {
    "SWITCHBOARD_DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "SWITCHBOARD_SECRET_KEY": SECRET,
    "SWITCHBOARD_JWT_KEYS": JWT_KEYS,
    "RATE_USER_PER_SECOND": "1000000",
    "RATE_USER_BURST": "1000000",
    "RATE_CONN_PER_SECOND": "1000000",
    "RATE_CONN_BURST": "1000000",
    "RATE_ROUTE_SCALE": "10000",
    # Thousands of sockets of few users from one address: the caps are not what is measured.
    "WS_MAX_SOCKETS_PER_USER": "1000000",
    "WS_MAX_SOCKETS_PER_IP": "1000000",
    "TOKEN_TTL_SECONDS": "86400",
}


def raise_nofile() -> None:
    """10,000 sockets need more descriptors than a login shell's default; children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def client(scenario: str, target: str, port: int, pids: list[int] | None, *extra: str, timeout: float = 900) -> dict:
    """One loadclient run; `pids`: every process of the system under test, whose CPU
    (and, for idle, RSS) the client sums (bench/procstat.py)."""
    adapter = "switchboard" if target == "switchboard-uvicorn" else target
    if adapter == "switchboard" and scenario == "idle":
        adapter = "switchboard-tasks"  # the gateway's own route: see loadclient.SwitchboardTasks
    cmd = [PY, CLIENT, scenario, "--target", adapter, "--port", str(port), *extra]
    if pids:
        cmd += ["--pids", ",".join(str(p) for p in pids)]
    print(f"  {target} {scenario} {' '.join(extra)}", flush=True)
    env = {**os.environ, "SWITCHBOARD_SECRET_KEY": SECRET, "SWITCHBOARD_JWT_KEYS": JWT_KEYS, "PYTHONWARNINGS": "ignore"}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        # A scenario the server could not finish is a figure too (e.g. a room it could
        # not fill): recorded, and the run goes on with the next one.
        return {"error": f"did not finish in {timeout:.0f} s"}
    if res.returncode != 0:
        return {"error": (res.stderr or res.stdout)[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def scenarios(target: str, port: int, pids: list[int], scale: dict, path: str, idle: int | None = None) -> dict:
    """Idle, round trip and fan-out against one system; `pids`: all its processes, `path`:
    how the client reaches it (the table's first row), `idle`: sockets if not the scale's."""
    idle = idle or scale["idle"]
    out: dict = {"path": path, "processes": describe(pids)}
    out["idle"] = client("idle", target, port, pids, "--sockets", str(idle), "--room", "idle", "--uid-base", "200000")
    time.sleep(3)  # let the close storm finish before timing anything else
    out["roundtrip"] = client(
        "roundtrip", target, port, pids, "--count", str(scale["rt"]), "--room", "bench-rt", "--uid-base", "300000"
    )
    for n in scale["receivers"]:
        out[f"fanout_{n}"] = fanout(target, port, pids, scale, n)
    return out


# `--client-procs`: "auto" (run with one client process; if it was at CLIENT_LIMIT of a
# core, run again with the receivers split over several) or a number for every fan-out.
CLIENT_PROCS = {"value": "auto"}


def auto_client_procs() -> int:
    """Client processes for a fan-out whose one client process was the limit: every core
    but the server's, at least 2, at most 4 (more only share the same cores)."""
    return max(2, min(4, (os.cpu_count() or 2) - 1))


def fanout(target: str, port: int, pids: list[int], scale: dict, n: int) -> dict:
    """The fan-out to `n` receivers, not client-bound where more client processes help:
    the figure is the last run's; a first run at one process is kept under `first_run`."""

    def run(procs: int) -> dict:
        res = client(
            "fanout", target, port, pids, "--receivers", str(n), "--room", f"bench-{n}",
            "--uid-base", str(400_000 + n * 10), "--duration", str(scale["duration"]),
            "--users", str(min(n, scale["users"])), "--client-procs", str(procs),
        )  # fmt: skip
        # The close storm goes through the service's inbox (gw.disconnect, presence):
        # let it drain before the next scenario connects.
        time.sleep(10 if n >= 1000 else 3)
        return res

    fixed = CLIENT_PROCS["value"]
    if fixed != "auto":
        return run(int(fixed))
    first = run(1)
    phases = [first.get(k) or {} for k in ("max", "paced")]
    if "error" in first or max(ph.get("client_cpu", 0.0) for ph in phases) < CLIENT_LIMIT:
        return first
    res = run(auto_client_procs())
    res["first_run"] = {
        "client_procs": 1,
        "deliveries_per_s": first["max"].get("deliveries_per_s"),
        "client_cpu": first["max"].get("client_cpu"),
        "p99_ms": first["paced"].get("p99_ms"),
    }
    return res


# ------------------------------------------------------------------ servers ----
DATABASES = ("sqlite", "postgres")


def db_key(name: str, db: str) -> str:
    """The results' key of a Switchboard figure set on `db`: SQLite's keep the names of
    earlier runs (`switchboard`, `switchboard-rooms`), PostgreSQL's get `-postgres`."""
    return name if db == "sqlite" else f"{name}-postgres"


class BenchFleet:
    """A fleet with the bench's settings on `db`: SQLite files in the run directory, or
    every service on its own database of a PostgreSQL cluster started for this fleet
    (as compose gives each service its own database on one server; never the
    machine's own PostgreSQL), stopped and removed with the fleet."""

    def __init__(self, run_dir: Path, db: str, ws_gateway_processes: int):
        self.run_dir, self.db, self.processes = run_dir, db, ws_gateway_processes
        self.cluster: PostgresCluster | None = None

    def __enter__(self) -> Fleet:
        service_env: dict[str, dict[str, str]] = {}
        if self.db == "postgres":
            missing = postgres_missing()
            if missing:
                raise SystemExit(f"--db postgres needs {missing}: run deploy/system-deps.sh (make deps)")
            # The launcher hands each port out once, so the cluster's cannot be a fleet's.
            self.cluster = PostgresCluster(port=free_port())
            self.cluster.start()
            service_env = {s.name: {"DATABASE_URL": self.cluster.create_db(s.db_name)} for s in SERVICES}
        self.fleet = Fleet(
            run_dir=self.run_dir,
            gateway_port=free_port(),
            ws_gateway_processes=self.processes,
            env=SWITCHBOARD_ENV,
            service_env=service_env,
        )
        try:
            self.fleet.start(wait=BOOT_SECONDS)
        except BaseException:
            self.__exit__()
            raise
        return self.fleet

    def __exit__(self, *exc) -> None:
        try:
            self.fleet.stop()
        finally:
            if self.cluster:
                self.cluster.destroy()


def run_rooms(scale: dict, run_dir: Path, db: str = "sqlite") -> dict:
    """Only the room connects, on a fleet as `make run` runs it (its default gateway
    processes) behind nginx: `bench/run.py --only rooms`."""
    with BenchFleet(run_dir, db, env_int("WS_GATEWAY_PROCESSES")) as fleet:
        return {db_key("switchboard-rooms", db): room_connects(fleet, scale)}


# nginx holds two connections per proxied socket (the client's and the gateway's) in
# its one worker (gateway/nginxconf.py's WORKER_CONNECTIONS): the idle scenario through
# nginx opens at most this many, a margin left for the fleet's own REST calls.
NGINX_IDLE_MAX = WORKER_CONNECTIONS // 2 - 500


def run_switchboard(scale: dict, run_dir: Path, uvicorn: bool, db: str = "sqlite", direct: bool = False) -> dict:
    """Idle, round trip, fan-out and dashboard on a fleet: by default through nginx with
    the fleet's default ws-gateway processes, as users reach it, CPU and RSS summed over
    every fleet process; `direct`: one ws-gateway process reached on its own port, CPU
    and RSS of that process only (the figures before issue 21's "what users meet")."""
    gateways = 1 if direct else env_int("WS_GATEWAY_PROCESSES")
    with BenchFleet(run_dir, db, gateways) as fleet:
        create_rooms(fleet, ["bench-rt", *(f"bench-{n}" for n in scale["receivers"])])
        gw = fleet.program("ws-gateway-0")
        key = db_key("switchboard", db)
        if direct:
            port, pids, idle = gw.http_port, [fleet.pid("ws-gateway-0")], None
            path = "direct to 1 ws-gateway process"
        else:
            port, pids = fleet.gateway_port, fleet_pids(fleet)
            idle = min(scale["idle"], NGINX_IDLE_MAX)
            path = f"through nginx, {gateways} gateway processes"
        results = {key: scenarios("switchboard", port, pids, scale, path, idle)}
        results[key]["gateway_processes"] = gateways
        results[key]["dashboard"] = dashboard(fleet, port, scale)
        if uvicorn and db == "sqlite":
            # The same ASGI app and settings under uvicorn, side by side (ARCHITECTURE.md
            # keeps daphne unless the gain is large): a second gateway process on the
            # same fleet, while daphne's sits idle.
            port = free_port()
            env = {
                **os.environ,
                **fleet.base_env,
                **gw.env,
                "SERVICE_NAME": "ws-gateway-uvicorn",
                "METRICS_PORT": "0",
            }
            cmd = [PY, "-m", "uvicorn", "ws_gateway.asgi:application", "--port", str(port), "--loop", "uvloop"]
            cmd += ["--ws", "websockets", "--ws-per-message-deflate", "false", "--log-level", "warning"]
            cmd += ["--no-access-log", "--ws-ping-interval", fleet.setting("WS_PING_INTERVAL_SECONDS")]
            cmd += ["--ws-ping-timeout", fleet.setting("WS_PING_TIMEOUT_SECONDS")]
            with open(run_dir / "logs" / "ws-gateway-uvicorn.log", "w") as log:
                proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
                try:
                    wait_port(port)
                    # Reached on its own port (nginx routes to daphne's), the fleet's
                    # other processes summed with it: they store and relay for it.
                    uv_pids = sorted({proc.pid, *fleet_pids(fleet)})
                    results["switchboard-uvicorn"] = scenarios(
                        "switchboard-uvicorn", port, uv_pids, scale, "direct to 1 uvicorn process"
                    )
                finally:
                    proc.terminate()
                    proc.wait(15)
        return results


def serve_switchboard(scale: dict, run_dir: Path) -> None:
    """Keep a bench-configured fleet up for profiling (py-spy) until Ctrl-C."""
    fleet = Fleet(run_dir=run_dir, gateway_port=free_port(), ws_gateway_processes=1, env=SWITCHBOARD_ENV)
    try:
        fleet.start(wait=BOOT_SECONDS)
        rooms = ["bench-rt", *(f"bench-{n}" for n in scale["receivers"]), *(f"idle-{i}" for i in range(scale["idle"]))]
        create_rooms(fleet, rooms)
        pids = {p.name: fleet.pid(p.name) for p in fleet.programs}
        print(json.dumps({"port": fleet.program("ws-gateway-0").http_port, "pids": pids}), flush=True)
        # Blocked only now: the fleet's processes must not inherit a blocked SIGTERM.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        fleet.stop()


def switchable_patches() -> list[str]:
    """The ws-gateway patches WS_PATCHES_DISABLE can switch off (ws_gateway/patches.py)."""
    return [p.module for p in PATCHES if p.installs]


def gateway_variant(fleet: Fleet, name: str, env_extra: dict[str, str], run_dir: Path) -> subprocess.Popen:
    """One more ws-gateway daphne process on the fleet, its own port, this environment
    on top of ws-gateway-0's (which stays up, idle, as in the uvicorn comparison)."""
    gw = fleet.program("ws-gateway-0")
    port = free_port()
    cmd = process(gw.kind).command(bind="127.0.0.1", port=port, settings=fleet.settings(), python=PY)
    env = {**os.environ, **fleet.base_env, **gw.env, "SERVICE_NAME": name, "METRICS_PORT": "0", **env_extra}
    log = open(run_dir / "logs" / f"{name}.log", "a")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    proc.port = port  # type: ignore[attr-defined]
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.time() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}); see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return proc
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def run_patches(scale: dict, run_dir: Path, rounds: int) -> dict:
    """What each ws-gateway patch buys: every variant (all on, then each off alone) on one
    fleet, round after round, the top fan-out and the idle scenario each."""
    top = max(scale["receivers"])
    variants = ["", *switchable_patches()]  # "": all patches on
    fleet = Fleet(run_dir=run_dir, gateway_port=free_port(), ws_gateway_processes=1, env=SWITCHBOARD_ENV)
    out: dict = {"variants": [v or "all on" for v in variants], "rounds": []}
    try:
        fleet.start(wait=BOOT_SECONDS)
        create_rooms(fleet, [f"bench-{top}"])
        for r in range(rounds):
            this: dict = {}
            for variant in variants:
                label = variant or "all on"
                print(f"== round {r + 1}: {variant + ' off' if variant else label}", flush=True)
                proc = gateway_variant(
                    fleet, f"ws-gateway-bench-{variant or 'all'}", {"WS_PATCHES_DISABLE": variant}, run_dir
                )
                try:
                    res = {
                        "loadavg": os.getloadavg(),
                        "idle": client(
                            "idle",
                            "switchboard",
                            proc.port,
                            [proc.pid],
                            "--sockets",
                            str(scale["idle"]),
                            "--room",
                            "idle",
                            "--uid-base",
                            "200000",
                        ),
                    }
                    time.sleep(3)  # the close storm
                    res[f"fanout_{top}"] = client(
                        "fanout", "switchboard", proc.port, [proc.pid], "--receivers", str(top),
                        "--room", f"bench-{top}", "--uid-base", str(400_000 + top * 10),
                        "--duration", str(scale["duration"]), "--users", str(min(top, scale["users"])),
                    )  # fmt: skip
                    time.sleep(10 if top >= 1000 else 3)  # the close storm through chat's inbox
                finally:
                    proc.terminate()
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    proc.log.close()
                this[label] = res
            out["rounds"].append(this)
        return {"patches": out}
    finally:
        fleet.stop()


PATCH_ROWS = (
    # (label, path in a variant's results, how to print)
    ("deliveries/s", "fanout_{top}.max.deliveries_per_s"),
    ("server µs/delivery", "fanout_{top}.max.server_us_per_delivery"),
    ("p99 ms @half", "fanout_{top}.paced.p99_ms"),
    ("lost", "fanout_{top}.lost"),
    ("KB/idle socket", "idle.rss_per_socket_kb"),
    ("idle connects/s", "idle.connects_per_s"),
    ("ms CPU/connect", "idle.server_ms_per_connect"),
)


def patches_table(results: dict, scale: dict) -> str:
    """One row per variant, each figure as round 1 / round 2 / ..."""
    top = max(scale["receivers"])
    node = results["patches"]
    head = ["variant", *(label for label, _ in PATCH_ROWS)]
    lines = []
    for variant in node["variants"]:
        cells = []
        for _, path in PATCH_ROWS:
            vals = [_get(rnd, variant, path.format(top=top)) for rnd in node["rounds"]]
            cells.append(" / ".join(fmt(v) for v in vals))
        lines.append(["all on" if variant == "all on" else f"{variant} off", *cells])
    return markdown(head, lines)


def scrape(fleet: Fleet, metric: str) -> float:
    """Sum of a counter over every process of the fleet that exposes it."""
    total = 0.0
    for p in fleet.programs:
        if not p.metrics_port:
            continue
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=5) as res:
                text = res.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(metric + "{") or line.startswith(metric + " "):
                total += float(line.rsplit(" ", 1)[1])
    return total


def dashboard(fleet: Fleet, port: int, scale: dict) -> dict:
    """Stats computations per interval with 1 and with 200 viewers (must be equal).

    The dashboard computes its stats once per interval for every viewer (a publisher
    holding a lease); each computation runs the same fixed set of queries, so counting
    computations counts the queries."""
    interval = float(SWITCHBOARD_ENV.get("DASHBOARD_STATS_INTERVAL_SECONDS", env("DASHBOARD_STATS_INTERVAL_SECONDS")))
    hold = interval * scale["dashboard_intervals"]
    out: dict = {}
    for viewers in (1, scale["dashboard_viewers"]):
        before = scrape(fleet, "switchboard_dashboard_stats_computations_total")
        started = time.monotonic()
        res = client(
            "hold",
            "switchboard-dashboard",
            port,
            None,
            "--sockets",
            str(viewers),
            "--hold",
            str(hold),
            "--uid-base",
            str(600_000 + viewers),
        )
        after = scrape(fleet, "switchboard_dashboard_stats_computations_total")
        # Over the time between the two scrapes, not the hold alone: 200 viewers take
        # a second or two to connect, and at 11:55 that extra tick read as 1.25.
        intervals = (time.monotonic() - started) / interval
        out[f"viewers_{viewers}"] = {
            **res,
            "computations": after - before,
            "intervals": round(intervals, 2),
            "per_interval": (after - before) / intervals,
        }
    a, b = out["viewers_1"]["per_interval"], out[f"viewers_{scale['dashboard_viewers']}"]["per_interval"]
    # A computation is whole and a window of a few intervals catches one more or less
    # at its edges (4 or 5 in 4.2 intervals), so the figure is the nearest whole number:
    # one per interval whatever the viewers, or one per viewer (200) if it were wrong.
    out["queries"] = f"{a:.0f} vs {b:.0f}"
    return out


def fleet_pids(fleet: Fleet) -> list[int]:
    """Every process of the fleet: each program and its children (nginx's workers,
    daphne's none), so CPU is summed over what serves a user, Redis included."""
    return with_children(fleet.pid(p.name) for p in fleet.programs)


def room_connects(fleet: Fleet, scale: dict) -> dict:
    """Connects/s on the chat route into rooms of each size, through nginx with the
    fleet's gateway processes, and the whole fleet's CPU per connect."""
    sizes = [int(n) for n in os.environ.get("BENCH_ROOM_SIZES", "").split(",") if n] or scale["room_sizes"]
    create_rooms(fleet, [f"join-{n}" for n in sizes])
    pids = ",".join(str(p) for p in fleet_pids(fleet))
    out = {}
    for n in sizes:
        out[f"members_{n}"] = client(
            "roomjoin",
            "switchboard",
            fleet.gateway_port,
            None,
            "--pids",
            pids,
            "--room",
            f"join-{n}",
            "--members",
            str(n),
            "--sockets",
            str(scale["room_connects"]),
            "--concurrency",
            "50",
            "--uid-base",
            str(700_000 + n * 10),
        )
        time.sleep(10 if n >= 1000 else 3)  # the close storm drains through chat's inbox
    out["storm"] = room_storm(fleet, scale, pids)
    return out


def room_storm(fleet: Fleet, scale: dict, pids: str) -> dict:
    """Connects into a quiet room during a reconnect storm into another room of the same
    inbox shard (issue 21): the quiet room's connect latency and failures."""
    from switchboard.routes import shard_channel

    shards = int(fleet.setting("INBOX_SHARDS"))
    storm_room = "storm-a"
    quiet = next(
        f"storm-b{i}"
        for i in range(10_000)
        if shard_channel("chat", f"storm-b{i}", shards) == shard_channel("chat", storm_room, shards)
    )
    create_rooms(fleet, [storm_room, quiet])
    return client(
        "roomstorm",
        "switchboard",
        fleet.gateway_port,
        None,
        "--pids",
        pids,
        "--room",
        storm_room,
        "--room-b",
        quiet,
        "--sockets",
        str(scale["storm_sockets"]),
        "--concurrency",
        str(scale["storm_sockets"]),
        "--probes",
        "10",
        "--probe-gap",
        "0.5",
        "--uid-base",
        "600000",
    )


# ------------------------------------------------------------ notify push ----
# `--only notify` (issue 21): staff POSTs at a steady rate, each timed to its frame on
# the user's second tab, through nginx on a fleet as `make run` runs it. Per scale:
# offered rate (notifications/s), seconds per repetition, repetitions.
NOTIFY = {
    "full": {"rate": 100, "seconds": 5.0, "repeat": 3},
    "mid": {"rate": 100, "seconds": 5.0, "repeat": 2},
    "smoke": {"rate": 20, "seconds": 1.0, "repeat": 1},
}
NOTIFY_CLIENT = str(ROOT / "bench" / "notifypush.py")


def run_notify(scale_name: str, run_dir: Path, db: str = "sqlite") -> dict:
    """Notification push latency on a fleet with its default gateway processes behind
    nginx: `bench/run.py --only notify`."""
    with BenchFleet(run_dir, db, env_int("WS_GATEWAY_PROCESSES")) as fleet:
        return {db_key("switchboard-notify", db): notify_push(fleet, NOTIFY[scale_name])}


def notify_push(fleet: Fleet, cfg: dict) -> dict:
    """bench/notifypush.py against `fleet` (2 tabs of alice, the second timed), the
    whole fleet's CPU per notification (nginx and Redis included)."""
    pids = ",".join(str(p) for p in fleet_pids(fleet))
    cmd = [PY, NOTIFY_CLIENT, "--port", str(fleet.gateway_port), "--pids", pids]
    cmd += ["--rate", str(cfg["rate"]), "--seconds", str(cfg["seconds"]), "--repeat", str(cfg["repeat"])]
    print(f"  switchboard notify --rate {cfg['rate']} --seconds {cfg['seconds']} --repeat {cfg['repeat']}", flush=True)
    env = {**os.environ, "SWITCHBOARD_SECRET_KEY": SECRET, "SWITCHBOARD_JWT_KEYS": JWT_KEYS, "PYTHONWARNINGS": "ignore"}
    timeout = (cfg["seconds"] + 15) * (cfg["repeat"] + 1) + 60
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s"}
    if res.returncode != 0:
        return {"error": (res.stderr or res.stdout)[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def notify_table(results: dict) -> str:
    """Push and POST latency at the offered rate, one column per database: the median of
    the repetitions (their range)."""
    keys = [k for k in ("switchboard-notify", "switchboard-notify-postgres") if k in results]
    if not keys:
        return ""

    def cell(k: str, key: str) -> str:
        node = _get(results, k, key)
        if not isinstance(node, dict):
            return "n/a" if "error" not in results[k] else "error"
        return f"{fmt(node['median'])} ({fmt(node['min'])}-{fmt(node['max'])})"

    rate = next((_get(results, k, "rate") for k in keys if _get(results, k, "rate")), None)
    head = [
        f"notify push @ {fmt(rate)}/s (through nginx)",
        *("postgres" if k.endswith("postgres") else "sqlite" for k in keys),
    ]
    lines = [
        ["push p50 ms (POST sent to frame on the 2nd tab)", *(cell(k, "push_p50") for k in keys)],
        ["push p95 ms", *(cell(k, "push_p95") for k in keys)],
        ["push p99 ms (target <= 50)", *(cell(k, "push_p99") for k in keys)],
        ["POST p50 ms", *(cell(k, "post_p50") for k in keys)],
        ["POST p95 ms", *(cell(k, "post_p95") for k in keys)],
        ["POST p99 ms", *(cell(k, "post_p99") for k in keys)],
        ["fleet CPU ms/notification", *(cell(k, "fleet_cpu_ms_per_notification") for k in keys)],
        [
            "lost, duplicated (every tab)",
            *(f"{fmt(_get(results, k, 'lost'))}, {fmt(_get(results, k, 'duplicated'))}" for k in keys),
        ],
    ]
    return markdown(head, lines)


def create_rooms(fleet: Fleet, slugs: list[str]) -> None:
    code = (
        "import sys\n"
        "from chat.models import ChatRoom\n"
        "slugs = sys.stdin.read().split()\n"
        "ChatRoom.objects.bulk_create([ChatRoom(slug=s, name=s) for s in slugs], ignore_conflicts=True, batch_size=500)\n"
    )
    env = {
        **os.environ,
        **fleet.base_env,
        **fleet.service_env.get("chat", {}),
        "DJANGO_SETTINGS_MODULE": "chat.settings",
    }
    subprocess.run(
        [PY, "-m", "django", "shell", "-c", code], input="\n".join(slugs), text=True, env=env, cwd=ROOT, check=True
    )


# ---------------------------------------------------------------- reconnect ----
RECONNECT_LAYOUTS = (("rooms5", 5), ("room1", 1))  # (results key, rooms)
RECONNECT_IN_FLIGHT = 200


def reconnect_kills() -> list[str]:
    """Which ws-gateway processes the reconnect scenario kills: `one` (ws-gateway-0: its
    sockets reconnect through nginx to the other while supervisord restarts it) and/or
    `all` (every socket reconnects; none can be accepted until one is back)."""
    kills = os.environ.get("BENCH_RECONNECT_KILL", "one,all").split(",")
    if any(k not in ("one", "all") for k in kills):
        raise SystemExit(f"BENCH_RECONNECT_KILL={','.join(kills)}: one, all or one,all")
    return kills


def run_reconnect(scale: dict, run_dir: Path, db: str = "sqlite") -> dict:
    """The reconnect storm after a ws-gateway SIGKILL (issue 21), on a fleet as `make run`
    runs it (its default gateway processes) behind nginx: `bench/run.py --only reconnect`.
    Each layout (sockets over 5 rooms, then all in one) with each kill (BENCH_RECONNECT_KILL)
    on fresh rooms of the same fleet."""
    n = scale["reconnect_sockets"]
    out: dict = {}
    with BenchFleet(run_dir, db, env_int("WS_GATEWAY_PROCESSES")) as fleet:
        gateways = [p.name for p in fleet.programs if p.kind == "ws-gateway"]
        for kill in reconnect_kills():
            for i, (label, rooms) in enumerate(RECONNECT_LAYOUTS):
                prefix = f"recon-{kill}-{rooms}"
                create_rooms(fleet, [f"{prefix}-{r}" for r in range(rooms)])
                victims = gateways[:1] if kill == "one" else gateways
                res = client(
                    "reconnect", "switchboard", fleet.gateway_port, None,
                    "--room", prefix, "--rooms", str(rooms), "--sockets", str(n),
                    "--concurrency", str(RECONNECT_IN_FLIGHT),
                    "--kill-pids", ",".join(str(fleet.pid(v)) for v in victims),
                    "--watch", ",".join(f"{name}={pid}" for name, pid in watched(fleet, victims).items()),
                    "--uid-base", str(800_000 + (i + 2 * (kill == "all")) * 20_000),
                    "--rate", "2", "--before", "3", "--after", "3",
                    timeout=1200,
                )  # fmt: skip
                res["killed_processes"] = victims
                res["gateways"] = len(gateways)
                res["loadavg_after"] = os.getloadavg()
                out[f"{label}_kill_{kill}"] = res
                # The killed gateways back (supervisord), the close storm drained through
                # chat's inbox, before the next layout connects.
                fleet.wait_ready(time.time() + 120, victims)
                time.sleep(10 if n >= 1000 else 3)
    return {db_key("switchboard-reconnect", db): out}


def watched(fleet: Fleet, victims: list[str]) -> dict[str, int]:
    """Every process of the fleet that survives the kill, by name (nginx's worker as
    `nginx-worker`: the master only forks it), whose CPU the storm reports."""
    out = {p.name: fleet.pid(p.name) for p in fleet.programs if p.name not in victims}
    for pid in fleet_pids(fleet):
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == out.get("nginx"):
            out["nginx-worker"] = pid
    return out


RECONNECT_ROWS = (
    # (label, field, target)
    ("sockets dropped (of all)", "dropped", ""),
    ("all back, s", "all_back_s", "≤ 10 s"),
    ("back p50 / p99, s", ("back_p50_s", "back_p99_s"), ""),
    ("not back", "not_back", "0"),
    ("first back, s", "first_back_s", ""),
    ("refused/closed by a gateway", "refused", "0"),
    ("502s while no gateway was up", "no_gateway_502", ""),
    ("exact streams", "exact", "all"),
    ("gaps / duplicates", ("gaps", "duplicates"), "0 / 0"),
    ("drops after all were back", "late_drops", ""),
    ("last seq reached every socket after, s", "delivery_lag_s", ""),
    ("listen overflows (machine)", "listen_overflows.ListenOverflows", ""),
    ("busiest process in the storm, cores", "storm_server_cpu", ""),
    ("client CPU in the storm", "storm_client_cpu", ""),
)


def reconnect_table(results: dict) -> str:
    keys = [k for k in ("switchboard-reconnect", "switchboard-reconnect-postgres") if k in results]
    if not keys:
        return ""
    cols = [(k, v) for k in keys for v in results[k]]
    head = ["reconnect storm (through nginx)", *(f"{v}{' pg' if k.endswith('postgres') else ''}" for k, v in cols)]
    lines = []
    for label, field, target in RECONNECT_ROWS:
        cells = []
        for k, v in cols:
            node = results[k][v]
            if "error" in node:
                cells.append("error")
            elif isinstance(field, tuple):
                cells.append(" / ".join(fmt(node.get(f)) for f in field))
            elif field == "storm_server_cpu":
                busy = list((node.get(field) or {}).items())[:2]
                cells.append(", ".join(f"{name} {cpu:.2f}" for name, cpu in busy) or "n/a")
            elif field == "late_drops":
                cells.append(", ".join(f"{n} × {code}" for code, n in (node.get(field) or {}).items()) or "0")
            elif field == "dropped":
                cells.append(f"{fmt(node.get('dropped'))} of {fmt(node.get('sockets'))}")
            else:
                cells.append(fmt(_get(results[k], v, field)))
        lines.append([label + (f" (target {target})" if target else ""), *cells])
    return markdown(head, lines)


class Reference:
    """The floor or the peer, on a Redis of its own."""

    def __init__(self, name: str, run_dir: Path):
        self.name, self.run_dir = name, run_dir
        self.procs: list[subprocess.Popen] = []

    def __enter__(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        redis_port, self.port = free_port(), free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self._spawn(
            [redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            "redis",
        )
        wait_port(redis_port)
        env = {
            "REDIS_URL": redis_url,
            "SWITCHBOARD_SECRET_KEY": SECRET,
            "SWITCHBOARD_JWT_KEYS": JWT_KEYS,
            "PYTHONPATH": str(ROOT / "services"),
        }
        if self.name == "floor":
            cmd = [PY, str(ROOT / "bench" / "floor.py"), "--port", str(self.port), "--redis", redis_url]
        else:
            cmd = [PY, "-m", "uvicorn", "peer:app", "--app-dir", str(ROOT / "bench"), "--port", str(self.port)]
            cmd += ["--log-level", "warning", "--no-access-log", "--ws-per-message-deflate", "false"]
        self.server = self._spawn(cmd, self.name, env)
        wait_port(self.port)
        return self

    def _spawn(self, cmd: list[str], name: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.run_dir / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=self.run_dir
        )
        self.procs.append(proc)
        return proc

    def __exit__(self, *exc):
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_reference(name: str, scale: dict, run_dir: Path) -> dict:
    with Reference(name, run_dir) as ref:
        # The server and its Redis: what it costs is both, as a fleet's is all of it.
        pids = with_children([ref.server.pid, ref.procs[0].pid])
        return scenarios(name, ref.port, pids, scale, "1 server process + Redis")


# -------------------------------------------------------------------- table ----
def _get(results: dict, target: str, path: str):
    node = results.get(target) or {}
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _client_bound(results: dict, target: str, path: str) -> bool:
    scenario, _, phase = path.partition(".")
    node = (results.get(target) or {}).get(scenario) or {}
    if phase.startswith(("max", "paced")):
        node = node.get(phase.split(".")[0]) or {}
    cpu = node.get("client_cpu") if isinstance(node, dict) else None
    return cpu is not None and cpu >= CLIENT_LIMIT


def rows(scale: dict) -> list[tuple[str, str, str, str]]:
    """(label, path in the results, better: 'high'|'low', target)."""
    out = [
        ("reached", "path", "", ""),
        ("processes measured (CPU, RSS summed)", "processes_measured", "", ""),
    ]
    for n in scale["receivers"]:
        target = "≥50% floor, ≥2× peer" if n >= 1000 else ""
        out.append((f"fan-out {n}: deliveries/s", f"fanout_{n}.max.deliveries_per_s", "high", target))
    top = max(scale["receivers"])
    out.append((f"fan-out {top}: server CPU µs/delivery", f"fanout_{top}.max.server_us_per_delivery", "low", ""))
    out += [
        (f"fan-out {top} @half: p50 ms", f"fanout_{top}.paced.p50_ms", "low", ""),
        (f"fan-out {top} @half: p95 ms", f"fanout_{top}.paced.p95_ms", "low", ""),
        (f"fan-out {top} @half: p99 ms", f"fanout_{top}.paced.p99_ms", "low", "≤50 ms"),
        (f"fan-out {top}: lost", f"fanout_{top}.lost", "low", "0"),
        (f"fan-out {top}: duplicated", f"fanout_{top}.duplicated", "low", "0"),
        (f"fan-out {top}: connects/s (chat)", f"fanout_{top}.connect.connects_per_s", "high", ""),
        (f"fan-out {top}: client processes", f"fanout_{top}.client_procs", "", ""),
        ("round trip p50 ms", "roundtrip.p50_ms", "low", ""),
        ("round trip p99 ms", "roundtrip.p99_ms", "low", ""),
        ("idle: sockets open", "idle.sockets", "", f"{scale['idle']:,}"),
        ("idle: KB/socket (RSS growth, summed)", "idle.rss_per_socket_kb", "low", "≤20 KB"),
        ("idle: connects/s", "idle.connects_per_s", "high", "≥50% floor"),
        ("idle: server CPU ms/connect", "idle.server_ms_per_connect", "low", ""),
        (f"dashboard stats/interval 1 vs {scale['dashboard_viewers']}", "dashboard.queries", "low", "equal"),
    ]
    return out


def derive(results: dict) -> None:
    """Server CPU per delivery and per connect, from each phase's CPU and wall time.

    On a shared machine a server gets whatever share of a core the others leave it, so
    rates move with the load; the CPU a server spends per unit of work moves much less,
    and its ratio is the fairer comparison (docs/performance.md)."""
    nodes = [results.get(t) for t in (*SB_TARGETS, "floor", "peer")]
    for rnd in (results.get("patches") or {}).get("rounds", []):
        nodes += rnd.values()
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("processes"), list):
            node["processes_measured"] = len(node["processes"])
        for name, scenario in node.items():
            if not isinstance(scenario, dict):
                continue
            phase = scenario.get("max")
            measured = isinstance(phase, dict) and phase.get("server_cpu") is not None and phase.get("deliveries")
            if name.startswith("fanout_") and measured:
                cpu_s = phase["server_cpu"] * phase["wall_s"]
                phase["server_us_per_delivery"] = round(cpu_s / phase["deliveries"] * 1e6, 1)
            if name == "idle" and scenario.get("server_cpu") is not None and scenario.get("sockets"):
                cpu_s = scenario["server_cpu"] * scenario["wall_s"]
                scenario["server_ms_per_connect"] = round(cpu_s / scenario["sockets"] * 1000, 3)


def fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.2f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


# Switchboard's columns: on SQLite, on PostgreSQL, its app under uvicorn (on SQLite).
SB_TARGETS = ("switchboard", "switchboard-postgres", "switchboard-uvicorn")
NAMES = {"switchboard": "sb sqlite", "switchboard-postgres": "sb postgres", "switchboard-uvicorn": "sb on uvicorn"}


def table(results: dict, scale: dict) -> str:
    targets = [t for t in (*SB_TARGETS, "floor", "peer") if t in results]
    # One pair of ratio columns per database Switchboard ran on, each from this run.
    dbs = [t for t in SB_TARGETS[:2] if t in results]
    head = ["figure", *(NAMES.get(t, t) if len(dbs) > 1 else t for t in targets)]
    for t in dbs:
        tag = "sb" if len(dbs) == 1 else "pg" if t.endswith("postgres") else "sqlite"
        head += [f"{tag}/floor", f"{tag}/peer"]
    head.append("target")
    lines = []
    for label, path, better, target in rows(scale):
        vals = {t: _get(results, t, path) for t in targets}
        cells = [fmt(v) + ("*" if v is not None and _client_bound(results, t, path) else "") for t, v in vals.items()]
        ratios = []
        for t in dbs:
            sb = vals.get(t)
            for ref in (vals.get("floor"), vals.get("peer")):
                # A row with no better direction (how it was reached, processes) has no ratio.
                ok = better and isinstance(sb, int | float) and isinstance(ref, int | float) and ref
                ratios.append(f"{sb / ref:.2f}" if ok else "")
        lines.append([label, *cells, *ratios, target])
    return markdown(head, lines)


def rooms_table(results: dict) -> str:
    """Connects on the chat route into rooms of each size, through nginx with the fleet's
    default gateway processes, one column per database; the ratios the issue's targets
    are stated in: connects/s against the floor's idle connects/s, CPU per connect at
    each size against its value at the smallest."""
    keys = [k for k in ("switchboard-rooms", "switchboard-rooms-postgres") if k in results]
    if not keys:
        return ""
    sizes = sorted({int(name.split("_")[1]) for k in keys for name in results[k] if name.startswith("members_")})
    floor = _get(results, "floor", "idle.connects_per_s")
    head = [
        "rooms (chat route, through nginx)",
        *("sqlite" if k == keys[0] and not k.endswith("postgres") else "postgres" for k in keys),
    ]
    lines = []
    for n in sizes:
        node = f"members_{n}"
        lines.append(
            [
                f"{n:,} members: fill s (refused)",
                *(
                    f"{fmt(_get(results, k, node + '.fill_s'))} ({fmt(_get(results, k, node + '.fill_failures'))})"
                    for k in keys
                ),
            ]
        )
        lines.append([f"{n:,} members: connects/s", *(fmt(_get(results, k, node + ".connects_per_s")) for k in keys)])
        if isinstance(floor, int | float) and floor:
            lines.append(
                [
                    f"{n:,} members: connects/s ÷ floor's idle connects/s",
                    *(
                        fmt(round(v / floor, 2))
                        if isinstance(v := _get(results, k, node + ".connects_per_s"), int | float)
                        else "n/a"
                        for k in keys
                    ),
                ]
            )
        lines.append(
            [
                f"{n:,} members: fleet CPU ms/connect",
                *(fmt(_get(results, k, node + ".cpu_ms_per_connect")) for k in keys),
            ]
        )
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]

        def grow(k: str) -> str:
            a = _get(results, k, f"members_{lo}.cpu_ms_per_connect")
            b = _get(results, k, f"members_{hi}.cpu_ms_per_connect")
            return f"{b / a:.2f}" if isinstance(a, int | float) and isinstance(b, int | float) and a else "n/a"

        lines.append([f"CPU/connect {hi:,} ÷ {lo:,} (target ≤ 1.5)", *(grow(k) for k in keys)])
    if any(_get(results, k, "storm.storm_sockets") for k in keys):
        lines.append(
            [
                "storm into one room: sockets, refused, s",
                *(
                    f"{fmt(_get(results, k, 'storm.storm_sockets'))}, {fmt(_get(results, k, 'storm.storm_refused'))}, "
                    f"{fmt(_get(results, k, 'storm.storm_s'))}"
                    for k in keys
                ),
            ]
        )
        lines.append(
            [
                "storm: other room's connects p50/max ms",
                *(
                    f"{fmt(_get(results, k, 'storm.probe_p50_ms'))} / {fmt(_get(results, k, 'storm.probe_max_ms'))}"
                    for k in keys
                ),
            ]
        )
    return markdown(head, lines)


def markdown(head: list[str], lines: list[list]) -> str:
    """A Markdown table, its columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [head, *lines]) for i in range(len(head))]

    def line(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in lines)])


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=SCALES, default=os.environ.get("BENCH_SCALE", "full"))
    p.add_argument("--only", default="switchboard,rooms,notify,reconnect,floor,peer")
    p.add_argument("--uvicorn", action="store_true", help="also run ws-gateway's ASGI app under uvicorn")
    p.add_argument(
        "--direct",
        action="store_true",
        help="Switchboard's idle/round trip/fan-out straight to one ws-gateway process, its CPU only (not nginx)",
    )
    p.add_argument(
        "--db",
        default=os.environ.get("BENCH_DB", "sqlite"),
        help="Switchboard's databases, in turn: sqlite, postgres or sqlite,postgres (each service its own)",
    )
    p.add_argument("--serve", action="store_true", help="only boot Switchboard as the bench does, for profiling")
    p.add_argument(
        "--patches-off",
        default="",
        help=f"WS_PATCHES_DISABLE for Switchboard's gateway: patches not to install ({', '.join(switchable_patches())})",
    )
    p.add_argument("--rounds", type=int, default=2, help="--only patches: every variant this many times, in turn")
    p.add_argument(
        "--client-procs",
        default=os.environ.get("BENCH_CLIENT_PROCS", "auto"),
        help="fan-out client processes: auto (more when one was at CLIENT_LIMIT of a core) or a number",
    )
    p.add_argument("--label", default="", help="also keep the JSON as bench/results/<time>-<scale>-<label>.json")
    args = p.parse_args()
    dbs = args.db.split(",")
    if not dbs or any(d not in DATABASES for d in dbs):
        p.error(f"--db: {args.db!r}, not a comma-separated list of {', '.join(DATABASES)}")
    if args.client_procs != "auto" and not args.client_procs.isdigit():
        p.error(f"--client-procs: {args.client_procs!r}, not auto or a number")
    CLIENT_PROCS["value"] = args.client_procs
    if args.patches_off:
        # The gateway's own switch (ws_gateway/patches.disabled() refuses a name that is no patch).
        SWITCHBOARD_ENV["WS_PATCHES_DISABLE"] = args.patches_off

    def stop(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")  # unwinds: every server is stopped

    signal.signal(signal.SIGTERM, stop)
    raise_nofile()
    scale = SCALES[args.scale]
    run_root = ROOT / "var" / "bench"
    shutil.rmtree(run_root, ignore_errors=True)
    if args.serve:
        return serve_switchboard(scale, run_root / "fleet")
    started = datetime.now(UTC)
    results: dict = {"machine": machine(), "scale": args.scale, "started": started.isoformat(), "databases": dbs}
    if args.patches_off:
        results["patches_off"] = args.patches_off
    for target in args.only.split(","):
        print(f"== {target}", flush=True)
        t0 = time.time()
        if target == "switchboard":
            for db in dbs:
                print(f"   on {db}", flush=True)
                results.update(run_switchboard(scale, run_root / f"fleet-{db}", args.uvicorn, db, args.direct))
        elif target == "rooms":
            for db in dbs:
                print(f"   on {db}", flush=True)
                results.update(run_rooms(scale, run_root / f"rooms-{db}", db))
        elif target == "notify":
            for db in dbs:
                print(f"   on {db}", flush=True)
                results.update(run_notify(args.scale, run_root / f"notify-{db}", db))
        elif target == "reconnect":
            for db in dbs:
                print(f"   on {db}", flush=True)
                results.update(run_reconnect(scale, run_root / f"reconnect-{db}", db))
        elif target == "patches":
            results.update(run_patches(scale, run_root / "patches", args.rounds))
        else:
            results[target] = run_reference(target, scale, run_root / target)
        print(f"   {time.time() - t0:.0f} s", flush=True)
    derive(results)
    text = table(results, scale) if any(t in results for t in (*SB_TARGETS, "floor", "peer")) else ""
    for extra in (rooms_table(results), notify_table(results), reconnect_table(results)):
        if extra:
            text = f"{text}\n\n{extra}" if text else extra
    if "patches" in results:
        text = (text + "\n\n" if any(t in results for t in (*SB_TARGETS, "floor", "peer")) else "") + patches_table(
            results, scale
        )
    results["table"] = text
    print()
    print(text)
    print(f"\n* client CPU ≥ {CLIENT_LIMIT:.0%} of a core in that phase: the client may be the limit")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    # Every full run is kept (docs/performance.md cites one); smoke runs only as latest.
    paths = [RESULTS / f"latest-{args.scale}.json"]
    if args.scale == "full" or args.label:
        paths.append(RESULTS / f"{stamp}-{args.scale}{'-' + args.label if args.label else ''}.json")
    for path in paths:
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"figures: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()
