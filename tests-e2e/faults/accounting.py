"""What each socket of the fault campaign was shown, counted frame by frame.

A Ledger is shared by every participant of a row. Each socket reports every frame it
is shown:

* `live(socket, stream, seq, part)`: a frame pushed on an open socket (a chat message,
  a JSON edit, a notification, a task's completion). Counted per (socket, stream, seq,
  part) across the socket's reconnects: the user watching that tab would see each
  count. A count above one is a duplicate, whatever the client would do about it.
* `history(...)`: the same key sent as catch-up (chat's history on a reconnect, an
  unread list read over REST). Counted apart: a client merges history by seq, so
  history overlapping live frames is the protocol, not a duplicate.
* `leak(socket, what)`: a frame this socket was never meant to get (another user's
  notification or task, another room's message, another document's edit). Each
  participant decides from what it knows it should receive.

Order: on one connection (`connected(socket)` starts a new one), the live frames of
one stream must come in increasing (seq, part); one that does not is an order
violation. Streams without a total order (notifications: ids of concurrent pushers)
are recorded with `ordered=False`.

The campaign's chat `record()` this replaces kept one text per seq and returned early
on a seq it had seen, so a message delivered twice on one socket counted once;
test_accounting.py shows the ledger counting exactly that.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

Key = tuple[str, str, int, object]  # socket, stream, seq, part


@dataclass
class Ledger:
    live_counts: Counter = field(default_factory=Counter)
    history_counts: Counter = field(default_factory=Counter)
    leaks: list[tuple[str, str]] = field(default_factory=list)
    order_violations: list[tuple[str, str, tuple, tuple]] = field(default_factory=list)
    _connection: dict[str, int] = field(default_factory=dict)  # socket -> connection number
    _last: dict[tuple[str, int, str], tuple] = field(default_factory=dict)

    def connected(self, socket: str) -> None:
        """`socket` opened a new connection: ordering starts over (a reconnect's live
        frames follow its history, not the old connection's frames)."""
        self._connection[socket] = self._connection.get(socket, 0) + 1

    def live(self, socket: str, stream: str, seq: int, part: object = 0, *, ordered: bool = True) -> int:
        """Count one live frame; returns how many times this socket has now been shown it."""
        key = (socket, stream, seq, part)
        self.live_counts[key] += 1
        if ordered:
            at = (seq, part if isinstance(part, int) else 0)
            where = (socket, self._connection.get(socket, 0), stream)
            last = self._last.get(where)
            if last is not None and at <= last and not (at == last and not isinstance(part, int)):
                self.order_violations.append((socket, stream, last, at))
            self._last[where] = max(at, last) if last is not None else at
        return self.live_counts[key]

    def history(self, socket: str, stream: str, seq: int, part: object = 0) -> None:
        self.history_counts[(socket, stream, seq, part)] += 1

    def leak(self, socket: str, what: str) -> None:
        self.leaks.append((socket, what))

    def shown(self, socket: str, stream: str, seq: int, part: object = 0) -> bool:
        """Shown live or in history."""
        key = (socket, stream, seq, part)
        return key in self.live_counts or key in self.history_counts

    @property
    def duplicated(self) -> int:
        """Extra live copies: one frame shown three times on a socket is two."""
        return sum(n - 1 for n in self.live_counts.values() if n > 1)

    def duplicates(self) -> list[tuple[Key, int]]:
        return [(k, n) for k, n in self.live_counts.items() if n > 1]

    @property
    def leaked(self) -> int:
        return len(self.leaks)

    def summary(self) -> str:
        """What a failing row's note says about its duplicates, leaks and order."""
        parts = []
        if self.duplicated:
            parts.append(f"duplicates {self.duplicates()[:5]}")
        if self.leaks:
            parts.append(f"leaks {self.leaks[:5]}")
        if self.order_violations:
            parts.append(f"out of order {self.order_violations[:5]}")
        return "; ".join(parts)
