"""ws-gateway's Django app: hooks the user directory to the user model at start-up."""

from django.apps import AppConfig


class WsGatewayConfig(AppConfig):
    name = "ws_gateway"

    def ready(self) -> None:
        from ws_gateway import directory

        directory.connect()
