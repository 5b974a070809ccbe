"""The shop's pages: the one page a logged-in user sees (their orders, and Switchboard's
live notifications, order chat and report progress in it), the order form and the
report button. The token view the page's browser client asks before every connect is
the Python client's (shop/urls.py)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from switchboard_client import SwitchboardError

from orders import reports, switchboard
from orders.models import Order


@login_required
def home(request):
    user = request.user
    try:
        switchboard.ensure_room(user)
    except SwitchboardError as exc:  # the shop works without Switchboard, only not live
        messages.warning(request, f"Live updates are unavailable: {exc}")
    page = {
        # What the page's script needs: where Switchboard is, and where to get a token.
        "switchboard": {
            "httpUrl": settings.SWITCHBOARD_URL,
            "wsUrl": settings.SWITCHBOARD_URL.replace("http", "ws", 1),
            "tokenUrl": "/switchboard/token/",
            "room": switchboard.room_of(user),
            "staff": user.is_staff,
        },
        "orders": user.orders.all()[:10],
    }
    return render(request, "orders/home.html", page)


# The two forms are posted by the page's script (fetch), so the page and its sockets stay
# open: a reload would miss the very notification its order sent.
@login_required
@require_POST
def create_order(request):
    item = request.POST.get("item", "").strip()[:100] or "something nice"
    try:
        total = Decimal(request.POST.get("total", ""))
    except InvalidOperation:
        return JsonResponse({"message": "The total must be a number, e.g. 12.50."}, status=400)
    if not Decimal("0") < total < Decimal("100000"):
        return JsonResponse({"message": "The total must be above 0 and below 100000."}, status=400)
    order = Order.objects.create(buyer=request.user, item=item, total=total.quantize(Decimal("0.01")))
    try:
        switchboard.order_placed(order)
    except SwitchboardError as exc:  # the order stands; only its live news did not go out
        return JsonResponse({"order": str(order), "message": f"Order #{order.pk} placed; no live news: {exc}"})
    return JsonResponse({"order": str(order), "message": f"Order #{order.pk} placed."})


@login_required
@require_POST
def start_report(request):
    task_id = reports.start(request.user)
    return JsonResponse({"message": f"Report {task_id} started."})
