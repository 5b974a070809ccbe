"""The route table (gateway/routes.toml), loaded and matched.

ws-gateway uses `match_websocket` to find which service owns a socket, which group it
joins and which inbox shard its commands go to; the nginx config generator and the
consistency tests read `load()`.

A route's URL parameters are typed here, once, at the edge: path parameters (the
route's identity: the room, the document) by `params`, query parameters by `query`
(routes.toml). Types are ASCII-only patterns ("²" is `str.isdigit()` but no number of
ours), a uint is canonical ("7", never "007", so one document has one group), and a
query parameter may never name a path parameter: services receive one typed dict in
which the path's values cannot be overridden.
"""

from __future__ import annotations

import re
import tomllib
import zlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from switchboard.config import ROOT, env, env_int

ROUTES_FILE = ROOT / "gateway" / "routes.toml"
# Path parameters are slugs unless typed: they end up in group and channel names,
# which the channel layer restricts to [a-zA-Z0-9_.-] and 100 characters.
PARAM_PATTERN = r"[A-Za-z0-9_-]{1,64}"
# A parameter type: its pattern (ASCII character classes only, matched in full) and the
# value it becomes. A list in routes.toml (["json"]) is a choice of literal strings.
PARAM_TYPES: dict[str, tuple[str, type]] = {
    "slug": (PARAM_PATTERN, str),
    # 18 digits: below 2**63, so a value fits every database's bigint.
    "uint": (r"0|[1-9][0-9]{0,17}", int),
}
# Query parameters a URL may carry at most; more is a malformed URL (4400).
MAX_QUERY_PARAMS = 10
# The token carrier of the seed (?token=), read by the gateway's auth and never a
# parameter of the route.
TOKEN_PARAM = "token"


class ParamError(ValueError):
    """A URL parameter that is not what its route declares (the gateway closes 4400)."""


@dataclass(frozen=True, slots=True)
class ParamType:
    pattern: re.Pattern
    convert: type

    @classmethod
    def of(cls, spec: str | list[str]) -> ParamType:
        if isinstance(spec, list):
            return cls(re.compile("|".join(re.escape(v) for v in spec), re.ASCII), str)
        if spec not in PARAM_TYPES:
            raise ValueError(f"unknown parameter type {spec!r} (one of {sorted(PARAM_TYPES)} or a list)")
        pattern, convert = PARAM_TYPES[spec]
        return cls(re.compile(pattern, re.ASCII), convert)

    def parse(self, name: str, raw: str):
        if not self.pattern.fullmatch(raw):
            raise ParamError(f"{name}: not a valid value")
        return self.convert(raw)


# The largest HTTP request body, for nginx (client_max_body_size) and Django
# (DATA_UPLOAD_MAX_MEMORY_SIZE) alike: above the largest body a service's schema
# allows (collab's 1,000,000-character document, JSON-escaped), so an oversized field
# is refused by the service with its JSON 400, never by nginx's HTML 413.
MAX_BODY_BYTES = 8 * 2**20
# How long every proxy in front (nginx here, nginx-proxy in compose, ingress-nginx)
# keeps a quiet connection: far above daphne's ping interval (WS_PING_INTERVAL_SECONDS),
# so a live socket is never cut between pings.
PROXY_IDLE_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class HttpRoute:
    prefix: str
    service: str
    websocket: bool = False
    staff_only: bool = False
    # Paths under the prefix that only the deployment's own processes reach, on the
    # server's port (Flower's metrics for Prometheus, its health check for the probes):
    # every proxy refuses them from outside, whoever asks.
    internal: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "internal", tuple(self.internal))
        for path in self.internal:
            if not path.startswith(self.prefix) or path == self.prefix:
                raise ValueError(f"route {self.prefix}: internal path {path!r} is not under its prefix")


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
    # Types of path parameters ({name = "uint"}); untyped ones are slugs.
    params: dict = field(default_factory=dict, compare=False)
    # The query parameters the route takes and their types; others are dropped.
    query: dict = field(default_factory=dict, compare=False)
    regex: re.Pattern = field(init=False, repr=False, compare=False)
    types: dict = field(init=False, repr=False, compare=False)
    query_types: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names = re.findall(r"\{(\w+)\}", self.path)
        if set(self.params) - set(names):
            raise ValueError(f"route {self.name}: params {sorted(set(self.params) - set(names))} not in its path")
        if set(self.query) & set(names) or TOKEN_PARAM in self.query:
            raise ValueError(f"route {self.name}: a query parameter may not name a path parameter or the token")
        types = {name: ParamType.of(self.params.get(name, "slug")) for name in names}
        # Each typed pattern is also a slug, so it is safe in group and channel names.
        pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{types[m.group(1)].pattern.pattern})", self.path)
        object.__setattr__(self, "regex", re.compile(f"^{pattern}$", re.ASCII))
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "query_types", {k: ParamType.of(v) for k, v in self.query.items()})

    def parse_query(self, pairs: list[tuple[str, str]]) -> dict:
        """The route's typed query parameters from the URL's (name, value) pairs.

        ParamError: a pair that names a path parameter (the path is the route's
        identity: ?doc= must not pick another document than /ws/collab/<doc>/), a
        parameter given twice, too many pairs, or a value not of its type. Parameters
        the route does not declare are dropped: no service ever sees them."""
        if len(pairs) > MAX_QUERY_PARAMS:
            raise ParamError("too many query parameters")
        out: dict = {}
        for name, raw in pairs:
            if name in self.types:
                raise ParamError(f"{name} is a path parameter")
            kind = self.query_types.get(name)
            if kind is None:
                continue
            if name in out:
                raise ParamError(f"{name} given twice")
            out[name] = kind.parse(name, raw)
        return out


@dataclass(frozen=True, slots=True)
class Match:
    route: WebSocketRoute
    params: dict[str, str | int]

    def group(self, user_id: int) -> str | None:
        """The route's group for this connection; `{user}` is the user's id."""
        return self.route.group.format(user=user_id, **self.params) if self.route.group else None

    def inbox_channel(self, user_id: int) -> str:
        """The inbox shard for this connection: one key always maps to one shard."""
        return shard_channel(self.route.inbox, shard_key(self.route, self.params, user_id))


def shard_key(route: WebSocketRoute, params: dict, user_id: int | None) -> str:
    """The key a connection's commands are sharded by: its room, document or user."""
    return str(user_id) if route.shard_by == "user" else str(params.get(route.shard_by, ""))


# Commands services send each other, and the field each is sharded by (switchboard/notify.py,
# chat/views.py system_messages): its lane is the one of the same key's gw.* commands.
COMMAND_KEYS = {"notify.create": "user_id", "chat.system": "room"}


def command_key(command: dict) -> str | None:
    """The key a command on an inbox was sharded by, as its sender computed it: a gw.*
    command's from its route (shard_key), another service's from COMMAND_KEYS. The
    shard's owner runs the commands of one key in order and of different keys side by
    side (switchboard/ownership.py); None (a command it cannot tell) runs in one
    shared lane, in order with every other such command."""
    route_name = command.get("route")
    if route_name:
        route = load().websocket_by_name().get(route_name)
        if route is None:
            return None
        return shard_key(route, command.get("params") or {}, (command.get("user") or {}).get("id"))
    field_name = COMMAND_KEYS.get(command.get("type", ""))
    if field_name is None or field_name not in command:
        return None
    return str(command[field_name])


@dataclass(frozen=True)
class RouteTable:
    http: tuple[HttpRoute, ...]
    websocket: tuple[WebSocketRoute, ...]

    def match_websocket(self, path: str) -> Match | None:
        """The route of a path and its typed path parameters; None: no route (4404)."""
        for route in self.websocket:
            m = route.regex.fullmatch(path)
            if m:
                return Match(route, {k: route.types[k].convert(v) for k, v in m.groupdict().items()})
        return None

    def websocket_by_name(self) -> dict[str, WebSocketRoute]:
        return self._by_name

    @cached_property
    def _by_name(self) -> dict[str, WebSocketRoute]:
        return {r.name: r for r in self.websocket}

    def services(self) -> list[str]:
        return sorted({r.service for r in self.http})

    def route_of(self, path: str) -> HttpRoute | None:
        """The http route a path takes: the longest matching prefix, as nginx, nginx-proxy
        and the Ingress pick it."""
        routes = [r for r in self.http if path.startswith(r.prefix)]
        return max(routes, key=lambda r: len(r.prefix)) if routes else None


# ------------------------------------------------------- service-to-service ----
def service_urls(value: str | None = None) -> dict[str, str]:
    """SERVICE_URLS as {owner: base URL}; the key "" is the base for every owner not
    named (a proxy that routes by this table)."""
    value = env("SERVICE_URLS") if value is None else value
    urls: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        owner, sep, url = item.partition("=")
        if not sep:
            owner, url = "", item
        if not url.strip().startswith(("http://", "https://")):
            raise ValueError(f"SERVICE_URLS: {item!r} is not an http(s) URL (or owner=URL)")
        urls[owner.strip()] = url.strip().rstrip("/")
    return urls


def internal_url(path: str, value: str | None = None) -> str:
    """Where a service calls `path` of another service: the base SERVICE_URLS gives the
    owner of `path` in this table (its own internal address, or the proxy's)."""
    route = load().route_of(path)
    if route is None:
        raise LookupError(f"no route of routes.toml serves {path}")
    urls = service_urls(value)
    base = urls.get(route.service) or urls.get("")
    if not base:
        raise LookupError(f"SERVICE_URLS gives no address for {route.service}, the owner of {path}")
    return base + path


def service_calls() -> dict[str, set[str]]:
    """{module path: the "/api/..." paths it calls}: the path literals (up to their first
    {parameter}) of every service module that calls internal_url, for the checks that each
    call reaches its owner in every deployment (deploy/tests/test_service_urls.py, k8s-check)."""
    calls: dict[str, set[str]] = {}
    for path in sorted((ROOT / "services").glob("*/**/*.py")):
        if "tests" in path.parts or "migrations" in path.parts or path.name == "routes.py":
            continue
        text = path.read_text()
        if "internal_url(" in text:
            found = set(re.findall(r"""["'](/api/[^"'{\s]*)""", text))
            if found:
                calls[str(path.relative_to(ROOT))] = found
    return calls


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
