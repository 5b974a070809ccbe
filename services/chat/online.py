"""Who is online in a chat room, as the worker that owns the room's shard knows it,
and the room's presence notices, coalesced.

The owner of a room's shard handles every gw.connect and gw.disconnect of the room,
so it keeps the room's members in memory and changes them one command at a time: a
connect costs O(log members) here instead of a read and decode of the room's whole
presence set in Redis (at 2,000 members that read was a third of the worker's CPU in a
reconnect storm, and made a storm into one room cost O(members²)). Redis presence,
written by the gateways, stays the record for every other reader and for what this
worker cannot see: a room is loaded from it the first time the worker touches the room
(after a start or a shard handover), and the sweeper drops members whose gateway died.

Notices (`user_join`, `user_leave`, `online_users`) are the other O(members²): each
notice goes to every member, so N users joining a room of N cost N² frames. A room's
notices are held for a window and sent together: the joins of the window as one
`user_join` (the seed's frame per user when at most three joined; one frame with
`users` and `count` when more did, its `user` then reading "ann, bob, cat and 7
others" so a seed client's "<user> joined" still reads right), the leaves likewise, then the room's online list
once. The window is ONLINE_USERS_COALESCE_SECONDS, longer for a big room: what one
flush costs (its bytes times the room's sockets) is kept under
PRESENCE_NOTICE_BYTES_PER_SECOND per room.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

from switchboard.protocol import frame

# Joins (or leaves) of one window sent one frame each, and names spelled out in a
# coalesced notice's `user` before "and N others".
NAMED = 3


@dataclass
class RoomMembers:
    """One room's open connections and the distinct users they belong to."""

    # conn -> (user id, username, when this worker added it: the sweeper's guard)
    conns: dict[str, tuple[int, str, float]] = field(default_factory=dict)
    per_user: dict[int, int] = field(default_factory=dict)  # user id -> open connections
    per_name: dict[str, int] = field(default_factory=dict)  # username -> open connections
    names: list[str] = field(default_factory=list)  # distinct usernames, sorted
    version: int = 0  # bumped when `names` changes
    _frame: tuple[int, str] | None = None

    def add(self, conn: str, user_id: int, username: str) -> bool:
        """Add a connection; True when it is the user's first in the room (a join)."""
        if conn in self.conns:
            return False
        self.conns[conn] = (user_id, username, time.monotonic())
        count = self.per_user.get(user_id, 0)
        self.per_user[user_id] = count + 1
        named = self.per_name.get(username, 0)
        self.per_name[username] = named + 1
        if not named:
            bisect.insort(self.names, username)
            self.version += 1
        return count == 0

    def remove(self, conn: str) -> tuple[int, str] | None:
        """Remove a connection; (user id, username) when it was the user's last one."""
        entry = self.conns.pop(conn, None)
        if entry is None:
            return None
        user_id, username, _ = entry
        left = self.per_user[user_id] == 1
        if left:
            del self.per_user[user_id]
        else:
            self.per_user[user_id] -= 1
        if self.per_name[username] == 1:
            del self.per_name[username]
            i = bisect.bisect_left(self.names, username)
            del self.names[i]
            self.version += 1
        else:
            self.per_name[username] -= 1
        return (user_id, username) if left else None

    def has_user(self, user_id: int) -> bool:
        return user_id in self.per_user

    def online_frame(self) -> str:
        """The room's `online_users` frame, encoded once per change of the list."""
        if self._frame is None or self._frame[0] != self.version:
            self._frame = (self.version, frame("online_users", users=self.names))
        return self._frame[1]

    def stale(self, alive: set[str], before: float) -> list[str]:
        """Connections this worker added before `before` that presence no longer has."""
        return [c for c, (_, _, added) in self.conns.items() if added < before and c not in alive]


@dataclass
class Notices:
    """A room's joins and leaves since its last flush, in the order they happened."""

    joins: dict[str, None] = field(default_factory=dict)
    leaves: dict[str, None] = field(default_factory=dict)

    def joined(self, username: str) -> None:
        # Left and back within one window: nobody needs to hear of either.
        if self.leaves.pop(username, 0) is None:
            return
        self.joins[username] = None

    def left(self, username: str) -> None:
        if self.joins.pop(username, 0) is None:
            return
        self.leaves[username] = None

    def __bool__(self) -> bool:
        return bool(self.joins or self.leaves)

    def frames(self, timestamp: str) -> list[str]:
        out = []
        for kind, names in (("user_join", self.joins), ("user_leave", self.leaves)):
            if len(names) <= NAMED:
                # A few: the seed's frame for each, as an unhurried room always sees.
                out += [notice(kind, [name], timestamp) for name in names]
            else:
                out.append(notice(kind, list(names), timestamp))
        return out

    def size(self) -> int:
        return sum(len(n) + 3 for n in self.joins) + sum(len(n) + 3 for n in self.leaves)


def notice(kind: str, names: list[str], timestamp: str) -> str:
    """One user_join/user_leave frame for the users of one window."""
    fields: dict = {"user": names[0], "timestamp": timestamp}
    if len(names) > 1:
        shown = ", ".join(names[:NAMED])
        rest = len(names) - NAMED
        user = f"{shown} and {rest} other{'s' if rest > 1 else ''}" if rest > 0 else shown
        fields = {"user": user, "users": names, "count": len(names), "timestamp": timestamp}
    if kind == "user_join":
        return frame("user_join", **fields)
    return frame("user_leave", **fields)


def window(base: float, flush_bytes: int, sockets: int, budget: float) -> float:
    """Seconds to hold a room's notices: at least `base`, and long enough that one
    flush (`flush_bytes` to each of `sockets`) stays within `budget` bytes/s."""
    return max(base, flush_bytes * sockets / budget) if budget > 0 else base
