"""collab's REST API.

GET  /api/collab/documents/                       documents you own or were shared
POST /api/collab/documents/ {"title", "content"?}   201 {id, ...}
GET  /api/collab/documents/<id>/                  the current text, seq and your role
                                                  (403 no access, 404 unknown)
POST /api/collab/documents/<id>/share/ {"username", "role": "edit"|"read"|"none"}
     owner only; the user is looked up in ws-gateway (the owner of users); "none"
     also closes the user's open sockets on the document (4403) before answering

The text is read from the database (snapshot + log), which holds every update any
client was sent: what this returns is what the live document had, at most one
in-flight update behind.
"""

from __future__ import annotations

from typing import Literal

import httpx
import redis.exceptions
from pydantic import BaseModel, Field

from collab import store
from collab.inbox import doc_group
from collab.models import Access, Document
from switchboard import publish, users
from switchboard.closecodes import CloseCode
from switchboard.http import api, json_error, json_response


class NewDocument(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(default="", max_length=1_000_000)


class ShareBody(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    role: Literal["edit", "read", "none"]


def _summary(doc: Document, role: str | None) -> dict:
    return {
        "id": doc.pk,
        "title": doc.title,
        "owner": doc.owner_name,
        "role": role,
        "seq": doc.last_seq,
        "updated_at": doc.updated_at.isoformat(),
    }


@api(
    ["GET", "POST"],
    body=NewDocument,
    responses={"GET": {200: "documents you own or were shared"}, "POST": {201: "the new document, yours"}},
)
def documents(request, data: NewDocument | None = None):
    me = request.identity
    if request.method == "GET":
        docs = store.visible_to(me.id).order_by("-updated_at")[:200]
        return json_response({"documents": [_summary(d, store.role_of(d, me.id)) for d in docs]})
    doc = store.create_document(me, data.title, data.content)
    return json_response(_summary(doc, store.OWNER), status=201)


def _allowed(request, doc_id: int):
    doc = store.get_document(doc_id)
    if doc is None:
        return None, None, json_error(404, "not_found", f"no document {doc_id}")
    role = store.role_of(doc, request.identity.id)
    if role is None:
        return doc, None, json_error(403, "forbidden", "this document is not shared with you")
    return doc, role, None


@api(["GET"], responses={"GET": {200: "the current text, seq and your role", 403: "not shared with you"}})
def document(request, doc_id: int):
    doc, role, error = _allowed(request, doc_id)
    if error:
        return error
    text, seq = store.text_of(doc.pk)
    body = {**_summary(doc, role), "content": text, "seq": seq, "log_length": store.log_length(doc.pk)}
    if role == store.OWNER:
        body["shared_with"] = [
            {"username": a.username, "role": a.role} for a in Access.objects.filter(document=doc).order_by("username")
        ]
    return json_response(body)


def lookup_user(username: str) -> dict | None:
    return users.lookup_user(username, "collab")


@api(
    ["POST"],
    body=ShareBody,
    responses={
        "POST": {
            200: "the user's new role",
            400: "invalid body, or the owner themself",
            403: "not shared with you, or not the owner",
            503: "the user directory did not answer, or a revoked user's sockets were not closed; retry",
        }
    },
)
def share(request, doc_id: int, data: ShareBody):
    doc, role, error = _allowed(request, doc_id)
    if error:
        return error
    if role != store.OWNER:
        return json_error(403, "forbidden", "only the owner shares a document")
    try:
        user = lookup_user(data.username)
    except httpx.HTTPError:
        return json_error(503, "unavailable", "the user directory did not answer; retry")
    if user is None:
        return json_error(404, "not_found", f"no user {data.username!r}")
    if user["id"] == doc.owner_id:
        return json_error(400, "invalid_body", "the owner always has access")
    store.share(doc, user["id"], user["username"], None if data.role == "none" else data.role)
    if data.role == "none":
        try:
            revoke_sockets(doc.pk, user["id"])
        except (redis.exceptions.RedisError, OSError):
            # Stored, so no new socket of theirs is accepted; the open ones may still
            # be relayed edits until this succeeds. Repeating the revoke is harmless.
            return json_error(503, "unavailable", "access removed, but open sockets were not closed; retry")
    # A downgraded editor keeps its sockets and reads on: the worker checks the role
    # on every change, so their next one is refused (read_only, or Yjs permission denied).
    return json_response({"username": user["username"], "role": data.role})


def revoke_sockets(doc_id: int, user_id: int) -> None:
    """Close the user's sockets on the document, on every gateway, with 4403.

    Sent after the access row is gone (autocommit: store.share has committed), so a
    reconnect is refused by the worker's role check; and on the document's own group,
    the pub/sub channel that carries its edits, so every gateway gets the close before
    any edit published after this returns: nothing typed after the owner's 200 reaches
    the revoked user (docs/security.md)."""
    publish.close_user_sync(doc_group(doc_id), user_id, CloseCode.FORBIDDEN)
