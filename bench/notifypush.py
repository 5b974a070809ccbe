"""Notification push latency through nginx (issue 21): staff `POST /api/notifications/`
at a steady rate, each notification timed from the call to its frame on the user's
second open `/ws/notifications/` tab, and the POST's own answer time.

    python bench/notifypush.py --port 8080 --rate 100 --seconds 10 --repeat 5 [--pids 1,2,3]

Needs a fleet started with bench/run.py's JWT keys (SWITCHBOARD_JWT_KEYS) and the seeded
users (`admin` staff, `alice`). `bench/run.py --only notify` boots one and runs this.
Prints one JSON object: per repetition p50/p95/p99 of push and POST latency (ms), what
every tab missed or saw twice (each notification must reach every tab once), the CPU
the processes of `--pids` spent per notification, and the median and spread of the
repetitions' figures. Before each repetition the user reads all (`read-all`), so the
unread count each push carries stays that of a user who reads them, not the thousands
a bench run would pile up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from procstat import cpu_seconds  # noqa: E402

from switchboard.tokens import Identity, issue  # noqa: E402


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 2)


async def one_run(args, http: httpx.AsyncClient, staff: str, user_token: str, tabs: list, tag: str) -> dict:
    res = await http.post("/api/notifications/read-all/", headers={"Authorization": f"Bearer {user_token}"})
    res.raise_for_status()
    await asyncio.sleep(0.5)  # the read-all's unread_count frames reach the tabs first
    n = int(args.rate * args.seconds)
    titles = [f"{tag}-{i}" for i in range(n)]
    sent: dict[str, float] = {}
    seen: list[dict[str, int]] = [{} for _ in tabs]
    push: list[float] = []
    post: list[float] = []
    timed = len(tabs) - 1  # the latency is the last tab's: the user's second tab by default

    async def reader(k: int, ws):
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") != "notification" or not msg["title"].startswith(tag + "-"):
                continue
            title = msg["title"]
            seen[k][title] = seen[k].get(title, 0) + 1
            if k == timed and seen[k][title] == 1 and title in sent:
                push.append((time.perf_counter() - sent[title]) * 1000)

    async def call(title: str):
        t = time.perf_counter()
        sent[title] = t
        res = await http.post(
            "/api/notifications/",
            json={"user": args.user, "title": title, "message": "bench"},
            headers={"Authorization": f"Bearer {staff}"},
        )
        post.append((time.perf_counter() - t) * 1000)
        assert res.status_code == 201, res.text

    readers = [asyncio.create_task(reader(k, ws)) for k, ws in enumerate(tabs)]
    calls = []
    cpu0 = cpu_seconds(args.pids)
    start = time.perf_counter()
    for i, title in enumerate(titles):
        # Paced, not closed-loop: a slow answer does not slow the offered rate.
        await asyncio.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
        calls.append(asyncio.create_task(call(title)))
    await asyncio.gather(*calls)
    deadline = time.perf_counter() + 10
    while any(len(s) < n for s in seen) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    wall = time.perf_counter() - start
    cpu = cpu_seconds(args.pids) - cpu0
    for task in readers:
        task.cancel()
    return {
        "sent": n,
        "offered_per_s": args.rate,
        "achieved_per_s": round(n / (max(t for t in sent.values()) - start + 1e-9), 1) if n > 1 else None,
        "lost": sum(n - len(s) for s in seen),
        "duplicated": sum(c - 1 for s in seen for c in s.values()),
        "push_p50": pct(push, 50),
        "push_p95": pct(push, 95),
        "push_p99": pct(push, 99),
        "post_p50": pct(post, 50),
        "post_p95": pct(post, 95),
        "post_p99": pct(post, 99),
        # Over the run and its drain: every process of the fleet by default (bench/run.py).
        "fleet_cpu_ms_per_notification": round(cpu / n * 1000, 2) if args.pids else None,
        "fleet_cpu_cores": round(cpu / wall, 2) if args.pids else None,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


async def main(args) -> dict:
    base = f"http://{args.host}:{args.port}"
    staff = issue(Identity(args.staff_id, args.staff, True), ttl=3600)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=64)) as http:
        res = await http.get(
            "/api/auth/users/", params={"username": args.user}, headers={"Authorization": f"Bearer {staff}"}
        )
        res.raise_for_status()
        u = res.json()
        token = issue(Identity(u["id"], u["username"], u["is_staff"]), ttl=3600)
        tabs = []
        try:
            for _ in range(args.tabs):
                ws = await websockets.connect(
                    f"ws://{args.host}:{args.port}/ws/notifications/",
                    additional_headers={"Authorization": f"Bearer {token}"},
                    origin=base,
                )
                tabs.append(ws)
                await ws.recv()  # unread_count: the tab is open
            await one_run(args, http, staff, token, tabs, f"warm-{os.getpid()}")  # warm-up, not counted
            runs = [await one_run(args, http, staff, token, tabs, f"r{k}-{os.getpid()}") for k in range(args.repeat)]
        finally:
            for ws in tabs:
                await ws.close()
    out: dict = {"rate": args.rate, "seconds": args.seconds, "tabs": args.tabs, "runs": runs}
    for key in (
        "push_p50",
        "push_p95",
        "push_p99",
        "post_p50",
        "post_p95",
        "post_p99",
        "fleet_cpu_ms_per_notification",
    ):
        vals = [r[key] for r in runs if r[key] is not None]
        if vals:
            out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    out["lost"] = sum(r["lost"] for r in runs)
    out["duplicated"] = sum(r["duplicated"] for r in runs)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--tabs", type=int, default=2, help="open tabs of the user; the last one is timed")
    p.add_argument("--pids", default="", help="comma-separated pids whose CPU is summed per notification")
    p.add_argument("--user", default="alice")
    p.add_argument("--staff", default="admin")
    p.add_argument("--staff-id", type=int, default=3)
    a = p.parse_args()
    a.pids = [int(x) for x in a.pids.split(",") if x]
    print(json.dumps(asyncio.run(main(a))))
