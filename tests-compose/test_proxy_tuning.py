"""The running stack's gateway is tuned as `make run`'s nginx (issue 21), read from the
kernel of each container's network namespace (host's `ss` through nsenter):
net.core.somaxconn no lower than LISTEN_BACKLOG in the proxy and every ws-gateway, the
proxy's port listening with LISTEN_BACKLOG, and REST calls through it reusing a few
connections to the service instead of one each.

In `make compose-test` the proxy is the stand-in (deploy/compose/local.yaml: Debian's
nginx with the generated config), not nginx-proxy: its listen line and keepalive are
our own generated config's, so these read what compose.yaml and the stand-in give, not
nginx-proxy's template (deploy/tests/test_compose_proxy_tuning.py covers that part).
"""

from __future__ import annotations

import subprocess

import httpx

from switchboard.config import default as setting_default

BACKLOG = int(setting_default("LISTEN_BACKLOG"))
CALLS = 20


def netns_ss(stack, container: str, *args: str) -> list[list[str]]:
    pid = stack.docker("inspect", "--format", "{{.State.Pid}}", container).strip()
    out = subprocess.run(
        ["nsenter", "-t", pid, "-n", "ss", "-tnH", *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def test_the_proxy_and_every_gateway_allow_the_listen_backlog(stack):
    for container in [*stack.containers("proxy"), *stack.containers("ws-gateway")]:
        value = int(stack.docker("exec", container, "cat", "/proc/sys/net/core/somaxconn"))
        assert value >= BACKLOG, container


def test_the_proxy_listens_with_the_backlog(stack):
    (proxy,) = stack.containers("proxy")
    listeners = [f for f in netns_ss(stack, proxy, "-l", "sport = :80") if f[3].endswith(":80")]
    assert listeners and all(int(f[2]) == BACKLOG for f in listeners), listeners


def test_rest_calls_through_the_proxy_reuse_its_connections_to_the_service(stack, tokens):
    """CALLS requests, each on a client connection of its own, to chat-http: the
    connections it saw from outside its container (established, or closed and waiting
    in TIME-WAIT) are a few kept ones, not one per request."""
    (chat,) = stack.containers("chat-http")
    for _ in range(CALLS):
        res = httpx.get(
            f"{stack.url}/api/chat/rooms/", headers={"Authorization": f"Bearer {tokens['alice']}"}, timeout=15
        )
        assert res.status_code == 200, res.text
    seen = [
        f
        for f in netns_ss(stack, chat, "state", "all", "sport = :8000")
        if f[0] in ("ESTAB", "TIME-WAIT") and not f[-1].startswith("127.0.0.1:")
    ]
    assert 1 <= len(seen) <= CALLS // 4, seen
