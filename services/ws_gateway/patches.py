"""Every change ws-gateway makes to daphne, autobahn, Twisted, channels_redis and redis-py, checked
before any is made.

ws-gateway replaces methods and reads private names of those libraries
(daphne_close_codes.py, daphne_deflate.py, daphne_memory.py, daphne_send_bound.py,
autobahn_logs.py, twisted_writes.py, layers.py, drain.py: each says which upstream gap it
works around). A private name can change in any release, and a patch that silently stops
applying weakens a guarantee (the slow-client bound of daphne_send_bound.py, say) with
nothing failing. So `install()` first checks that each patched library is exactly the
version requirements.lock pins (the versions these patches were verified against) and
that every attribute a patch touches exists, and refuses to start, naming each
mismatch, when either fails. Then it installs them all. ws_gateway.asgi calls it once.

To upgrade one of these libraries: bump it in requirements.in and requirements.lock,
run `pytest services/ws_gateway` (one in-process test per patch) and the e2e suite, and
re-read each patch against the new upstream code.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from switchboard.config import ROOT, env_list

log = logging.getLogger(__name__)
LOCK = ROOT / "requirements.lock"


@dataclass(frozen=True)
class Patch:
    module: str  # ws_gateway.<module>, with an install()
    libraries: tuple[str, ...]  # distributions whose code it touches (requirements.lock names)
    # Every name it reads or replaces: "package.module:Object.attr", or
    # "package.module:Class().attr" for one set on each instance (a fresh one is made).
    touches: tuple[str, ...]
    installs: bool = True  # False: a subclass the settings configure (layers.py), checked only


PATCHES: tuple[Patch, ...] = (
    Patch(
        "daphne_close_codes",
        ("daphne", "autobahn"),
        ("daphne.ws_protocol:WebSocketProtocol.serverClose", "daphne.ws_protocol:WebSocketProtocol.sendCloseFrame"),
    ),
    Patch(
        "daphne_deflate",
        ("daphne", "autobahn"),
        (
            "daphne.ws_protocol:WebSocketFactory.resetProtocolOptions",
            "autobahn.websocket.compress:PerMessageDeflateOffer",
            "autobahn.websocket.compress:PerMessageDeflateOfferAccept",
        ),
    ),
    Patch(
        "daphne_memory",
        ("daphne", "autobahn"),
        (
            "daphne.server:Server.create_application",
            "daphne.server:Server.handle_reply",
            "daphne.ws_protocol:WebSocketProtocol._connectionMade",
            "daphne.ws_protocol:WebSocketProtocol.CONFIG_ATTRS",
            "daphne.ws_protocol:WebSocketProtocol.onOpen",
        ),
    ),
    Patch(
        "autobahn_logs",
        ("autobahn",),
        (
            "autobahn.websocket.protocol:hltype",
            "autobahn.websocket.protocol:hlval",
            "autobahn.websocket.protocol:pformat",
        ),
    ),
    Patch(
        "twisted_writes",
        ("Twisted",),
        (
            "twisted.internet.tcp:Connection.write",
            "twisted.internet.tcp:Connection.writeSomeData",
            "twisted.internet.tcp:Connection.TLS",
            "twisted.internet.tcp:Connection.connected",
            "twisted.internet.tcp:Connection.disconnecting",
            "twisted.internet.tcp:Connection._writeDisconnected",
            "twisted.internet.abstract:FileDescriptor().dataBuffer",
            "twisted.internet.abstract:FileDescriptor()._tempDataLen",
        ),
    ),
    Patch(
        "daphne_send_bound",
        ("daphne", "autobahn", "Twisted"),
        (
            "daphne.ws_protocol:WebSocketProtocol.serverSend",
            "daphne.ws_protocol:WebSocketProtocol.sendCloseFrame",
            "daphne.ws_protocol:WebSocketProtocol.STATE_CLOSING",
            "daphne.ws_protocol:WebSocketProtocol.STATE_CLOSED",
            "daphne.ws_protocol:WebSocketFactory",
            # Read on the transport to bound what one slow client holds (a default
            # of 0 there would hide a rename: this check is what catches it).
            "twisted.internet.abstract:FileDescriptor().dataBuffer",
            "twisted.internet.abstract:FileDescriptor()._tempDataLen",
        ),
    ),
    Patch(
        "layers",
        ("channels_redis", "channels", "redis"),
        (
            "channels_redis.pubsub:RedisPubSubChannelLayer",
            "channels_redis.pubsub:RedisPubSubLoopLayer._subscribe_to_channel",
            "channels_redis.pubsub:RedisPubSubLoopLayer._get_shard",
            "channels_redis.pubsub:RedisSingleShardConnection.subscribe",
            "channels_redis.pubsub:RedisSingleShardConnection.unsubscribe",
            "channels_redis.pubsub:RedisSingleShardConnection._ensure_redis",
            "channels_redis.pubsub:RedisSingleShardConnection._ensure_receiver",
            "channels_redis.pubsub:RedisSingleShardConnection._do_receiving",
            "channels_redis.pubsub:RedisSingleShardConnection._receive_message",
            "channels_redis.utils:_wrap_close",
            "channels_redis.utils:create_pool",
            # The pub/sub connection that only the receive task connects and reads.
            "redis.asyncio.client:PubSub.execute_command",
            "redis.asyncio.client:PubSub._execute",
            "redis.asyncio.client:PubSub._normalize_keys",
            "redis.asyncio.client:PubSub.connect",
            "redis.asyncio.client:PubSub.on_connect",
            "redis.asyncio.connection:AbstractConnection.send_command",
            "redis.asyncio.connection:AbstractConnection.is_connected",
            "autobahn.websocket.protocol:PreparedMessage",
        ),
        installs=False,
    ),
    Patch("drain", ("Twisted",), ("twisted.internet.tcp:Port",)),
)


def locked_versions(lock: Path) -> dict[str, str]:
    """{normalized name: version} of requirements.lock's `name==version` lines."""
    out = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if m:
            out[_norm(m.group(1))] = m.group(2)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _resolve(touch: str) -> bool:
    module, _, path = touch.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return False
    for part in path.split("."):
        made = part.endswith("()")
        name = part.removesuffix("()")
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
        if made:
            try:
                obj = obj()
            except Exception:
                return False
    return True


def problems(lock: Path | None = None, installed=metadata.version) -> list[str]:
    """Every reason the patches must not be installed here (empty: all verified)."""
    lock = LOCK if lock is None else lock
    found = []
    try:
        pinned = locked_versions(lock)
    except OSError as exc:
        return [f"cannot read {lock} to check the patched libraries' versions: {exc}"]
    for lib in sorted({lib for p in PATCHES for lib in p.libraries}):
        want = pinned.get(_norm(lib))
        try:
            have = installed(lib)
        except metadata.PackageNotFoundError:
            have = None
        if want is None:
            found.append(f"{lib} is patched by ws-gateway but not pinned in {lock.name}")
        elif have != want:
            found.append(f"{lib} {have} is installed; ws-gateway's patches are verified against {want} ({lock.name})")
    for patch in PATCHES:
        for touch in patch.touches:
            if not _resolve(touch):
                found.append(f"ws_gateway.{patch.module} touches {touch}, which this version does not have")
    return found


def disabled() -> frozenset[str]:
    """WS_PATCHES_DISABLE: the patches not to install, for the bench only (what each one
    buys is measured with it off, docs/performance.md). A name that is no patch is an
    error: a typo must not measure "off" against an unchanged server."""
    names = frozenset(env_list("WS_PATCHES_DISABLE"))
    switchable = {p.module for p in PATCHES if p.installs}
    unknown = sorted(names - switchable)
    if unknown:
        raise SystemExit(
            f"ws-gateway will not start: WS_PATCHES_DISABLE names {', '.join(unknown)}; "
            f"patches that can be switched off: {', '.join(sorted(switchable))}"
        )
    return names


def install() -> None:
    """Check every patch against the installed libraries, then install them all (but
    those WS_PATCHES_DISABLE names); refuse to start (SystemExit naming each mismatch)
    rather than run half-patched."""
    found = problems()
    if found:
        raise SystemExit("ws-gateway will not start: " + "; ".join(found))
    off = disabled()
    if off:
        log.warning("ws-gateway: library patches off (WS_PATCHES_DISABLE, bench only): %s", ", ".join(sorted(off)))
    for patch in PATCHES:
        if patch.installs and patch.module not in off:
            importlib.import_module(f"ws_gateway.{patch.module}").install()
