"""@switchboard/client in Debian's Chromium, through the chat page (which uses its
ChatRoom, bundled by `make web`): both gateways are SIGKILLed while alice is sending;
afterwards both pages show every stored message once, in seq order, nothing is left
pending, and the room's history over REST has each message once."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from browser import login
from playwright.async_api import expect

SEND = """async ([count, gapMs]) => {
  const input = document.getElementById("chat-message-input");
  const form = document.getElementById("chat-form");
  for (let i = 0; i < count; i++) {
    input.value = "b" + i;
    form.requestSubmit();
    await new Promise((r) => setTimeout(r, gapMs));
  }
}"""

SHOWN = """() => [...document.querySelectorAll("#chat-log .message:not(.system-message)")].map(
  (d) => ({seq: d.dataset.seq ? Number(d.dataset.seq) : null, text: d.querySelector(".text").textContent,
           pending: d.classList.contains("pending")}))"""


async def test_gateways_killed_while_the_page_sends(fleet, tokens, browser):
    slug = "jsb" + uuid.uuid4().hex[:8]
    auth = {"Authorization": f"Bearer {tokens['alice']}"}
    res = httpx.post(f"{fleet.url}/api/chat/rooms/", json={"name": slug}, headers=auth)
    assert res.status_code == 201, res.text
    room = res.json()["slug"]
    alice = await login(browser, fleet.url, "alice")
    bob = await login(browser, fleet.url, "bob")
    for page in (alice, bob):
        await page.goto(f"/chat/{room}/")
        await expect(page.locator("#status")).to_have_text("live")

    count = 12
    sending = asyncio.create_task(alice.evaluate(SEND, [count, 150]))
    await asyncio.sleep(0.5)  # a few sent and acknowledged, the rest during and after the outage
    try:
        for gateway in ("ws-gateway-0", "ws-gateway-1"):
            await asyncio.to_thread(fleet.kill, gateway)
        await sending
        for page in (alice, bob):
            await expect(page.locator("#status")).to_have_text("live", timeout=30000)
            await expect(page.locator("#chat-log .message.pending")).to_have_count(0, timeout=30000)
            await expect(page.locator("#chat-log .message:not(.system-message)")).to_have_count(count, timeout=30000)
    finally:
        await asyncio.to_thread(fleet.wait_ready, time.time() + 30, ["ws-gateway-0", "ws-gateway-1"])

    history = httpx.get(f"{fleet.url}/api/chat/rooms/{room}/messages/", params={"after": 0}, headers=auth).json()
    stored = [(m["seq"], m["message"]) for m in history["messages"]]
    assert [text for _, text in stored] == [f"b{i}" for i in range(count)]  # each once, in send order
    for page in (alice, bob):
        shown = await page.evaluate(SHOWN)
        assert [(s["seq"], s["text"]) for s in shown] == stored, shown
