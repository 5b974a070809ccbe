"""Measure collab through a fleet (not a test): update propagation between two Yjs
clients, JSON edit-to-ack time, and the worker's persist and compaction times.

    PYTHONPATH=services:deploy:gateway:tests-e2e .venv/bin/python tests-e2e/collab_measure.py

Boots its own fleet (the e2e launcher, COLLAB_COMPACT_UPDATES=200), prints one line per
figure. Pacing stays under the route's rate limits, so this is latency, not throughput.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from collabclients import JsonClient, YClient
from collabhelpers import new_document, ws_url
from wsclient import token

from launcher import Fleet, free_port


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


async def measure(fleet: Fleet) -> None:
    tokens = {n: token(fleet.url, n) for n in ("alice", "bob")}
    doc_id = new_document(fleet, tokens, "", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    a = await YClient(url, tokens["alice"], "a").open()
    b = await YClient(url, tokens["bob"], "b").open()
    lags = []
    for i in range(300):
        marker = f"<{i}>"
        start = time.perf_counter()
        a.insert(len(a.value), marker)
        while marker not in b.value:
            await asyncio.sleep(0.0005)
        lags.append(time.perf_counter() - start)
        await asyncio.sleep(0.06)
    print(
        f"yjs update A->B via nginx+gateway+worker (n={len(lags)}): "
        f"p50 {pct(lags, 0.5):.1f} ms, p95 {pct(lags, 0.95):.1f} ms, max {max(lags) * 1000:.1f} ms"
    )
    j = await JsonClient(url, tokens["bob"]).connect()
    acks = []
    for i in range(150):
        start = time.perf_counter()
        await j.edit("insert", 0, "j", cid=f"m{i}")
        while f"m{i}" not in j.acks:
            await asyncio.sleep(0.0005)
        acks.append(time.perf_counter() - start)
        await asyncio.sleep(0.06)
    print(f"json edit -> ack (n={len(acks)}): p50 {pct(acks, 0.5):.1f} ms, p95 {pct(acks, 0.95):.1f} ms")
    await a.disconnect()
    await b.disconnect()
    await j.close()

    metrics_port = fleet.program("collab-inbox").metrics_port
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    total = float(re.search(r"^switchboard_collab_persist_seconds_sum (\S+)", text, re.M).group(1))
    count = float(re.search(r"^switchboard_collab_persist_seconds_count (\S+)", text, re.M).group(1))
    print(f"persist one update (SQLite, WAL): mean {total / count * 1000:.2f} ms over {int(count)}")
    log = (fleet.run_dir / "logs" / "collab-inbox.log").read_text()
    times = [float(m) for m in re.findall(r"compacted at seq \d+ \(\d+ updates folded, ([\d.]+) ms\)", log)]
    if times:
        print(f"compaction of 200 updates: median {statistics.median(times):.1f} ms (n={len(times)})")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(
            run_dir=Path(tmp),
            gateway_port=free_port(),
            ws_gateway_processes=2,
            env={"COLLAB_COMPACT_UPDATES": "200"},
        )
        try:
            fleet.start(wait=180)
            asyncio.run(measure(fleet))
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
