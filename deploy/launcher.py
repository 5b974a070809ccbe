"""The local launcher: the whole fleet as processes on one machine, under supervisord.

One launcher serves `make run` and the end-to-end tests (tests-e2e/conftest.py):

    python deploy/launcher.py run            # foreground; Ctrl-C stops everything

It picks free ports, writes supervisord's and nginx's configs into a run directory,
starts Redis (unless REDIS_URL is set), migrates and seeds every service's database,
then starts every process kind of deploy/fleet.py (PROCESSES; ws-gateway
WS_GATEWAY_PROCESSES times) and nginx in front. The fleet's processes are defined there,
once, for compose and k8s too; this file adds only what is local. supervisord is the
process manager: it restarts what crashes, and tests use it to stop, start and kill
single processes (`Fleet.ctl`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES_DIR = ROOT / "services"
sys.path.insert(0, str(SERVICES_DIR))
sys.path.insert(0, str(ROOT / "gateway"))

from fleet import PROCESSES, SERVICES, Role, daphne_command  # noqa: E402,F401  (re-exported)

from nginxconf import render as render_nginx  # noqa: E402
from switchboard.config import SettingsError, env_int, validate  # noqa: E402
from switchboard.config import default as setting_default  # noqa: E402

_handed_out: set[int] = set()


def free_port() -> int:
    """A port that is free now and that this process has not handed out before.

    A fleet's ports are picked before any of its programs binds them, and the kernel
    may offer a port it just offered again (seen: chat-http given chat-inbox's metrics
    port, a fleet that never started), so each one is handed out once."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class Program:
    name: str
    service: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    http_port: int | None = None
    metrics_port: int | None = None
    priority: int = 100
    kind: str = ""  # its fleet.Process name ("" for redis and nginx)
    owner: str = ""  # the fleet service it belongs to
    metrics_path: str = "/metrics"  # on metrics_port, or on http_port when it has none


@dataclass
class Fleet:
    run_dir: Path
    gateway_port: int = 8080
    ws_gateway_processes: int = 1
    redis_url: str | None = None  # None: start a redis-server for this run
    env: dict[str, str] = field(default_factory=dict)
    console: bool = False  # programs' output to the terminal (make run) or to files
    # Extra environment per service name, e.g. {"chat": {"DATABASE_URL": ...}}: each
    # service owns its database, so the fault campaign points each at its own.
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    programs: list[Program] = field(default_factory=list)

    def settings(self) -> dict[str, str]:
        """The environment every process of this fleet starts with (after plan())."""
        return {**os.environ, **self.base_env}

    def setting(self, name: str) -> str:
        """A declared setting as this fleet's processes see it."""
        return self.settings().get(name) or setting_default(name)

    # ------------------------------------------------------------- planning ----
    def plan(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        self.redis_port = None
        if self.redis_url is None:
            self.redis_port = free_port()
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.base_env = {
            "PYTHONPATH": str(SERVICES_DIR),
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": self.redis_url,
            "SWITCHBOARD_DATA_DIR": str(self.run_dir / "data"),
            # The environment's own list wins (a shop's site on another port must open
            # sockets: docs/quickstart.md); without one, this fleet's gateway origin.
            "ALLOWED_ORIGINS": os.environ.get("ALLOWED_ORIGINS")
            or f"http://127.0.0.1:{self.gateway_port},http://localhost:{self.gateway_port}",
            "SERVICE_URLS": f"http://127.0.0.1:{self.gateway_port}",  # nginx routes every path
            **self.env,
        }
        # Processes refuse the documented default secrets (SWITCHBOARD_DEBUG=0): unless
        # the environment sets them, the fleet uses this checkout's own random ones.
        missing = [n for n in LOCAL_SECRETS if n not in os.environ and n not in self.base_env]
        if missing:
            kept = local_secrets()
            self.base_env.update({n: kept[n] for n in missing})
        py = sys.executable
        self.programs = []
        if self.redis_port:
            self.programs.append(
                Program(
                    "redis",
                    "redis",
                    [
                        redis_server(),
                        "--port",
                        str(self.redis_port),
                        "--bind",
                        "127.0.0.1",
                        # Celery's broker: a report queued (202) or running must
                        # survive a Redis restart, so the queue and its unacknowledged
                        # tasks are kept in an append-only file (as compose does); the
                        # fault campaign's Redis-restart row with a report in flight
                        # lost the queued one without it.
                        "--save",
                        "",
                        "--appendonly",
                        "yes",
                        "--dir",
                        str(self.run_dir),
                    ],
                    priority=1,
                )
            )
        for proc in PROCESSES:
            # Locally: WS_GATEWAY_PROCESSES gateways, every other kind as many as it must run
            # to do its job here (two publishers: one takes over from the other).
            copies = self.ws_gateway_processes if proc.role == Role.GATEWAY else proc.replicas
            for i in range(copies):
                name = f"{proc.name}-{i}" if copies > 1 or proc.role == Role.GATEWAY else proc.name
                # The service's own environment too (its database): every process is that service.
                env = {
                    "DJANGO_SETTINGS_MODULE": proc.service.settings,
                    "SERVICE_NAME": name,
                    **proc.env,
                    **self.service_env.get(proc.service.name, {}),
                }
                http_port = free_port() if proc.http else None
                metrics_port = free_port() if proc.own_metrics else None
                if metrics_port:
                    env["METRICS_PORT"] = str(metrics_port)
                if proc.port_setting:
                    env[proc.port_setting] = str(http_port)
                command = proc.command(
                    bind="127.0.0.1",
                    port=http_port or 0,
                    settings={**self.settings(), **self.service_env.get(proc.service.name, {})},
                    python=py,
                )
                self.programs.append(
                    Program(
                        name,
                        proc.serves or proc.service.name,
                        command,
                        env=env,
                        http_port=http_port,
                        metrics_port=metrics_port,
                        kind=proc.name,
                        owner=proc.service.name,
                        metrics_path=proc.metrics[1],
                    )
                )
        upstreams: dict[str, list[str]] = {}
        for p in self.programs:
            if p.http_port:
                upstreams.setdefault(p.service, []).append(f"127.0.0.1:{p.http_port}")
        nginx_conf = self.run_dir / "nginx.conf"
        nginx_conf.write_text(
            render_nginx(
                upstreams,
                f"127.0.0.1:{self.gateway_port}",
                self.run_dir,
                backlog=int(self.setting("LISTEN_BACKLOG")),
            )
        )
        self.programs.append(
            Program(
                "nginx",
                "gateway",
                [nginx_binary(), "-p", str(self.run_dir), "-c", str(nginx_conf), "-g", "daemon off;"],
                priority=900,
            )
        )
        self.write_supervisor_conf()
        (self.run_dir / "ports.json").write_text(
            json.dumps(
                {
                    p.name: {
                        "http": p.http_port,
                        "metrics": p.metrics_port,
                        "kind": p.kind,
                        "service": p.owner,
                        "metrics_path": p.metrics_path,
                    }
                    for p in self.programs
                },
                indent=2,
            )
        )

    def write_supervisor_conf(self) -> None:
        run = self.run_dir
        lines = [
            "[supervisord]",
            f"logfile={run / 'logs' / 'supervisord.log'}",
            f"pidfile={run / 'supervisord.pid'}",
            "nodaemon=true",
            "[unix_http_server]",
            f"file={run / 'supervisor.sock'}",
            "[supervisorctl]",
            f"serverurl=unix://{run / 'supervisor.sock'}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        ]
        for p in self.programs:
            env = {**self.base_env, **p.env}
            env_line = ",".join(f'{k}="{v}"'.replace("%", "%%") for k, v in env.items())
            out = "/dev/stdout" if self.console else str(run / "logs" / f"{p.name}.log")
            lines += [
                f"[program:{p.name}]",
                "command=" + " ".join(_quote(c) for c in p.command),
                f"directory={ROOT}",
                f"environment={env_line}",
                f"priority={p.priority}",
                "autostart=false",
                "autorestart=true",
                "startsecs=1",
                "startretries=20",
                "stopasgroup=true",
                "killasgroup=true",
                "stopwaitsecs=10",
                "redirect_stderr=true",
                f"stdout_logfile={out}",
                "stdout_logfile_maxbytes=0" if self.console else "stdout_logfile_maxbytes=20MB",
            ]
        (run / "supervisord.conf").write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------- running ----
    def prepare(self) -> None:
        """Migrate and seed every service's database (idempotent)."""
        for svc in SERVICES:
            env = {
                **os.environ,
                **self.base_env,
                "DJANGO_SETTINGS_MODULE": svc.settings,
                **self.service_env.get(svc.name, {}),
            }
            subprocess.run(
                [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
            )
            if svc.seed:
                subprocess.run(
                    [sys.executable, "-m", "django", "seed_demo"],
                    env=env,
                    cwd=ROOT,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )

    def start(self, wait: float = 60) -> None:
        """Start supervisord in the background and wait until everything answers."""
        self.plan()
        # A setting that does not parse is refused here, before any process starts and
        # crash-loops on it under supervisord (each would refuse it too).
        for overrides in [{}, *self.service_env.values()]:
            validate({**self.settings(), **overrides})
        (self.run_dir / "supervisor.sock").unlink(missing_ok=True)  # left by a killed run
        self.supervisord = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.run_dir / "supervisord.conf")],
            cwd=ROOT,
            start_new_session=not self.console,
            stdout=None if self.console else subprocess.DEVNULL,
        )
        deadline = time.time() + wait
        while not (self.run_dir / "supervisor.sock").exists():
            self._check_alive(deadline)
            time.sleep(0.1)
        if self.redis_port:
            self.ctl("start", "redis")
            self.wait_redis(deadline)
        self.prepare()
        self.ctl("start", "all")
        self.wait_ready(deadline)

    def _check_alive(self, deadline: float) -> None:
        if self.supervisord.poll() is not None:
            raise RuntimeError("supervisord exited; see " + str(self.run_dir / "logs"))
        if time.time() > deadline:
            raise TimeoutError("fleet did not start in time; see " + str(self.run_dir / "logs"))

    def wait_redis(self, deadline: float) -> None:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            self._check_alive(deadline)
            time.sleep(0.1)

    def wait_ready(self, deadline: float, programs: list[str] | None = None) -> None:
        urls = []
        for p in self.programs:
            if programs and p.name not in programs:
                continue
            if p.http_port:
                urls.append(f"http://127.0.0.1:{p.http_port}/healthz")
            if p.metrics_port:
                urls.append(f"http://127.0.0.1:{p.metrics_port}/healthz")
        if not programs or "nginx" in programs:
            urls.append(f"{self.url}/healthz")
        for url in urls:
            while not _answers(url):
                self._check_alive(deadline)
                time.sleep(0.1)

    def ctl(self, *args: str, check: bool = True) -> str:
        """supervisorctl's output; a failed command raises (a fault test that stops
        Redis must not go on as if it had). `status` exits non-zero whenever a program
        is not RUNNING: callers reading it pass check=False."""
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.run_dir / "supervisord.conf"), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"supervisorctl {' '.join(args)}: exit {result.returncode}: {result.stdout}{result.stderr}"
            )
        return result.stdout

    def pid(self, program: str) -> int:
        return int(self.ctl("pid", program).strip())

    def kill(self, program: str, sig: int = signal.SIGKILL) -> None:
        """Kill a program as a crash would; supervisord restarts it."""
        os.kill(self.pid(program), sig)

    def restart(self, program: str, wait: float = 30) -> None:
        self.ctl("restart", program)
        self.wait_ready(time.time() + wait, [program])

    def program(self, name: str) -> Program:
        return next(p for p in self.programs if p.name == name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}"

    def stop(self) -> None:
        if getattr(self, "supervisord", None) and self.supervisord.poll() is None:
            self.supervisord.send_signal(signal.SIGTERM)
            try:
                self.supervisord.wait(30)
            except subprocess.TimeoutExpired:
                self.supervisord.kill()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as res:
            return res.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _quote(arg: str) -> str:
    if arg == "":
        return '""'
    return f'"{arg}"' if any(c in arg for c in " ;'") else arg


LOCAL_SECRETS = ("SWITCHBOARD_SECRET_KEY", "SWITCHBOARD_JWT_KEYS")
LOCAL_SECRETS_FILE = ROOT / "var" / "local-secrets.json"


def local_secrets(path: Path | None = None) -> dict[str, str]:
    """This checkout's secrets for `make run`: made at random on first use and kept (mode
    0600, in var/) so that sessions and tokens outlive a restart."""
    path = path or LOCAL_SECRETS_FILE
    try:
        kept = json.loads(path.read_text())
        if set(LOCAL_SECRETS) <= set(kept):
            return kept
    except (OSError, ValueError):
        pass
    kept = {
        "SWITCHBOARD_SECRET_KEY": secrets.token_urlsafe(48),
        "SWITCHBOARD_JWT_KEYS": f"local-{secrets.token_hex(4)}:{secrets.token_urlsafe(48)}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept))
    tmp.chmod(0o600)
    tmp.replace(path)
    return kept


def redis_server() -> str:
    path = shutil.which("redis-server")
    if not path:
        sys.exit("redis-server not found: run `make deps` (installs Debian's redis-server) or set REDIS_URL")
    return path


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not path:
        sys.exit("nginx not found: run `make deps` (installs Debian's nginx) or install nginx yourself")
    return path


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        sys.exit("usage: launcher.py run")
    try:
        validate()
    except SettingsError as exc:
        sys.exit(f"launcher: {exc}")
    fleet = Fleet(
        run_dir=ROOT / "var" / "run",
        gateway_port=env_int("GATEWAY_PORT"),
        ws_gateway_processes=env_int("WS_GATEWAY_PROCESSES"),
        # An explicitly configured Redis is used; otherwise one is started for the run.
        redis_url=os.environ.get("REDIS_URL") or None,
        console=True,
    )
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    fleet.start(wait=120)
    print(f"\n  Switchboard is up: {fleet.url}  (users alice, bob, admin; Ctrl-C stops)\n", flush=True)
    while not stop and fleet.supervisord.poll() is None:
        time.sleep(0.5)
    fleet.stop()


if __name__ == "__main__":
    main()
