"""Two people in two browsers chat in the lobby through nginx (Debian's Chromium)."""

from __future__ import annotations

from browser import login
from playwright.async_api import expect


async def test_two_users_exchange_messages_in_the_lobby(fleet, browser):
    alice = await login(browser, fleet.url, "alice")
    bob = await login(browser, fleet.url, "bob")
    await expect(alice.locator("#rooms a", has_text="Lobby")).to_be_visible()
    await alice.click("#rooms a:has-text('Lobby')")
    await bob.goto("/chat/lobby/")
    for page in (alice, bob):
        await expect(page.locator("#status")).to_have_text("live")
    await expect(alice.locator("#user-list")).to_contain_text("bob")

    await alice.fill("#chat-message-input", "hello from alice")
    await alice.press("#chat-message-input", "Enter")
    await expect(bob.locator("#chat-log .message:not(.system-message) .text").last).to_have_text("hello from alice")
    await bob.fill("#chat-message-input", "hi alice <b>not bold</b>")
    await bob.click("#chat-message-submit")
    last = alice.locator("#chat-log .message:not(.system-message)").last
    await expect(last.locator(".text")).to_have_text("hi alice <b>not bold</b>")  # escaped, not markup
    await expect(last).not_to_have_class("message pending")
    await expect(alice.locator("#typing-indicator")).to_contain_text("bob is typing")
