"""CPU and memory of a set of processes, from /proc: what the bench charges a system.

One helper for every system the bench measures: Switchboard's whole fleet (every
service, worker, nginx's master and workers, Redis), the floor (its server and its
Redis) and the peer (uvicorn and its Redis). A process that has exited counts 0 from
then on (its CPU is gone from the sum either way). psutil is not a dependency: the
two files read here are all that is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> float:
    """User + system CPU seconds `pids` have used so far, summed."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / CLK_TCK


def rss_by_pid(pids) -> dict[int, int]:
    """Resident memory (VmRSS) of each of `pids` still alive, in bytes."""
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1]) * 1024
                    break
        except (OSError, IndexError, ValueError):
            continue
    return out


def with_children(roots) -> list[int]:
    """`roots` and every process descended from them (nginx's workers, a supervisor's
    programs), so a system's sum includes what its processes forked."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found = {p for p in roots if p}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return sorted(found)


def growth_by_process(before: dict[int, int], after: dict[int, int], per: int) -> dict[str, float]:
    """KB each process grew by per `per` units (sockets), largest first, keyed by
    "<comm> <pid>: <cmdline head>": where a system's per-socket memory goes. Processes
    that grew by less than 0.05 KB a unit are left out."""
    rows = {}
    names = {d["pid"]: f"{d['comm']} {d['pid']}: {d['cmd'][:60]}" for d in describe(sorted(after))}
    for pid, rss in after.items():
        kb = (rss - before.get(pid, rss)) / max(1, per) / 1024
        if kb >= 0.05:
            rows[names[pid]] = round(kb, 2)
    return dict(sorted(rows.items(), key=lambda kv: -kv[1]))


def describe(pids) -> list[dict]:
    """Each pid with its command name (/proc/<pid>/comm) and cmdline head: what the JSON
    records as the processes a figure was measured over."""
    out = []
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cmd = " ".join(a.decode(errors="replace") for a in argv[:4] if a)[:120]
        except OSError:
            comm, cmd = "?", ""
        out.append({"pid": pid, "comm": comm, "cmd": cmd})
    return out
