"""In Chromium: the bell's unread count rises when a notification is sent to the
logged-in user, and a report requested on the reports page fills its progress bar to
100 % and offers the download."""

from __future__ import annotations

import httpx
from browser import login
from playwright.async_api import expect


async def test_bell_count_rises_and_report_progress_reaches_100(fleet, tokens, browser):
    page = await login(browser, fleet.url, "alice")
    await page.goto("/reports/")
    bell = page.locator("#bell-count")
    # The first unread_count has arrived once the number is the server's.
    async with httpx.AsyncClient(timeout=30) as http:
        auth = {"Authorization": f"Bearer {tokens['alice']}"}
        before = (await http.get(f"{fleet.url}/api/notifications/?limit=1", headers=auth)).json()["unread_count"]
        await expect(bell).to_have_text(str(before), timeout=15000)
        res = await http.post(
            f"{fleet.url}/api/notifications/",
            json={"user": "alice", "title": "From the browser test", "message": "hi"},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        )
        assert res.status_code == 201
    await expect(bell).to_have_text(str(before + 1), timeout=10000)

    await expect(page.locator("#status")).to_have_text("live", timeout=15000)
    await page.select_option("#report-type", "chat_transcript")
    await page.fill("#report-room", "lobby")
    await page.click("#report-form button[type=submit]")
    row = page.locator("#reports tr").first
    await expect(row.locator("progress")).to_have_attribute("value", "100", timeout=60000)
    await expect(row.locator(".pct")).to_have_text("100 %")
    await expect(row.locator("a.download")).to_be_visible()
    # The finished report also rings the bell (completion creates a notification).
    await expect(bell).to_have_text(str(before + 2), timeout=15000)
    async with page.expect_download() as info:
        await row.locator("a.download").click()
    download = await info.value
    assert download.suggested_filename == "chat-lobby.csv"
