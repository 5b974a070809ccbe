"""Shared steps of the collab e2e suites: documents over REST, waiting for agreement."""

from __future__ import annotations

import asyncio
import uuid

import httpx


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def new_document(fleet, tokens, content: str = "", share: dict[str, str] | None = None) -> int:
    """A document owned by alice, shared as asked ({"bob": "edit", "admin": "read"})."""
    res = httpx.post(
        f"{fleet.url}/api/collab/documents/",
        json={"title": "t" + uuid.uuid4().hex[:8], "content": content},
        headers=auth(tokens["alice"]),
        timeout=15,
    )
    assert res.status_code == 201, res.text
    doc_id = res.json()["id"]
    for username, role in (share or {}).items():
        res = httpx.post(
            f"{fleet.url}/api/collab/documents/{doc_id}/share/",
            json={"username": username, "role": role},
            headers=auth(tokens["alice"]),
            timeout=15,
        )
        assert res.status_code == 200, res.text
    return doc_id


def server_document(fleet, tokens, doc_id: int, who: str = "alice") -> dict:
    res = httpx.get(f"{fleet.url}/api/collab/documents/{doc_id}/", headers=auth(tokens[who]), timeout=15)
    assert res.status_code == 200, res.text
    return res.json()


def ws_url(fleet, doc_id: int) -> str:
    return f"{fleet.ws_url}/ws/collab/{doc_id}/"


async def converged(fleet, tokens, doc_id: int, values, timeout: float = 30) -> str:
    """Wait until every client's text (values() -> list) equals the server's; returns it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        server = (await asyncio.to_thread(server_document, fleet, tokens, doc_id))["content"]
        current = values()
        if all(v == server for v in current):
            return server
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no convergence: server {server!r}, clients {current!r}")
        await asyncio.sleep(0.3)
