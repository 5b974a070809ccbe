"""The route table (gateway/routes.toml), loaded and matched.

ws-gateway uses `match_websocket` to find which service owns a socket, which group it
joins and which inbox shard its commands go to; the nginx config generator and the
consistency tests read `load()`.
"""

from __future__ import annotations

import re
import tomllib
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from switchboard.config import ROOT, env_int

ROUTES_FILE = ROOT / "gateway" / "routes.toml"
# Path parameters are slugs: they end up in group and channel names, which the
# channel layer restricts to [a-zA-Z0-9_.-] and 100 characters.
PARAM_PATTERN = r"[A-Za-z0-9_-]{1,64}"
# The largest HTTP request body, for nginx (client_max_body_size) and Django
# (DATA_UPLOAD_MAX_MEMORY_SIZE) alike: above the largest body a service's schema
# allows (collab's 1,000,000-character document, JSON-escaped), so an oversized field
# is refused by the service with its JSON 400, never by nginx's HTML 413.
MAX_BODY_BYTES = 8 * 2**20


@dataclass(frozen=True)
class HttpRoute:
    prefix: str
    service: str
    websocket: bool = False
    staff_only: bool = False


@dataclass(frozen=True)
class WebSocketRoute:
    name: str
    path: str
    service: str
    inbox: str = ""  # empty: served by ws-gateway itself
    group: str = ""
    shard_by: str = ""  # a path parameter, or "user"
    staff_only: bool = False
    binary: bool = False
    # Per-connection frame rate of this route; 0 uses RATE_CONN_PER_SECOND / _BURST.
    rate_per_second: float = 0.0
    rate_burst: float = 0.0
    # Largest client frame on this route; 0 uses WS_MAX_MESSAGE_BYTES.
    max_message_bytes: int = 0
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{PARAM_PATTERN})", self.path)
        object.__setattr__(self, "regex", re.compile(f"^{pattern}$"))


@dataclass(frozen=True, slots=True)
class Match:
    route: WebSocketRoute
    params: dict[str, str]

    def group(self, user_id: int) -> str | None:
        """The route's group for this connection; `{user}` is the user's id."""
        return self.route.group.format(user=user_id, **self.params) if self.route.group else None

    def inbox_channel(self, user_id: int) -> str:
        """The inbox shard for this connection: one key always maps to one shard."""
        key = str(user_id) if self.route.shard_by == "user" else self.params.get(self.route.shard_by, "")
        return shard_channel(self.route.inbox, key)


@dataclass(frozen=True)
class RouteTable:
    http: tuple[HttpRoute, ...]
    websocket: tuple[WebSocketRoute, ...]

    def match_websocket(self, path: str) -> Match | None:
        for route in self.websocket:
            m = route.regex.match(path)
            if m:
                return Match(route, m.groupdict())
        return None

    def services(self) -> list[str]:
        return sorted({r.service for r in self.http})


def shard_channel(inbox: str, key: str, shards: int | None = None) -> str:
    shards = env_int("INBOX_SHARDS") if shards is None else shards
    return f"{inbox}.{zlib.crc32(key.encode()) % shards}"


def inbox_channels(inbox: str, shards: int | None = None) -> list[str]:
    shards = env_int("INBOX_SHARDS") if shards is None else shards
    return [f"{inbox}.{n}" for n in range(shards)]


@cache
def load(path: Path = ROUTES_FILE) -> RouteTable:
    data = tomllib.loads(path.read_text())
    return RouteTable(
        http=tuple(HttpRoute(**r) for r in data.get("http", [])),
        websocket=tuple(WebSocketRoute(**r) for r in data.get("websocket", [])),
    )
