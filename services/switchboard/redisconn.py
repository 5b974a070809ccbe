"""The one way any Switchboard process connects to Redis: every client comes from here.

Three shapes, chosen by settings (config.py):

* one Redis at REDIS_URL (dev, tests, `make run`);
* Redis Sentinel (prod): REDIS_SENTINELS lists the Sentinels, REDIS_SENTINEL_MASTER
  names the monitored master; clients ask the Sentinels where the master is and ask
  again after a failover. REDIS_URL then only gives the database number, user and
  password (and TLS, with rediss://); its host is not used;
* channel-layer shards: both channel layers spread their channels over several
  Redis servers, CHANNEL_LAYER_URLS (plain) or several comma-separated master names in
  REDIS_SENTINEL_MASTER (each its own Sentinel-managed master). Every process must list
  the shards in the same order: a pub/sub channel's shard is a hash of its name.
  Presence, rate limits, leases and the Celery broker stay on the main Redis
  (REDIS_URL, or the first master), because they read and write across keys.

Plain clients (`client`, `sync_client`) are redis-py's; the channel layers get their
`hosts` list from `layer_hosts` in the format channels_redis documents (a URL, or a
dict with ``sentinels`` and ``master_name``), for the core and the pub/sub layer alike.

Every client made here has timeouts (`timeouts()`: REDIS_SOCKET_TIMEOUT_SECONDS,
REDIS_CONNECT_TIMEOUT_SECONDS, REDIS_HEALTH_CHECK_SECONDS): without them a Redis that
stops answering but keeps its connections open (frozen, SIGSTOPped, a network path that
drops packets) holds every call, and whatever awaits it (a gateway's connect, an inbox
worker's shutdown), for ever. With them a call raises redis's TimeoutError after the
socket timeout and the next call makes a new connection. The blocking reads Switchboard
does (the inbox doorbell, an owner's wake-up, channels_redis's receive) block for at most
BLOCK_SECONDS per call, below the socket timeout (config.py refuses one under 2 s), so a
quiet queue is never mistaken for a stalled Redis. The pub/sub reader reads with its own
0.1 s timeout (channels_redis, ws_gateway/layers.py), which redis-py answers with "no
message", not an error.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelConnection
from redis.asyncio.sentinel import SentinelManagedSSLConnection as AsyncSentinelSSLConnection
from redis.backoff import ExponentialBackoff
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

from switchboard.config import env, env_float, env_int, env_list

SENTINEL_PORT = 26379

# The longest a blocking read (BLPOP, BZPOPMIN) of Switchboard's blocks in one call: under
# every socket timeout REDIS_SOCKET_TIMEOUT_SECONDS allows (at least 2 s).
BLOCK_SECONDS = 1.0


def timeouts() -> dict[str, Any]:
    """The connection kwargs every Redis client here gets (redis-py's names)."""
    return {
        "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT_SECONDS"),
        "socket_connect_timeout": env_float("REDIS_CONNECT_TIMEOUT_SECONDS"),
        "health_check_interval": env_int("REDIS_HEALTH_CHECK_SECONDS"),
    }


def layer_host(host) -> dict[str, Any]:
    """A `hosts` entry of the channel layers (a URL or a channels_redis dict) with the
    timeouts added: channels_redis passes a dict's other keys to redis-py's pool (a URL
    as ``address``)."""
    entry = dict(host) if isinstance(host, dict) else {"address": host}
    for key, value in timeouts().items():
        entry.setdefault(key, value)
    return entry


def sentinels() -> list[tuple[str, int]]:
    """REDIS_SENTINELS as (host, port) pairs; empty: no Sentinel."""
    result = []
    for item in env_list("REDIS_SENTINELS"):
        host, sep, port = item.rpartition(":")
        result.append((host, int(port)) if sep else (item, SENTINEL_PORT))
    return result


def masters() -> list[str]:
    return env_list("REDIS_SENTINEL_MASTER")


def _auth_and_db() -> dict[str, Any]:
    """What a Sentinel-managed connection takes from REDIS_URL: db, user, password, TLS."""
    url = env("REDIS_URL")
    parsed = parse_url(url)
    kwargs = {k: parsed[k] for k in ("db", "username", "password") if parsed.get(k) is not None}
    if url.startswith("rediss://"):
        kwargs["ssl"] = True
    return kwargs


# A failover closes every connection to the old master, and commands to it in the
# seconds before the Sentinels agree fail too: a pooled connection retries on a
# ConnectionError, asking the Sentinels for the master again each time (0.1 s, 0.2 s ...
# up to 1 s apart, about 5 s in all). redis-py's pools otherwise do not retry.
RETRIES, BACKOFF_BASE, BACKOFF_CAP = 8, 0.1, 1.0


def _failover_retry(blocking: bool = False):
    retry_class = redis.retry.Retry if blocking else redis.asyncio.retry.Retry
    return retry_class(ExponentialBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE), RETRIES)


# redis-py 6.4's Sentinel-managed connections ask the Sentinels for the master only in
# connect(); a command on a dropped connection reconnects through
# connect_check_health(), to the last address, which after a failover is the demoted
# master: every retry then fails (writes: READONLY) or reads a stale replica. These
# ask the Sentinels before any reconnect. (Found by tests/test_sentinel.py.)
class _AsyncMasterConnection(AsyncSentinelConnection):
    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True):
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class _AsyncMasterSSLConnection(_AsyncMasterConnection, AsyncSentinelSSLConnection):
    pass


class _MasterConnection(SentinelManagedConnection):
    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True):
        if not self._sock and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class _MasterSSLConnection(_MasterConnection, SentinelManagedSSLConnection):
    pass


def _master_connection_kwargs(blocking: bool = False) -> dict[str, Any]:
    """Connection kwargs of a Sentinel-managed master: auth, db, retry, connection class."""
    kwargs = _auth_and_db()
    ssl = kwargs.pop("ssl", False)
    if blocking:
        kwargs["connection_class"] = _MasterSSLConnection if ssl else _MasterConnection
    else:
        kwargs["connection_class"] = _AsyncMasterSSLConnection if ssl else _AsyncMasterConnection
    kwargs["retry"] = _failover_retry(blocking)
    return kwargs


def _sentinel_kwargs() -> dict[str, Any]:
    # Sentinels answer in microseconds; a dead one must not hold a connect for long.
    return {"socket_timeout": 2, "socket_connect_timeout": env_float("REDIS_CONNECT_TIMEOUT_SECONDS")}


def layer_hosts() -> list:
    """The channel layers' `hosts`: one entry per shard (usually one). Without the
    timeouts: settings_base.channel_layers adds them (`layer_host`), for these and for a
    test's URL alike."""
    if sentinels():
        return [
            {
                "sentinels": sentinels(),
                "master_name": name,
                "sentinel_kwargs": _sentinel_kwargs(),
                **_master_connection_kwargs(),
            }
            for name in masters()
        ]
    return env_list("CHANNEL_LAYER_URLS") or [env("REDIS_URL")]


def client(**kwargs) -> redis.asyncio.Redis:
    """An asyncio client of the main Redis (presence, rate limits, leases, stats).
    `kwargs` go to redis-py; the timeouts are the settings' unless given."""
    kwargs = {**timeouts(), **kwargs}
    if sentinels():
        sentinel = AsyncSentinel(sentinels(), sentinel_kwargs=_sentinel_kwargs())
        return sentinel.master_for(
            masters()[0], redis_class=redis.asyncio.Redis, **_master_connection_kwargs(), **kwargs
        )
    return redis.asyncio.Redis.from_url(env("REDIS_URL"), **kwargs)


def sync_client(**kwargs) -> redis.Redis:
    """A blocking client of the main Redis (the metrics thread, scripts)."""
    kwargs = {**timeouts(), **kwargs}
    if sentinels():
        sentinel = Sentinel(sentinels(), sentinel_kwargs=_sentinel_kwargs())
        return sentinel.master_for(
            masters()[0], redis_class=redis.Redis, **_master_connection_kwargs(blocking=True), **kwargs
        )
    return redis.Redis.from_url(env("REDIS_URL"), **kwargs)


def sync_client_for(host, **kwargs) -> redis.Redis:
    """A blocking client of one channel-layer host (an entry of `layer_hosts`, with or
    without `layer_host`'s timeouts)."""
    kwargs = {**timeouts(), **kwargs}
    if isinstance(host, dict) and "address" in host:
        host = host["address"]
    if isinstance(host, dict):
        sentinel = Sentinel(host["sentinels"], sentinel_kwargs=host.get("sentinel_kwargs"))
        # The layer's connection kwargs are asyncio's: blocking ones for the same master.
        return sentinel.master_for(
            host["master_name"], redis_class=redis.Redis, **_master_connection_kwargs(blocking=True), **kwargs
        )
    return redis.Redis.from_url(host, **kwargs)


def celery_broker() -> tuple[str, dict[str, Any]]:
    """Celery's broker_url and the transport options it needs (kombu's sentinel://).
    Not handled: TLS to a Sentinel-managed master (rediss:// in REDIS_URL) for Celery,
    which would need Celery's broker_use_ssl as well."""
    if not sentinels():
        return env("REDIS_URL"), {}
    auth = _auth_and_db()
    user = auth.get("username") or ""
    password = f":{auth['password']}" if auth.get("password") else ""
    cred = f"{user}{password}@" if (user or password) else ""
    db = auth.get("db", 0)
    url = ";".join(f"sentinel://{cred}{host}:{port}/{db}" for host, port in sentinels())
    return url, {"master_name": masters()[0], "sentinel_kwargs": _sentinel_kwargs()}
