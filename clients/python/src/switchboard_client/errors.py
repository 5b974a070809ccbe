"""What a call to Switchboard raises: one class per way it can fail, so a shop's code
can tell "fix the call" (BadRequest, Unauthorized, Forbidden, NotFound, Conflict) from
"try again later" (RateLimited, Unavailable, TransportError: the client already retried).

Every error carries what Switchboard said: `status`, its `code` (the JSON body's
`error`) and `message`; a TransportError carries the httpx exception it wraps.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Anything this client raises."""


class TransportError(SwitchboardError):
    """Switchboard could not be reached, or did not answer in time, on every attempt."""

    def __init__(self, message: str, attempts: int):
        super().__init__(f"{message} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.attempts = attempts


class Timeout(TransportError):
    """The last attempt timed out."""


class ApiError(SwitchboardError):
    """Switchboard answered with an error status."""

    status: int = 0

    def __init__(self, status: int, code: str, message: str, body: object = None, attempts: int = 1):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body, self.attempts = status, code, message, body, attempts


class BadRequest(ApiError):
    """400: the body, a parameter or a header is malformed (the message says which)."""


class Unauthorized(ApiError):
    """401: no API key, an unknown or revoked one, or a user's token where a key is needed."""


class Forbidden(ApiError):
    """403: the key lacks the endpoint's scope."""


class NotFound(ApiError):
    """404: no such user, room or object."""


class Conflict(ApiError):
    """409: an Idempotency-Key reused with another body."""


class RateLimited(ApiError):
    """429 on every attempt: the key's rate is spent. `retry_after`: seconds Switchboard asked to wait."""

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx on every attempt."""


class Unavailable(ServerError):
    """503 on every attempt: a store Switchboard needs is away; retry later."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: Unavailable,
}


def error_for(status: int) -> type[ApiError]:
    return _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
