"""Who is on the other end of a request or socket: the client's IP address.

Behind nginx every peer is the proxy, so the proxy says who the client is in
`X-Real-IP` (nginx sets it to its own `$remote_addr`, replacing anything the client
sent). That header is believed only when the peer itself is one of TRUSTED_PROXIES;
from anyone else it is a claim the client made up, and the peer is the client. Daphne
runs without --proxy-headers for this reason: it believed the first X-Forwarded-For
entry from any peer, and that entry is the client's own (nginx appends to it).
"""

from __future__ import annotations

import ipaddress
from functools import cache

from switchboard.config import env

REAL_IP_HEADER = "x-real-ip"


@cache
def _trusted(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(net.strip(), strict=False) for net in spec.split(",") if net.strip())


def _is_trusted(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in net for net in _trusted(env("TRUSTED_PROXIES")))


def resolve(peer: str | None, real_ip: str | None) -> str:
    """The client's address from the peer's and the proxy's header (if trusted)."""
    peer = peer or "unknown"
    if real_ip and _is_trusted(peer):
        candidate = real_ip.strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return peer  # a proxy that sends garbage: count it as itself
    return peer


def of_scope(scope) -> str:
    """The client address of an ASGI scope (a WebSocket handshake)."""
    client = scope.get("client") or (None, None)
    real_ip = None
    for name, value in scope.get("headers", []):
        if name.lower() == REAL_IP_HEADER.encode():
            real_ip = value.decode("latin-1")
    return resolve(client[0], real_ip)


def of_request(request) -> str:
    """The client address of a Django request."""
    return resolve(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_REAL_IP"))
