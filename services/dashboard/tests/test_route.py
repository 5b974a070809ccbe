"""The dashboard's place in the route table: staff only, one group for every viewer,
its REST prefixes routed to it."""

from switchboard.routes import load


def test_dashboard_socket_is_staff_only_and_every_viewer_joins_one_group():
    match = load().match_websocket("/ws/dashboard/")
    assert match.route.service == "dashboard" and match.route.staff_only
    assert match.group(1) == match.group(2) == "dashboard"


def test_orders_and_dashboard_apis_are_routed_to_the_dashboard_service():
    owners = {r.prefix: r.service for r in load().http}
    assert owners["/api/orders/"] == owners["/api/dashboard/"] == "dashboard"
