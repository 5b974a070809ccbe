"""The example shop (examples/shop) beside the fleet, in Chromium: its own Django project,
users and SQLite database, on a port of its own (an origin the fleet allows). Two shop
users log in to the shop, never to Switchboard: `ann` (a customer) and `sam` (staff).
Each page connects with tokens the shop minted, and each event the shop's code sends
reaches the right user's page and no other: ann's order notification, the system message
in ann's order chat, ann's report progress; ann's order on sam's staff dashboard."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from browser import CHROMIUM_ARGS, chromium_path
from fleetenv import tracebacks
from playwright.async_api import expect

SHOP_DIR = Path(__file__).resolve().parent.parent / "examples" / "shop"


class ExampleShop:
    def __init__(self, url: str, env: dict, log: Path):
        self.url, self.env, self.log = url, env, log

    def manage(self, *args: str) -> str:
        """`manage.py <args>` of the shop (its database, its settings), as its operator runs it."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=SHOP_DIR, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def example_shop(fleet, tokens, shop, tmp_path_factory):
    run = tmp_path_factory.mktemp("example-shop")
    # The shop's server API key, made by staff through ws-gateway's API (docs/server-api.md).
    res = httpx.post(
        f"{fleet.url}/api/auth/api-keys/",
        json={"name": "example shop", "scopes": ["notify", "dashboard", "chat", "tasks"]},
        headers={"Authorization": f"Bearer {tokens['admin']}"},
        timeout=30,
    )
    assert res.status_code == 201, res.text
    env = {
        **os.environ,
        "SHOP_DB": str(run / "shop.sqlite3"),
        "SWITCHBOARD_URL": fleet.url,
        "SWITCHBOARD_SHOP_KEY": f"{shop.kid}:{shop.secret}",  # one entry of the fleet's SHOP_JWT_KEYS
        "SWITCHBOARD_API_KEY": res.json()["key"],
        "SHOP_REPORT_STEP_SECONDS": "0.3",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    example = ExampleShop(f"http://127.0.0.1:{fleet.example_shop_port}", env, run / "shop.log")
    example.manage("migrate", "--noinput")
    example.manage("demo_users")
    with example.log.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{fleet.example_shop_port}"],
            cwd=SHOP_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{example.url}/login/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, example.log.read_text()[-3000:]
            time.sleep(0.2)
        yield example
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    found = tracebacks(run)
    assert not found, "traceback(s) in the example shop's log:\n" + "\n".join(found)


@pytest.fixture
async def pages(example_shop):
    """Two Chromium pages of the shop: ann's (a customer) and sam's (staff), each logged
    in with the shop's own login form, with every socket of the page open."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield await shop_login(browser, example_shop.url, "ann"), await shop_login(browser, example_shop.url, "sam")
        await browser.close()


async def shop_login(browser, url: str, username: str):
    page = await (await browser.new_context(base_url=url)).new_page()
    await page.goto("/login/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", "shop")
    await page.click("button[type=submit]")
    await page.wait_for_url(url + "/")
    for panel in ("#unread", "#chat", "#tasks") + (("#live-orders",) if username == "sam" else ()):
        await expect(page.locator(panel)).to_have_attribute("data-state", "open", timeout=20000)
    await expect(page.locator("#unread")).to_have_text(re.compile(r"\(\d+ unread\)"))
    return page


async def place_order(page, item: str, total: str) -> int:
    await page.fill("#order-form input[name=item]", item)
    await page.fill("#order-form input[name=total]", total)
    await page.click("#order-form button[type=submit]")
    placed = page.locator("#status", has_text="placed")
    await expect(placed).to_have_text(re.compile(r"^Order #\d+ placed\.$"))
    order = int(re.search(r"#(\d+)", await placed.text_content()).group(1))
    await page.locator("#status").evaluate("(e) => (e.textContent = '')")  # the next order's answer is new
    return order


async def test_each_shop_user_connects_with_a_token_the_shop_minted(fleet, pages):
    ann, sam = pages
    # Switchboard knows each by the shop's token: the username the shop gave them.
    for page, name, staff in ((ann, "ann", False), (sam, "sam", True)):
        token = await token_of(page)
        me = httpx.get(f"{fleet.url}/api/auth/me/", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        assert me["username"].split("#")[0] == name and me["is_staff"] is staff
    # Only staff have the dashboard panel; ann's page has no such socket.
    assert await ann.locator("#live-orders").count() == 0
    order = await place_order(ann, "A teapot", "12.50")
    await expect(ann.locator("#my-orders")).to_contain_text(f"Order #{order}: A teapot (12.50)")


async def token_of(page) -> str:
    """The token the shop mints for the page's user (what the page's client connects with)."""
    return await page.evaluate("fetch('/switchboard/token/').then((r) => r.text())")


async def test_an_order_reaches_its_buyer_and_the_staff_dashboard_only(fleet, example_shop, pages):
    ann, sam = pages
    order = await place_order(ann, "A teapot", "12.50")
    received = f"Order #{order} received: A teapot, 12.50"
    placed = f"shop: Order #{order} placed: A teapot, 12.50"
    # ann: her notification and the system message in her order chat room.
    await expect(ann.locator("#notifications li", has_text=f"Order #{order} ")).to_have_text([received])
    await expect(ann.locator("#chat li.system", has_text=f"Order #{order} ")).to_have_text([placed])
    # sam (staff): the order on his live dashboard, with its buyer.
    await expect(sam.locator(f"#live-orders li[data-order='{order}']")).to_have_text(f"#{order} ann: 12.50")

    # sam's own order reaches him; once it has, ann's would have too had it gone to him.
    sams = await place_order(sam, "A kettle", "30.00")
    await expect(sam.locator("#notifications li")).to_have_text([f"Order #{sams} received: A kettle, 30.00"])
    await expect(sam.locator("#chat li.system", has_text=f"Order #{sams} ")).to_have_text(
        [f"shop: Order #{sams} placed: A kettle, 30.00"]
    )
    assert await sam.locator("#chat li", has_text=f"Order #{order} ").count() == 0
    await expect(sam.locator(f"#live-orders li[data-order='{sams}']")).to_have_text(f"#{sams} sam: 30.00")
    await expect(ann.locator("#notifications li")).to_have_text([received])
    assert await ann.locator("#chat li", has_text=f"Order #{sams} ").count() == 0

    # The shop sends the order's news again (a retry after a timeout, say): each call
    # carries the order's Idempotency-Key, so Switchboard stores nothing twice.
    example_shop.manage(
        "shell",
        "-c",
        f"from orders import switchboard, models; switchboard.order_placed(models.Order.objects.get(pk={order}))",
    )
    auth = {"Authorization": f"Bearer {await token_of(ann)}"}
    async with httpx.AsyncClient(timeout=30) as http:
        mine = (await http.get(f"{fleet.url}/api/notifications/", headers=auth)).json()["notifications"]
        room = (await http.get(f"{fleet.url}/api/chat/rooms/shop-orders-1/messages/", headers=auth)).json()
    assert [n["title"] for n in mine].count(f"Order #{order} received") == 1
    assert [m["message"] for m in room["messages"] if f"#{order} " in m["message"]] == [placed.removeprefix("shop: ")]
    await expect(ann.locator("#notifications li")).to_have_text([received])


async def started(page) -> str:
    status = page.locator("#status", has_text="Report")
    await expect(status).to_have_text(re.compile(r"^Report \S+ started\.$"))
    return re.search(r"Report (\S+) started", await status.text_content()).group(1)


async def test_a_report_streams_its_progress_to_its_user_only(fleet, pages):
    ann, sam = pages
    await ann.click("#report-form button")
    task_id = await started(ann)
    row = ann.locator(f"#task-{task_id}")
    await expect(row).to_have_attribute("data-status", "completed", timeout=30000)
    await expect(row).to_have_text(re.compile(r"^completed 100%: \d+ orders, [\d.]+ in all$"))
    # sam's report, to him; ann's never reached his page, and his never reaches hers.
    await sam.click("#report-form button")
    sams = await started(sam)
    await expect(sam.locator(f"#task-{sams}")).to_have_attribute("data-status", "completed", timeout=30000)
    assert await sam.locator("#tasks li").count() == 1
    assert await ann.locator("#tasks li").count() == 1
    # A page opened after the end reads the last state (stored before the frame went out).
    async with httpx.AsyncClient(timeout=30) as http:
        got = await http.get(
            f"{fleet.url}/api/reports/{task_id}/", headers={"Authorization": f"Bearer {await token_of(ann)}"}
        )
    assert got.json()["status"] == "completed"
