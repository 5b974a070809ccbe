"""The shop's one app: its orders, its pages and its calls to Switchboard."""

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
