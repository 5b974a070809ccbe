"""Summarise a py-spy raw (collapsed) profile: self and inclusive shares per frame.

    py-spy record -p <pid> -d 5 -r 200 -f raw -o gw.txt
    python bench/profile_summary.py gw.txt [--top 40]

Shares are of the samples of threads that were not idling in the metrics server's
poll() (py-spy counts that thread as active), so they read as "of the event loop".
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path


def summarise(path: str, top: int) -> str:
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if "serve_forever" in stack:  # the metrics exporter's thread, idle in poll()
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"samples: {total}", "", "self:"]
    out += [f"{c / total:6.1%}  {k[:140]}" for k, c in own.most_common(top // 2)]
    out += ["", "inclusive:"]
    out += [f"{c / total:6.1%}  {k[:140]}" for k, c in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=50)
    args = p.parse_args()
    print(summarise(args.profile, args.top))


if __name__ == "__main__":
    main()
