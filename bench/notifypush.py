"""Notification push latency through nginx (issue 21): staff `POST /api/notifications/`
at a steady rate, each notification timed from the call to its frame on an open
`/ws/notifications/` tab of the user, and the POST's own answer time.

    python bench/notifypush.py --port 8080 --rate 100 --seconds 10 --repeat 5

Needs a fleet started with bench/run.py's JWT keys (SWITCHBOARD_JWT_KEYS) and the seeded
users (`admin` staff, `alice`). Prints one JSON object: per repetition p50/p95/p99 of
push and POST latency (ms), and the median and spread of the repetitions' p50 and p99.
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
from switchboard.tokens import Identity, issue  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 2)


async def one_run(args, http: httpx.AsyncClient, staff: str, ws, tag: str) -> dict:
    sent: dict[str, float] = {}
    push: list[float] = []
    post: list[float] = []

    async def reader():
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") == "notification" and msg["title"] in sent:
                push.append((time.perf_counter() - sent.pop(msg["title"])) * 1000)

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

    task = asyncio.create_task(reader())
    calls = []
    n = int(args.rate * args.seconds)
    start = time.perf_counter()
    for i in range(n):
        # Paced, not closed-loop: a slow answer does not slow the offered rate.
        await asyncio.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
        calls.append(asyncio.create_task(call(f"{tag}-{i}")))
    await asyncio.gather(*calls)
    deadline = time.perf_counter() + 10
    while sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    task.cancel()
    return {
        "sent": n,
        "lost": len(sent),
        "push_p50": pct(push, 50),
        "push_p95": pct(push, 95),
        "push_p99": pct(push, 99),
        "post_p50": pct(post, 50),
        "post_p99": pct(post, 99),
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
        async with websockets.connect(
            f"ws://{args.host}:{args.port}/ws/notifications/",
            additional_headers={"Authorization": f"Bearer {token}"},
            origin=base,
        ) as ws:
            await ws.recv()  # unread_count: the tab is open
            await one_run(args, http, staff, ws, f"warm-{os.getpid()}")  # warm-up, not counted
            runs = [await one_run(args, http, staff, ws, f"r{k}-{os.getpid()}") for k in range(args.repeat)]
    out = {"rate": args.rate, "seconds": args.seconds, "runs": runs}
    for key in ("push_p50", "push_p99", "post_p50", "post_p99"):
        vals = [r[key] for r in runs]
        out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--user", default="alice")
    p.add_argument("--staff", default="admin")
    p.add_argument("--staff-id", type=int, default=3)
    print(json.dumps(asyncio.run(main(p.parse_args()))))
