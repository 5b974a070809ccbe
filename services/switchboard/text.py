"""Text a client may store, checked once at each edge: no control characters anywhere in
a request body or a WebSocket frame, and links that can only be followed.

`control_character(data)` walks a decoded JSON value (keys too) and names the first
string holding a C0 control character other than tab, newline and carriage return, DEL,
or a C1 control. PostgreSQL refuses NUL in text (a 500 there, stored silently in
SQLite), and control characters in names and titles render as nothing or garble logs.
`@api` (switchboard/http.py) runs it on every JSON body of a POST/PUT/PATCH (400
`invalid_text`), `protocol.parse_client_frame` on every text frame (error frame
`invalid_frame`), so no view or consumer checks text itself.

`Link` is the type of a URL shown to users as a link (a notification's `url`): an
http(s) URL with a host, or a path on this site (`/...`, not `//host`); anything else,
`javascript:` included, fails validation.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# How deep control_character looks: deeper JSON is refused by the schemas anyway.
MAX_DEPTH = 32


def control_character(data: Any, where: str = "body", depth: int = 0) -> str | None:
    """Where in `data` the first control character is (`items.0.name`), or None."""
    if isinstance(data, str):
        match = CONTROL.search(data)
        return f"{where}: control character U+{ord(match.group()):04X} at {match.start()}" if match else None
    if depth > MAX_DEPTH:
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            found = control_character(key, f"{where} key", depth + 1) or control_character(
                value, f"{where}.{key}"[:120], depth + 1
            )
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = control_character(value, f"{where}.{i}", depth + 1)
            if found:
                return found
    return None


def check_link(url: str) -> str:
    """`url` if it is an http(s) URL with a host or a path on this site; ValueError else."""
    if not url:
        return url
    if url != url.strip() or CONTROL.search(url) or any(c.isspace() for c in url) or "\\" in url:
        raise ValueError("a link has no spaces, backslashes or control characters")
    if url.startswith("/"):
        if url.startswith("//"):
            raise ValueError("a link is an http(s) URL or a path starting with a single /")
        return url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("a link is an http(s) URL or a path starting with /")
    return url


Link = Annotated[str, AfterValidator(check_link)]
