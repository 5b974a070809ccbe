"""Error codes of the `error` frame and of REST error bodies, in one table.

A frame a client cannot use is answered with
``{"type": "error", "code": <code>, "message": <text>}`` (plus ``retry_after`` in
seconds for rate_limited and busy); the socket stays open.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"  # the text frame is not JSON
    INVALID_FRAME = "invalid_frame"  # JSON, but not an object of the route's schema
    UNKNOWN_TYPE = "unknown_type"  # no frame of this type on this route
    BINARY_NOT_SUPPORTED = "binary_not_supported"  # binary frame on a JSON-only route
    RATE_LIMITED = "rate_limited"  # too many frames; retry after retry_after seconds
    BUSY = "busy"  # the service's inbox is full; retry after retry_after seconds
    NOT_FOUND = "not_found"  # the object named in the frame does not exist
    FORBIDDEN = "forbidden"  # the object exists but is not yours
    READ_ONLY = "read_only"  # you may read this but not change it
    # collab: the document holds COLLAB_AWARENESS_STATES cursors already; yours is not shown
    AWARENESS_LIMIT = "awareness_limit"
    INTERNAL = "internal_error"  # the service failed on this frame; nothing was stored
