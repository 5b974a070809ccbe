"""The shop's long task: a report of a customer's orders, made in a thread of the web
process, that streams its progress to that customer's /ws/tasks/ through Switchboard.

A real shop would run this in Celery (send_task_update is the same call from a task);
a thread keeps the example to one process and no broker of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid

from django.db import close_old_connections
from django.db.models import Sum
from switchboard_client import SwitchboardError

from orders import switchboard
from orders.models import Order

log = logging.getLogger(__name__)
STEPS = 4
STEP_SECONDS = float(os.environ.get("SHOP_REPORT_STEP_SECONDS", "1"))  # slow enough to watch


def start(user) -> str:
    """Start the report of `user`'s orders; its task id (the task_update frames carry it)."""
    task_id = f"shop-report-{uuid.uuid4().hex[:12]}"
    threading.Thread(target=_run, args=(user, task_id), name=task_id, daemon=True).start()
    return task_id


def _run(user, task_id: str) -> None:
    try:
        switchboard.task_update(user, task_id, "started", 0, "Reading your orders")
        for step in range(1, STEPS + 1):
            time.sleep(STEP_SECONDS)  # the slow part of a real report
            switchboard.task_update(user, task_id, "progress", 100 * step // (STEPS + 1), f"Step {step} of {STEPS}")
        orders = Order.objects.filter(buyer=user)
        total = orders.aggregate(total=Sum("total"))["total"] or 0
        result = {"orders": orders.count(), "total": f"{total:.2f}"}
        message = f"{result['orders']} orders, {result['total']} in all"
        switchboard.task_update(user, task_id, "completed", 100, message, result=result)
    except Exception as exc:  # the user is told it failed, rather than watching a bar stop
        log.exception("report %s failed", task_id)
        with contextlib.suppress(SwitchboardError):
            switchboard.task_update(user, task_id, "failed", 0, f"The report failed: {exc}")
    finally:
        close_old_connections()  # this thread's database connection
