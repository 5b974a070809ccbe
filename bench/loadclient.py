"""The load client of `make bench`: many sockets in one asyncio process, one scenario per run.

    python bench/loadclient.py fanout --target switchboard --port 8001 --receivers 1000
    python bench/loadclient.py roundtrip --target floor --port 9001
    python bench/loadclient.py idle --target peer --port 9002 --sockets 10000 --pids 1234,1235
    python bench/loadclient.py fanout --target floor --port 9001 --receivers 1000 --client-procs 2

It speaks the same chat to three servers (adapters below): Switchboard's chat route,
the floor (bench/floor.py) and the peer (bench/peer.py, Socket.IO). It prints one JSON
object with the figures and its own CPU use per phase (`client_cpu`, fraction of one
core) and the server's when --pids (or --server-pid) is given, summed over every pid
(bench/procstat.py; idle's RSS too): a phase where the client sits near 1.0 measured
the client, not the server, and the runner flags it. `--client-procs N` splits a
fan-out's receivers over N processes (Workers); `client_cpu` is then the busiest's.

Messages carry their number in the first 9 characters and are padded to
--message-bytes; send times stay in this process, so latency is one clock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from procstat import cpu_seconds, growth_by_process, rss_by_pid  # noqa: E402
from wsproto_min import HandshakeError, WSClient  # noqa: E402

from switchboard.tokens import Identity, issue  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# client_id prefix of this run: Switchboard stores a (user, client_id) once, so a rerun
# with the same ids would be answered as resends (to the sender only).
RUN = os.urandom(4).hex()


# ----------------------------------------------------------------- targets ----
class Target:
    """How one server spells the same chat. parse() returns (kind, message text)."""

    name = ""
    ready_ping = False  # the route sends no first frame: a pong marks it ready
    staff = False  # tokens for staff users (staff-only routes)

    def path(self, room: str) -> str:
        return f"/ws/chat/{room}/"

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def chat(self, message: str, client_id: str) -> bytes:
        return orjson.dumps({"type": "chat_message", "message": message, "client_id": client_id})

    def parse(self, ws: WSClient, payload: bytes) -> tuple[str, str | None]:
        # Cheap prefix checks first: most frames in a join storm are presence frames.
        if payload.startswith(b'{"type":"chat_message"'):
            return "chat", orjson.loads(payload)["message"]
        if payload.startswith((b'{"type":"history"', b'{"type":"pong"')):
            return "ready", None
        if payload.startswith(b'{"type":"error"'):
            return "error", payload.decode()
        return "other", None


class Switchboard(Target):
    name = "switchboard"


class SwitchboardTasks(Target):
    """Switchboard's /ws/tasks/ route: served by ws-gateway alone (no service behind it),
    so the idle scenario measures the gateway's own cost per socket and per connect."""

    name = "switchboard"
    ready_ping = True

    def path(self, room: str) -> str:
        return "/ws/tasks/"


class Floor(Target):
    """bench/floor.py: the client's frame relayed as is; a history frame marks ready."""

    name = "floor"


class Peer(Target):
    """Socket.IO (Engine.IO v4) over a raw WebSocket: 0 open, 40 connect, 42 event, 2/3 ping."""

    name = "peer"

    def __init__(self):
        self.auth: dict[int, bytes] = {}

    def path(self, room: str) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    def headers(self, token: str) -> dict[str, str]:
        return {}

    def prepare(self, ws: WSClient, token: str, room: str) -> None:
        ws.state["auth"] = b"40" + orjson.dumps({"token": token, "room": room})

    def chat(self, message: str, client_id: str) -> bytes:
        return b"42" + orjson.dumps(["chat_message", {"message": message, "client_id": client_id}])

    def parse(self, ws: WSClient, payload: bytes) -> tuple[str, str | None]:
        if payload.startswith(b'42["chat_message"'):
            return "chat", orjson.loads(payload[2:])[1]["message"]
        if payload == b"2":
            ws.send(b"3")
            return "other", None
        if payload.startswith(b"40"):
            return "ready", None
        if payload.startswith(b"0"):
            ws.send(ws.state["auth"])
            return "other", None
        if payload.startswith(b"44"):
            return "error", payload.decode()
        return "other", None


class SwitchboardDashboard(SwitchboardTasks):
    """Switchboard's staff dashboard: viewers that only watch stats_update frames."""

    staff = True

    def path(self, room: str) -> str:
        return "/ws/dashboard/"


TARGETS = {
    "switchboard": Switchboard,
    "switchboard-tasks": SwitchboardTasks,
    "switchboard-dashboard": SwitchboardDashboard,
    "floor": Floor,
    "peer": Peer,
}


# ------------------------------------------------------------------ meters ----
class Meter:
    """CPU of this process and, if known, of the server, over one phase. The server is
    one pid or several (`--pids`: every process of a fleet, nginx and Redis included;
    the floor's or the peer's server and its Redis), summed (procstat.cpu_seconds)."""

    def __init__(self, server_pid: int | None, more_pids: tuple[int, ...] = ()):
        self.server_pids = tuple(p for p in (server_pid, *more_pids) if p)
        self.start()

    @staticmethod
    def _self_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def _server_cpu(self) -> float | None:
        return cpu_seconds(self.server_pids) if self.server_pids else None

    def start(self) -> None:
        self.t0, self.c0, self.s0 = time.perf_counter(), self._self_cpu(), self._server_cpu()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.t0
        out = {"wall_s": round(wall, 3), "client_cpu": round((self._self_cpu() - self.c0) / wall, 3)}
        s1 = self._server_cpu()
        if s1 is not None and self.s0 is not None:
            out["server_cpu"] = round((s1 - self.s0) / wall, 3)
        return out


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


# --------------------------------------------------------------- the room ----
class Room:
    """Sockets of one scenario and what they received."""

    def __init__(self, args, target: Target):
        self.args, self.target = args, target
        self.sockets: list[WSClient] = []
        self.last_frame = time.perf_counter()
        self.frames = 0
        self.frame_bytes = 0
        self.errors: list[str] = []
        # fan-out bookkeeping, indexed by message number
        self.sent_at: list[float] = []
        self.delivered: list[int] = []
        self.first_send = 0.0
        self.last_delivery = 0.0
        self.receivers = 0
        self.inflight = 0
        self.done = asyncio.Event()
        self.duplicates = 0
        self.latencies: list[float] | None = None
        # A receiving worker (--client-procs > 1) has no send times: it logs (n, when)
        # and calls on_complete(n) once all its receivers have message n.
        self.recv_log: list[tuple[int, float]] | None = None
        self.on_complete = None
        self.echo: asyncio.Future | None = None

    def on_message(self, ws: WSClient, payload: bytes) -> None:
        now = time.perf_counter()
        self.last_frame = now
        self.frames += 1
        self.frame_bytes += len(payload)
        kind, text = self.target.parse(ws, payload)
        if kind == "chat":
            n = int(text[:9])
            role = ws.state["role"]
            if role == "receiver":
                seen: bytearray = ws.state["seen"]
                if n >= len(seen):
                    seen.extend(bytes(n - len(seen) + 1024))
                if seen[n]:
                    self.duplicates += 1
                    return
                seen[n] = 1
                if n >= len(self.delivered):
                    self.grow(n)
                self.delivered[n] += 1
                self.last_delivery = now
                if self.recv_log is not None:
                    self.recv_log.append((n, now))
                elif self.latencies is not None:
                    self.latencies.append(now - self.sent_at[n])
                if self.delivered[n] == self.receivers:
                    if self.on_complete is not None:
                        self.on_complete(n)
                    else:
                        self.inflight -= 1
                        self.done.set()
            elif role == "echo" and self.echo is not None and not self.echo.done():
                self.echo.set_result(now)
        elif kind == "ready":
            fut = ws.state.get("ready")
            if fut is not None and not fut.done():
                fut.set_result(now)
        elif kind == "error":
            self.errors.append(text[:200])
            fut = ws.state.get("ready")
            if fut is not None and not fut.done():
                fut.set_exception(RuntimeError(text[:200]))

    async def open_one(self, room: str, uid: int, role: str, token: str) -> WSClient:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        state = {"role": role, "ready": ready, "seen": bytearray()}

        def on_message(ws, payload):
            self.on_message(ws, payload)

        def factory():
            ws = WSClient(
                f"{self.args.host}:{self.args.port}", self.target.path(room), self.target.headers(token), on_message
            )
            ws.state = state
            if isinstance(self.target, Peer):
                self.target.prepare(ws, token, room)
            return ws

        _, ws = await loop.create_connection(factory, self.args.host, self.args.port)
        await ws.opened
        if self.target.ready_ping:
            ws.send(b'{"type":"ping"}')
        # Ready, or closed by the server (e.g. 1013 when its service is behind).
        await asyncio.wait([ready, ws.closed], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ws.transport.abort()
            raise RuntimeError(f"not ready; close code {ws.close_code}")
        self.sockets.append(ws)
        return ws

    async def open_many(self, specs: list[tuple[str, int, str]], concurrency: int) -> tuple[float, int]:
        """Open every (room, uid, role); returns (seconds, failures)."""
        tokens = [issue(Identity(uid, f"u{uid}", self.target.staff), ttl=86400) for _, uid, _ in specs]
        sem = asyncio.Semaphore(concurrency)
        failures = 0

        async def one(spec, token):
            nonlocal failures
            async with sem:
                try:
                    await self.open_one(spec[0], spec[1], spec[2], token)
                except Exception as exc:  # counted and shown: a refused socket is a finding
                    failures += 1
                    if len(self.errors) < 20:
                        self.errors.append(f"connect: {exc!r}"[:200])

        t0 = time.perf_counter()
        await asyncio.gather(*(one(s, t) for s, t in zip(specs, tokens, strict=True)))
        return time.perf_counter() - t0, failures

    async def quiet(self, gap: float = 1.0, limit: float = 300.0) -> float:
        """Wait until no frame arrived for `gap` seconds (the join storm is over)."""
        t0 = time.perf_counter()
        while time.perf_counter() - self.last_frame < gap and time.perf_counter() - t0 < limit:
            await asyncio.sleep(0.1)
        return time.perf_counter() - t0

    async def close_all(self) -> None:
        for ws in self.sockets:
            ws.close()
        if self.sockets:
            await asyncio.wait([asyncio.ensure_future(asyncio.shield(ws.closed)) for ws in self.sockets], timeout=30)
        self.sockets = []

    # ------------------------------------------------------------ fan-out ----
    def message(self, n: int) -> str:
        head = f"{n:09d}|"
        return head + "x" * max(0, self.args.message_bytes - len(head))

    def grow(self, n: int) -> None:
        grow = n + 1024 - len(self.delivered)
        self.sent_at.extend([0.0] * grow)
        self.delivered.extend([0] * grow)

    def send(self, sender: WSClient, n: int) -> None:
        if n >= len(self.sent_at):
            self.grow(n)
        self.sent_at[n] = time.perf_counter()
        self.inflight += 1
        sender.send(self.target.chat(self.message(n), f"{RUN}-{n}"))

    async def drain(self, upto: int, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while self.inflight > 0 and time.perf_counter() < deadline:
            self.done.clear()
            try:
                await asyncio.wait_for(self.done.wait(), max(0.01, deadline - time.perf_counter()))
            except TimeoutError:
                break


class Workers:
    """The fan-out's receivers in --client-procs processes of their own (`fanout-recv`),
    so a floor that outruns one client process is not measured as the client's limit.

    Each worker opens its share of the receivers (every --client-procs'th), reports each
    message number once all its receivers have it ("d <n>"), and per phase its CPU and
    what its receivers got ("j <json>"); this process sends, and counts a message
    delivered to everyone when every worker has reported it. Receivers are disjoint
    sets of sockets, so deliveries, lost and duplicated add up exactly; latencies are
    the workers' receive times (CLOCK_MONOTONIC, one clock for the machine) minus this
    process's send times."""

    def __init__(self, args, room: Room):
        self.args, self.room = args, room
        self.procs: list[asyncio.subprocess.Process] = []
        self.replies: list[asyncio.Queue] = []
        self.reported: dict[int, int] = {}
        self.tasks: list[asyncio.Task] = []
        self.live = 0  # workers with receivers: a message is everyone's when all of them said so

    async def start(self) -> None:
        a = self.args
        for k in range(a.client_procs):
            cmd = [sys.executable, __file__, "fanout-recv", "--target", a.target, "--host", a.host]
            cmd += ["--port", str(a.port), "--room", a.room, "--uid-base", str(a.uid_base)]
            cmd += ["--receivers", str(a.receivers), "--users", str(a.users), "--client-procs", str(a.client_procs)]
            cmd += ["--worker", str(k), "--concurrency", str(max(1, a.concurrency // a.client_procs))]
            # The paced phase's receive log comes back as one line: no 64 KiB line limit.
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**30
            )
            self.procs.append(proc)
            self.replies.append(asyncio.Queue())
            self.tasks.append(asyncio.ensure_future(self._read(proc, self.replies[-1])))

    async def _read(self, proc, replies: asyncio.Queue) -> None:
        room = self.room
        while line := await proc.stdout.readline():
            if line.startswith(b"d "):
                n = int(line[2:])
                got = self.reported[n] = self.reported.get(n, 0) + 1
                if got == self.live:
                    room.inflight -= 1
                    room.done.set()
            elif line.startswith(b"j "):
                replies.put_nowait(orjson.loads(line[2:]))
        replies.put_nowait({"error": f"worker exited ({await proc.wait()})"})

    async def ask(self, command: str) -> list[dict]:
        for proc in self.procs:
            proc.stdin.write(command.encode() + b"\n")
            await proc.stdin.drain()
        return [await q.get() for q in self.replies]

    async def ready(self) -> list[dict]:
        out = [await q.get() for q in self.replies]
        self.live = sum(1 for r in out if r.get("receivers"))
        return out

    async def stop(self) -> None:
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
        for t in self.tasks:
            t.cancel()


def cpus(own: dict, workers: list[dict]) -> dict:
    """One phase's client CPU over every client process: `client_cpu` is the busiest
    one's (the runner's `*`: any client process near a core), `client_cpus` each."""
    each = [own["client_cpu"], *(w.get("client_cpu", 0.0) for w in workers)]
    return {**own, "client_cpu": max(each), "client_cpus": each}


async def scenario_fanout(args, target: Target) -> dict:
    room = Room(args, target)
    meter = Meter(args.server_pid, args.pids)
    # Receivers are sockets of --users users (tabs): each user's first socket in a room
    # makes Switchboard broadcast user_join and the whole online list, so a room of N
    # distinct users costs O(N^2) frames to fill (docs/performance.md).
    users = args.users or args.receivers
    specs = [(args.room, args.uid_base + i % users, "receiver") for i in range(args.receivers)]
    sender_spec = (args.room, args.uid_base + args.receivers, "sender")
    workers = Workers(args, room) if args.client_procs > 1 else None
    if workers is None:
        elapsed, failures = await room.open_many([*specs, sender_spec], args.concurrency)
        storm = await room.quiet()
        frames, frame_bytes, connect_cpu = room.frames, room.frame_bytes, meter.stop()
        room.receivers = sum(1 for ws in room.sockets if ws.state["role"] == "receiver")
    else:
        await workers.start()
        _, failures = await room.open_many([sender_spec], 1)
        ready = await workers.ready()
        if any("error" in r for r in ready):
            raise RuntimeError(f"a receiving worker failed: {ready}")
        connect_cpu = cpus(meter.stop(), ready)
        elapsed = max(r["elapsed"] for r in ready)
        failures += sum(r["failures"] for r in ready)
        storm = max(r["settle"] for r in ready)
        frames = room.frames + sum(r["frames"] for r in ready)
        frame_bytes = room.frame_bytes + sum(r["frame_bytes"] for r in ready)
        room.receivers = sum(r["receivers"] for r in ready)
    connect = {
        **connect_cpu,
        "sockets": len(specs) + 1,
        "failures": failures,
        "connects_per_s": round((len(specs) + 1) / elapsed, 1),
        "settle_s": round(storm, 2),
        # What the join storm cost the server to send, whatever the machine's load.
        "frames": frames,
        "frame_kb": round(frame_bytes / 1024),
    }
    sender = next(ws for ws in room.sockets if ws.state["role"] == "sender")

    # 1. maximum rate, with at most `window` messages not yet delivered to everyone
    if workers:
        await workers.ask("mark")  # each worker's phase starts here too
    meter.start()
    n = 0
    t0 = room.first_send = time.perf_counter()
    while time.perf_counter() - t0 < args.duration:
        while room.inflight >= args.window:
            room.done.clear()
            try:
                await asyncio.wait_for(room.done.wait(), 10)
            except TimeoutError:
                break
            if room.inflight >= args.window and time.perf_counter() - t0 > args.duration + 10:
                break
        room.send(sender, n)
        n += 1
        if n % args.window == 0:
            await asyncio.sleep(0)  # let receptions run between bursts
    await room.drain(n, 15)
    max_phase = meter.stop()
    max_sent = n
    if workers:
        # "mark lat": this phase's figures, then log receive times for the paced phase.
        marks = await workers.ask(f"mark {max_sent} lat")
        max_phase = cpus(max_phase, marks)
        deliveries = sum(m["delivered"] for m in marks)
        last_delivery = max(m["last_delivery"] for m in marks)
    else:
        deliveries = sum(room.delivered[:max_sent])
        last_delivery = room.last_delivery
    span = max(1e-9, last_delivery - t0)
    rate = deliveries / span

    # 2. paced at half that rate: latency of every delivery
    per_second = max(1.0, rate / max(1, room.receivers) / 2)
    room.latencies = []
    meter.start()
    start_n = n
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < args.duration:
        due = t0 + i / per_second
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        room.send(sender, n)
        n += 1
        i += 1
    # Generous: on a loaded machine a late message must not be counted as lost.
    await room.drain(n, 60)
    paced_phase = meter.stop()
    expected = n * room.receivers
    duplicates, errors = room.duplicates, room.errors
    if workers:
        ends = await workers.ask(f"end {n}")
        paced_phase = cpus(paced_phase, ends)
        lat = [t - room.sent_at[m] for e in ends for m, t in e["recv_log"]]
        got = sum(e["got"] for e in ends)
        duplicates += sum(e["duplicates"] for e in ends)
        errors = errors + [x for e in ends for x in e["errors"]]
        await workers.stop()
    else:
        lat = room.latencies
        got = sum(room.delivered[:n])
    await room.close_all()
    return {
        "scenario": "fanout",
        "target": target.name,
        "receivers": room.receivers,
        "users": users,
        "client_procs": args.client_procs,
        "message_bytes": args.message_bytes,
        "window": args.window,
        "connect": connect,
        "max": {
            **max_phase,
            "messages": max_sent,
            "deliveries": deliveries,
            "deliveries_per_s": round(rate, 1),
            "messages_per_s": round(rate / max(1, room.receivers), 2),
        },
        "paced": {
            **paced_phase,
            "messages": n - start_n,
            "messages_per_s": round(per_second, 2),
            "p50_ms": _ms(percentile(lat, 50)),
            "p95_ms": _ms(percentile(lat, 95)),
            "p99_ms": _ms(percentile(lat, 99)),
            "samples": len(lat),
        },
        "lost": expected - got,
        "duplicated": duplicates,
        "errors": errors[:10],
    }


async def scenario_fanout_recv(args, target: Target) -> None:
    """One receiving worker of a fan-out over --client-procs processes (see Workers):
    commands on stdin, reports on stdout; prints no result of its own."""
    room = Room(args, target)
    meter = Meter(None)
    users = args.users or args.receivers
    mine = range(args.worker, args.receivers, args.client_procs)
    specs = [(args.room, args.uid_base + i % users, "receiver") for i in mine]
    out = sys.stdout

    def say(kind: str, payload) -> None:
        out.write(f"{kind} {payload}\n")
        out.flush()

    room.on_complete = lambda n: say("d", n)
    elapsed, failures = await room.open_many(specs, args.concurrency)
    settle = await room.quiet()
    room.receivers = len(room.sockets)
    ready = {**meter.stop(), "elapsed": elapsed, "failures": failures, "settle": settle}
    ready |= {"frames": room.frames, "frame_bytes": room.frame_bytes, "receivers": room.receivers}
    say("j", orjson.dumps(ready).decode())
    meter.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "mark":
            upto = int(line[1]) if len(line) > 1 else 0
            mark = {**meter.stop(), "delivered": sum(room.delivered[:upto]), "last_delivery": room.last_delivery}
            if "lat" in line:
                room.recv_log = []
            say("j", orjson.dumps(mark).decode())
            meter.start()
        elif line[0] == "end":
            upto = int(line[1])
            end = {**meter.stop(), "got": sum(room.delivered[:upto]), "duplicates": room.duplicates}
            end |= {"recv_log": room.recv_log or [], "errors": room.errors[:10]}
            say("j", orjson.dumps(end).decode())
            break
    await room.close_all()


async def scenario_roundtrip(args, target: Target) -> dict:
    room = Room(args, target)
    await room.open_many([(args.room, args.uid_base, "echo")], 1)
    await room.quiet(0.5, 10)
    ws = room.sockets[0]
    meter = Meter(args.server_pid, args.pids)
    lat: list[float] = []
    loop = asyncio.get_running_loop()
    timeouts = 0
    for n in range(args.warmup + args.count):
        room.echo = loop.create_future()
        t = time.perf_counter()
        ws.send(target.chat(room.message(n), f"{RUN}-rt{n}"))
        try:
            got = await asyncio.wait_for(room.echo, 5)
        except TimeoutError:
            timeouts += 1
            continue
        if n >= args.warmup:
            lat.append(got - t)
    phase = meter.stop()
    await room.close_all()
    return {
        "scenario": "roundtrip",
        "target": target.name,
        **phase,
        "count": len(lat),
        "timeouts": timeouts,
        "p50_ms": _ms(percentile(lat, 50)),
        "p99_ms": _ms(percentile(lat, 99)),
        "errors": room.errors[:10],
    }


async def scenario_idle(args, target: Target) -> dict:
    room = Room(args, target)
    # Warm the server's code paths and pools first, so the per-socket figure is sockets.
    await room.open_many([(f"{args.room}-{i}", args.uid_base + i, "idle") for i in range(20)], 20)
    await room.close_all()
    await asyncio.sleep(2)
    # RSS of every process of the system (a fleet's services, nginx and Redis; the
    # floor's or the peer's server and Redis), summed before and after the sockets open.
    pids = tuple(x for x in (args.server_pid, *args.pids) if x)
    before = rss_by_pid(pids)
    meter = Meter(args.server_pid, args.pids)
    specs = [(f"{args.room}-{i}", args.uid_base + i, "idle") for i in range(args.sockets)]
    elapsed, failures = await room.open_many(specs, args.concurrency)
    phase = meter.stop()
    await room.quiet(1.0, 60)
    await asyncio.sleep(args.settle)
    after = rss_by_pid(pids)
    opened = len(room.sockets)
    await room.close_all()
    return {
        "scenario": "idle",
        "target": target.name,
        **phase,
        "sockets": opened,
        "failures": failures,
        "connects_per_s": round(opened / elapsed, 1),
        "rss_before": sum(before.values()),
        "rss_after": sum(after.values()),
        "rss_per_socket_kb": round((sum(after.values()) - sum(before.values())) / max(1, opened) / 1024, 2)
        if pids
        else None,
        # Where the per-socket memory goes: each process's share (nginx, each gateway, Redis).
        "rss_per_socket_kb_by_process": growth_by_process(before, after, opened),
        "processes_measured": len(pids),
        "errors": room.errors[:10],
    }


async def scenario_hold(args, target: Target) -> dict:
    """Open --sockets viewers, keep them --hold seconds, close (the runner counts the
    server's own work meanwhile, e.g. dashboard stats computations)."""
    room = Room(args, target)
    elapsed, failures = await room.open_many([(args.room, args.uid_base + i, "idle") for i in range(args.sockets)], 50)
    frames_before = room.frames
    await asyncio.sleep(args.hold)
    frames = room.frames - frames_before
    opened = len(room.sockets)
    await room.close_all()
    return {
        "scenario": "hold",
        "target": target.name,
        "sockets": opened,
        "failures": failures,
        "frames": frames,
        "errors": room.errors[:5],
    }


async def scenario_roomjoin(args, target: Target) -> dict:
    """Connects per second into one room that already has --members members (distinct
    users, each one socket): fill it, then time --sockets more connects of new users at
    --concurrency handshakes in flight, with the CPU of every server process per
    connect. What users meet after a deploy: a room re-entered by its members."""
    room = Room(args, target)
    base = args.uid_base
    fill_s, fill_failures = await room.open_many(
        [(args.room, base + i, "idle") for i in range(args.members)], args.concurrency
    )
    await room.quiet(1.0, 120)
    meter = Meter(args.server_pid, args.pids)
    frames0 = room.frames
    specs = [(args.room, base + args.members + i, "idle") for i in range(args.sockets)]
    elapsed, failures = await room.open_many(specs, args.concurrency)
    phase = meter.stop()
    settle = await room.quiet(1.0, 120)
    frames = room.frames - frames0
    opened = args.sockets - failures
    await room.close_all()
    server_cpu = phase.get("server_cpu")
    return {
        "scenario": "roomjoin",
        "target": target.name,
        "members": args.members,
        "fill_s": round(fill_s, 2),
        "fill_failures": fill_failures,
        **phase,
        "sockets": args.sockets,
        "failures": failures,
        "connects_per_s": round(opened / elapsed, 1),
        # cores x seconds / connects: whole-fleet CPU of one connect, in ms
        "cpu_ms_per_connect": round(server_cpu * elapsed / max(1, opened) * 1000, 3) if server_cpu else None,
        "frames_after": frames,
        "settle_s": round(settle, 2),
        "errors": room.errors[:10],
    }


async def scenario_roomstorm(args, target: Target) -> dict:
    """A reconnect storm into one room and, while it runs, connects into another room
    whose commands go to the same inbox shard (--room-b): --sockets new users into
    --room at --concurrency handshakes in flight (all at once by default, as after a
    gateway restart), and --probes connects into --room-b, one every --probe-gap
    seconds from when the storm starts. A probe's latency is from its TCP connect to its
    accept (the history frame); one closed first (1013 after CONNECT_TIMEOUT_SECONDS)
    is a failure. What a user of a quiet room meets during another room's storm."""
    room = Room(args, target)
    base = args.uid_base
    meter = Meter(args.server_pid, args.pids)
    specs = [(args.room, base + i, "idle") for i in range(args.sockets)]
    storm = asyncio.ensure_future(room.open_many(specs, args.concurrency))
    latencies, probe_errors = [], []
    t_storm = time.perf_counter()
    for i in range(args.probes):
        await asyncio.sleep(max(0.0, t_storm + (i + 1) * args.probe_gap - time.perf_counter()))
        tok = issue(Identity(base + args.sockets + i, f"u{base + args.sockets + i}", target.staff), ttl=86400)
        t0 = time.perf_counter()
        try:
            await room.open_one(args.room_b, base + args.sockets + i, "idle", tok)
            latencies.append(time.perf_counter() - t0)
        except Exception as exc:  # a probe closed before its accept: what the issue is about
            probe_errors.append(f"{time.perf_counter() - t0:.2f}s: {exc!r}"[:200])
    elapsed, failures = await storm
    phase = meter.stop()
    await room.quiet(1.0, 120)
    await room.close_all()
    return {
        "scenario": "roomstorm",
        "target": target.name,
        **phase,
        "storm_sockets": args.sockets,
        "storm_in_flight": args.concurrency,
        "storm_s": round(elapsed, 2),
        "storm_refused": failures,
        "probes": args.probes,
        "probe_failures": len(probe_errors),
        "probe_p50_ms": _ms(percentile(latencies, 50)),
        "probe_max_ms": _ms(max(latencies, default=None)),
        "probe_errors": probe_errors[:5],
        "errors": room.errors[:5],
    }


# -------------------------------------------------------------- reconnect ----
class Subscriber:
    """One socket of the reconnect scenario: every seq it got (history and live) and how
    it came back after each drop."""

    __slots__ = ("room", "uid", "token", "ws", "base", "last_seq", "seen", "dups", "truncated")
    __slots__ += ("drops", "down_since", "back_after", "ready", "sender")

    def __init__(self, room: str, uid: int, token: str, sender: bool = False):
        self.room, self.uid, self.token, self.sender = room, uid, token, sender
        self.ws: WSClient | None = None
        self.base: int | None = None  # the room's last seq at the first accept
        self.last_seq = 0
        self.seen = bytearray()  # seen[seq - base - 1]: how often that seq arrived
        self.dups = 0
        self.truncated = 0
        self.drops = 0
        self.down_since: float | None = None
        self.back_after: list[float] = []  # seconds from each drop to the accept after it
        self.ready: asyncio.Future | None = None

    def got(self, seq: int) -> None:
        if self.base is None or seq <= self.base:
            return  # before its first accept: not part of the stream it is owed
        i = seq - self.base - 1
        if i >= len(self.seen):
            self.seen.extend(bytes(i - len(self.seen) + 256))
        if self.seen[i]:
            self.dups += 1
        else:
            self.seen[i] = 1
        if seq > self.last_seq:
            self.last_seq = seq

    def on_message(self, ws: WSClient, payload: bytes) -> None:
        if payload.startswith(b'{"type":"chat_message"'):
            self.got(orjson.loads(payload)["seq"])
        elif payload.startswith(b'{"type":"history"'):
            frame = orjson.loads(payload)
            if self.base is None:
                self.base = self.last_seq = frame["last_seq"]
            else:
                self.truncated += bool(frame.get("truncated"))
                for m in frame["messages"]:
                    self.got(m["seq"])
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(time.perf_counter())
        elif payload.startswith(b'{"type":"error"') and self.ready is not None and not self.ready.done():
            self.ready.set_exception(RuntimeError(payload[:200].decode()))


def proc_cpu(pid: int) -> float | None:
    """CPU seconds of one process and its reaped children (nginx's worker is a child)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def listen_overflows() -> dict[str, int]:
    """The kernel's TcpExt ListenOverflows and ListenDrops counters (/proc/net/netstat)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
    fields = dict(zip(lines[0][1:], lines[1][1:], strict=True)) if len(lines) >= 2 else {}
    return {k: int(fields[k]) for k in ("ListenOverflows", "ListenDrops") if k in fields}


async def scenario_reconnect(args, target: Target) -> dict:
    """A reconnect storm after ws-gateway processes die (issue 21): --sockets sockets of
    distinct users spread over --rooms rooms (named --room-0 ...), a sender per room
    posting --rate messages/s throughout; once all are in, SIGKILL --kill-pids (the
    launcher's supervisord restarts them). Every dropped socket reconnects at once with
    `?since=<its last seq>`, at most --concurrency handshakes in flight; an attempt that
    fails retries after the JS client's backoff (500 ms doubling, jitter 0.5). Figures:
    seconds until every dropped socket is accepted again, failed attempts by cause, and
    whether each socket's stream, history and live frames together, holds every seq of
    its room from its first accept to the end once: no gap, no duplicate."""
    import random
    import signal

    loop = asyncio.get_running_loop()
    host = f"{args.host}:{args.port}"
    sem = asyncio.Semaphore(args.concurrency)
    rooms = [f"{args.room}-{i}" for i in range(args.rooms)]
    subs = [
        Subscriber(rooms[i % len(rooms)], uid, issue(Identity(uid, f"u{uid}", False), ttl=86400))
        for i, uid in enumerate(range(args.uid_base, args.uid_base + args.sockets))
    ]
    senders = [
        Subscriber(room, uid, issue(Identity(uid, f"u{uid}", False), ttl=86400), sender=True)
        for room, uid in zip(rooms, range(args.uid_base + args.sockets, 10**9), strict=False)
    ]
    failed: dict[str, int] = {}  # failed attempts during the storm, by cause
    fill_failed: dict[str, int] = {}
    errors: list[str] = []
    stopping = False
    storming = False
    all_back_at: float | None = None
    drop_codes: dict[str, int] = {}  # close codes of the storm's drops (1006: none, the TCP close)
    late_drops: dict[str, int] = {}
    pending: set[asyncio.Task] = set()

    async def attempt(sub: Subscriber) -> str | None:
        """One connect; None once accepted, else the cause of the failure."""
        path = f"/ws/chat/{sub.room}/" + ("" if sub.base is None else f"?since={sub.last_seq}")
        sub.ready = loop.create_future()

        def factory():
            return WSClient(host, path, target.headers(sub.token), sub.on_message)

        ws = None
        try:
            async with asyncio.timeout(args.ready_timeout):
                _, ws = await loop.create_connection(factory, args.host, args.port)
                await ws.opened
                await asyncio.wait([sub.ready, ws.closed], return_when=asyncio.FIRST_COMPLETED)
                if not sub.ready.done():
                    return f"closed {ws.close_code or 1006} before its accept"
                sub.ready.result()
        except TimeoutError:
            cause = "no accept within --ready-timeout"
        except HandshakeError as exc:
            status = str(exc).split()
            cause = f"handshake: HTTP {status[1]}" if status[0].startswith("HTTP") else "handshake: connection lost"
        except OSError as exc:
            cause = f"connect: {exc.strerror or exc!r}"
        except RuntimeError as exc:
            cause = f"error frame: {str(exc)[:80]}"
        else:
            sub.ws = ws
            ws.closed.add_done_callback(lambda _f, sub=sub, ws=ws: on_closed(sub, ws))
            return None
        if ws is not None and ws.transport:
            ws.transport.abort()
        return cause

    async def connect(sub: Subscriber, tally: dict[str, int]) -> bool:
        tries = 0
        deadline = time.perf_counter() + args.deadline
        while not stopping and time.perf_counter() < deadline:
            async with sem:
                cause = await attempt(sub)
            if cause is None:
                if sub.down_since is not None:
                    sub.back_after.append(time.perf_counter() - sub.down_since)
                    sub.down_since = None
                return True
            tally[cause] = tally.get(cause, 0) + 1
            delay = min(30.0, 0.5 * 2**tries)
            tries += 1
            await asyncio.sleep(delay * (0.5 + 0.5 * random.random()))
        return False

    def on_closed(sub: Subscriber, ws: WSClient) -> None:
        if stopping or sub.ws is not ws:
            return
        sub.ws = None
        sub.drops += 1
        sub.down_since = time.perf_counter()
        code = str(ws.close_code or 1006)
        if not storming and len(errors) < 10:
            errors.append(f"dropped before the kill: close {code}")
        # A drop after every socket was back once is not the kill's: counted apart.
        tally = late_drops if all_back_at is not None else drop_codes
        tally[code] = tally.get(code, 0) + 1
        task = asyncio.ensure_future(connect(sub, failed))
        pending.add(task)
        task.add_done_callback(pending.discard)

    # 1. Fill every room (not the figure: the storm is), the senders last.
    meter = Meter(None)
    t0 = time.perf_counter()
    await asyncio.gather(*(connect(s, fill_failed) for s in subs + senders))
    fill_s = time.perf_counter() - t0
    fill_cpu = meter.stop()["client_cpu"]
    await asyncio.sleep(args.settle)

    # 2. Senders post throughout; the kill comes once the rooms have traffic.
    sent = 0

    async def send_loop():
        nonlocal sent
        period = 1.0 / args.rate
        n = 0
        t = time.perf_counter()
        while not stopping:
            for s in senders:
                if s.ws is not None:
                    s.ws.send(target.chat(f"{n:09d}|reconnect", f"{RUN}-rc-{s.room}-{n}"))
                    sent += 1
            n += 1
            t += period
            await asyncio.sleep(max(0.0, t - time.perf_counter()))

    sender_task = asyncio.ensure_future(send_loop())
    await asyncio.sleep(args.before)
    meter = Meter(None)
    storming = True
    overflows0 = listen_overflows()
    watch0 = {name: proc_cpu(pid) for name, pid in args.watch.items()}
    t_kill = time.perf_counter()
    for pid in args.kill_pids:
        os.kill(pid, signal.SIGKILL)
    # Every socket of a killed process is dropped within moments of the kill; then wait
    # until none is down (or --deadline).
    await asyncio.sleep(1.0)
    while any(s.ws is None for s in subs) and time.perf_counter() - t_kill < args.deadline:
        await asyncio.sleep(0.05)
    storm_phase = meter.stop()
    all_back_at = time.perf_counter()
    overflows = {k: v - overflows0.get(k, 0) for k, v in listen_overflows().items()}
    # Cores each watched process used over the storm (one that was killed: not there).
    storm_cpu = {
        name: round((c1 - watch0[name]) / storm_phase["wall_s"], 3)
        for name, pid in args.watch.items()
        if (c1 := proc_cpu(pid)) is not None and watch0[name] is not None
    }
    dropped = [s for s in subs if s.drops]
    not_back = [s for s in subs if s.ws is None]
    backs = sorted(b for s in subs for b in s.back_after)
    refused = {k: v for k, v in failed.items() if k != "handshake: HTTP 502"}
    all_back_s = max(backs, default=0.0) if not not_back else None
    # Traffic goes on after the storm, then stops; what every socket is owed is its
    # room's stream up to the last seq, read from a fresh connect's history.
    await asyncio.sleep(args.after)
    stopping_senders = sent
    sender_task.cancel()
    await asyncio.sleep(args.settle)
    # A socket dropped late is owed its stream too: wait until it is back (or --deadline).
    while any(s.ws is None for s in subs) and time.perf_counter() - t_kill < 2 * args.deadline:
        await asyncio.sleep(0.1)
    stopping = True
    final: dict[str, int | None] = {}
    for room in rooms:
        probe = Subscriber(room, args.uid_base - 1, issue(Identity(args.uid_base - 1, "checker", False), ttl=86400))
        for _ in range(5):  # on a loaded machine one connect may miss its timeout
            if (cause := await attempt(probe)) is None:
                break
            errors.append(f"final-seq probe of {room}: {cause}")
        final[room] = probe.base
        if probe.ws:
            probe.ws.close()
    # The room's last seq is read from its database; live frames may still be on their
    # way to a socket through a busy gateway: wait until every socket has it (or
    # --ready-timeout) before calling a missing seq a gap.
    t_final = time.perf_counter()

    def behind() -> int:
        return sum(1 for s in subs if final[s.room] is not None and s.last_seq < final[s.room])

    while behind() and time.perf_counter() - t_final < args.ready_timeout:
        await asyncio.sleep(0.1)
    delivery_lag_s = time.perf_counter() - t_final
    still_behind = behind()
    gaps = dups = inexact = truncated = unverified = 0
    for s in subs:
        if final[s.room] is None:
            unverified += 1  # its room's last seq is unknown: neither exact nor not
            continue
        owed = final[s.room] - (s.base or 0)
        have = sum(s.seen[:owed])
        extra = sum(s.seen[owed:])  # seqs past the room's last: impossible unless the probe lied
        gap = owed - have
        gaps += gap
        dups += s.dups
        truncated += s.truncated
        inexact += bool(gap or s.dups or extra or s.truncated)
    for s in subs + senders:
        if s.ws is not None:
            s.ws.close()
    await asyncio.sleep(0.5)
    for t in list(pending):
        t.cancel()
    return {
        "scenario": "reconnect",
        "target": target.name,
        "rooms": args.rooms,
        "sockets": args.sockets,
        "in_flight": args.concurrency,
        "killed": len(args.kill_pids),
        "fill_s": round(fill_s, 2),
        "fill_client_cpu": fill_cpu,
        "fill_failed_attempts": sum(fill_failed.values()),
        "dropped": len(dropped),
        "drops": sum(s.drops for s in subs),
        "all_back_s": round(all_back_s, 2) if all_back_s is not None else None,
        "back_p50_s": round(percentile(backs, 50), 2) if backs else None,
        "back_p99_s": round(percentile(backs, 99), 2) if backs else None,
        "not_back": len(not_back),
        # nginx's 502: no gateway process was up to take the handshake (all killed);
        # the rest were refused or closed by a gateway that was up.
        "no_gateway_502": failed.get("handshake: HTTP 502", 0),
        "refused": sum(refused.values()),
        "failed_by_cause": failed,
        "first_back_s": round(backs[0], 2) if backs else None,
        "storm_client_cpu": storm_phase["client_cpu"],
        # The machine's, over the storm (other processes' too): connects a full listen
        # queue dropped (each then waits out a SYN retransmit, 1 s and more).
        "listen_overflows": overflows,
        "storm_wall_s": storm_phase["wall_s"],
        "storm_server_cpu": dict(sorted(storm_cpu.items(), key=lambda kv: -kv[1])),
        "rate_per_room": args.rate,
        "messages_sent": stopping_senders,
        "messages_stored": sum(v for v in final.values() if v),
        "exact": len(subs) - inexact - unverified,
        "unverified": unverified,
        # Seconds after the last seq was read until every socket had it; sockets that had
        # not by then (their missing seqs are counted as gaps).
        "delivery_lag_s": round(delivery_lag_s, 2),
        "behind_at_check": still_behind,
        "drop_close_codes": drop_codes,
        "late_drops": late_drops,
        "inexact": inexact,
        "gaps": gaps,
        "duplicates": dups,
        "truncated_histories": truncated,
        "errors": errors,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


SCENARIOS = {
    "fanout": scenario_fanout,
    "fanout-recv": scenario_fanout_recv,
    "roundtrip": scenario_roundtrip,
    "idle": scenario_idle,
    "hold": scenario_hold,
    "roomjoin": scenario_roomjoin,
    "roomstorm": scenario_roomstorm,
    "reconnect": scenario_reconnect,
}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--target", choices=TARGETS, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--room", default="bench")
    p.add_argument("--uid-base", type=int, default=100_000)
    p.add_argument("--receivers", type=int, default=100)
    p.add_argument("--users", type=int, default=0, help="fan-out: distinct receiving users (0: one per socket)")
    p.add_argument("--sockets", type=int, default=1000)
    p.add_argument("--message-bytes", type=int, default=100)
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--hold", type=float, default=10.0)
    p.add_argument("--server-pid", type=int)
    p.add_argument(
        "--client-procs", type=int, default=1, help="fan-out: receivers split over this many client processes"
    )
    p.add_argument("--worker", type=int, default=0, help="fanout-recv: which share of the receivers (internal)")
    p.add_argument("--members", type=int, default=100, help="roomjoin: members already in the room")
    p.add_argument("--room-b", default="bench-b", help="roomstorm: the room probed during the storm")
    p.add_argument("--probes", type=int, default=10, help="roomstorm: connects into --room-b")
    p.add_argument("--probe-gap", type=float, default=0.5, help="roomstorm: seconds between probes")
    p.add_argument("--rooms", type=int, default=5, help="reconnect: rooms the sockets are spread over")
    p.add_argument("--rate", type=float, default=2.0, help="reconnect: messages/s per room")
    p.add_argument("--before", type=float, default=2.0, help="reconnect: seconds of traffic before the kill")
    p.add_argument("--after", type=float, default=2.0, help="reconnect: seconds of traffic after all are back")
    p.add_argument("--deadline", type=float, default=120.0, help="reconnect: give up on a socket after this")
    p.add_argument("--ready-timeout", type=float, default=30.0, help="reconnect: one attempt's limit")
    p.add_argument(
        "--watch",
        type=lambda v: dict((kv.split("=")[0], int(kv.split("=")[1])) for kv in v.split(",") if kv),
        default={},
        help="reconnect: name=pid,... whose CPU over the storm is reported",
    )
    p.add_argument(
        "--kill-pids",
        type=lambda v: tuple(int(x) for x in v.split(",") if x),
        default=(),
        help="reconnect: processes to SIGKILL once every socket is in",
    )
    p.add_argument(
        "--pids",
        type=lambda v: tuple(int(x) for x in v.split(",") if x),
        default=(),
        help="more server pids whose CPU is summed with --server-pid's",
    )
    args = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop  # the client's own speed: it must not be what we measure

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(SCENARIOS[args.scenario](args, TARGETS[args.target]()))
    if result is not None:  # a fanout-recv worker reports on its own
        print(orjson.dumps(result).decode())
    return result


if __name__ == "__main__":
    main()
