"""The one send path from a service to connections and groups (gw.* replies).

Services push to users only through these functions (zulip's `send_event` habit):
they encode nothing per recipient; `text` is sent as is by every gateway holding a
member. `*_sync` twins are for Django views and Celery tasks.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from switchboard.protocol import GwAccept, GwClose, GwReject, GwSend, error_frame


def _layer():
    return get_channel_layer()


def _gw_send(message: GwSend, text: str | None, data: bytes | None) -> GwSend:
    """`message` (a gw.send) carrying `text` and/or `data` (bytes), as the gateway reads them."""
    if text is not None:
        message["text"] = text
    if data is not None:
        message["bytes"] = data
    return message


async def send_to_conn(conn: str, text: str | None = None, data: bytes | None = None) -> None:
    await _layer().send(conn, _gw_send({"type": "gw.send"}, text, data))


async def send_to_group(
    group: str,
    text: str | None = None,
    data: bytes | None = None,
    *,
    seq: int | None = None,
    part: int | None = None,
    parts: int | None = None,
    exclude_conn: str | None = None,
    exclude_user: int | None = None,
) -> None:
    # `group` lets the gateway match `seq` against the watermark it got on accept.
    message = _gw_send({"type": "gw.send", "group": group}, text, data)
    if seq is not None:
        message["seq"] = seq
    if part:
        message["part"] = part
    if parts is not None and parts > 1:
        message["parts"] = parts
    if exclude_conn:
        message["exclude_conn"] = exclude_conn
    if exclude_user is not None:
        message["exclude_user"] = exclude_user
    await _layer().group_send(group, message)


async def send_all_to_group(group: str, texts: list[str]) -> None:
    """Text frames to `group` in this order, from one call: a sync view's one hand-off to
    the event loop for all of them (each async_to_sync is a round trip to the loop and
    back; two per staff notification were a quarter of its time in the view, issue 21)."""
    for text in texts:
        await send_to_group(group, text)


async def accept(
    conn: str,
    frames: list[str | bytes],
    watermarks: dict[str, int] | None = None,
    groups: list[str] | None = None,
    kinds: list[str] | None = None,
) -> None:
    """Accept `conn`; `frames` may mix text (str) and binary (bytes) frames; `kinds`
    limits which kinds of group frames it is sent (see protocol.GwAccept)."""
    message: GwAccept = {"type": "gw.accept", "frames": frames}
    if watermarks:
        message["watermarks"] = watermarks
    if groups:
        message["groups"] = groups
    if kinds:
        message["kinds"] = kinds
    await _layer().send(conn, message)


async def reject(conn: str, code: int) -> None:
    message: GwReject = {"type": "gw.reject", "code": int(code)}
    await _layer().send(conn, message)


async def close(conn: str, code: int) -> None:
    message: GwClose = {"type": "gw.close", "code": int(code)}
    await _layer().send(conn, message)


async def close_user(group: str, user_id: int, code: int) -> None:
    """Close every socket of `user_id` in `group`, on every gateway, in the group's order:
    nothing the group is sent after this reaches them (protocol.GwClose)."""
    message: GwClose = {"type": "gw.close", "code": int(code), "user": int(user_id)}
    await _layer().group_send(group, message)


async def send_error(conn: str, code: str, message: str) -> None:
    await send_to_conn(conn, error_frame(code, message))


send_to_group_sync = async_to_sync(send_to_group)
send_all_to_group_sync = async_to_sync(send_all_to_group)
send_to_conn_sync = async_to_sync(send_to_conn)
close_user_sync = async_to_sync(close_user)
