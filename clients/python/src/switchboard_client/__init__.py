"""Switchboard's Python client, for a shop's back end (docs/clients.md, "The Python client").

from switchboard_client import mint_token
token = mint_token(user.pk, user.get_username(), staff=user.is_staff, key="kid:secret")

from switchboard_client import Client
with Client("https://switchboard.example.com", api_key="sbk_...") as sb:
    sb.request("GET", "/api/notifications/openapi.json")
"""

from switchboard_client.client import AsyncClient, Client
from switchboard_client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    SwitchboardError,
    Timeout,
    TransportError,
    Unauthorized,
    Unavailable,
)
from switchboard_client.tokens import SigningKey, mint_token

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "SigningKey",
    "SwitchboardError",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "mint_token",
]
__version__ = "0.1.0"
