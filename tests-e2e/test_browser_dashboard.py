"""A staff member's dashboard page in Chromium shows a new order and an alert as they
happen, without a reload."""

from __future__ import annotations

import re
import time

import httpx
from browser import login
from fleetenv import E2E_ENV
from playwright.async_api import expect


async def test_dashboard_page_shows_a_new_order_and_an_alert_without_reload(fleet, tokens, browser):
    page = await login(browser, fleet.url, "admin")
    await page.click("nav a:has-text('Dashboard')")
    await expect(page.locator("#status")).to_have_text("live")
    await expect(page.locator("#stat-online-users")).not_to_have_text("–")
    await expect(page.locator("#chart rect, #chart line").first).to_be_attached()
    await page.evaluate("window.__sameDocument = true")

    async with httpx.AsyncClient(timeout=10) as http:
        res = await http.post(
            f"{fleet.url}/api/orders/", json={"total": "77.70"}, headers={"Authorization": f"Bearer {tokens['bob']}"}
        )
        order = res.json()
        first_row = page.locator("#orders tr").first
        await expect(first_row).to_contain_text(f"#{order['id']}")
        await expect(first_row).to_contain_text("bob")
        await expect(first_row).to_contain_text("77.70")

        summary = f"disk almost full <b>{time.time_ns()}</b>"
        await http.post(
            f"{fleet.url}/api/dashboard/alerts/",
            headers={"Authorization": f"Bearer {E2E_ENV['ALERT_WEBHOOK_SECRET']}"},
            json={
                "version": "4",
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "DiskFull", "severity": "warning"},
                        "annotations": {"summary": summary},
                        "startsAt": "2026-11-25T07:00:00Z",
                        "fingerprint": f"{time.time_ns():x}",
                    }
                ],
            },
        )
    alert = page.locator("#alerts li").first
    await expect(alert.locator(".text")).to_have_text(summary)  # as text, not markup
    await expect(alert).to_have_class(re.compile(r"\bwarning\b"))
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened

    # A non-staff user gets no dashboard.
    alice = await login(browser, fleet.url, "alice")
    await expect(alice.locator("nav a:has-text('Dashboard')")).to_have_count(0)
    res = await alice.goto("/dashboard/")
    assert res.status == 403
