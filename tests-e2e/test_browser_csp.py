"""In Chromium: every HTML page ws-gateway serves (login, rooms, a chat room, documents,
the collab editor, reports, the staff dashboard) carries a Content-Security-Policy, no
`securitypolicyviolation` event fires and no console error is logged while it works:
a chat message shows up, the editor connects and syncs, the dashboard goes live."""

from __future__ import annotations

import pytest
from browser import login
from collabhelpers import new_document
from playwright.async_api import expect

# Installed before any page script runs, so a violation by the page's first script is seen.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


class Watch:
    """Console errors and CSP headers of every document the page loads."""

    def __init__(self, page):
        self.page, self.errors, self.headers = page, [], {}
        # A failed load is reported below with its URL; Chromium's console line has none.
        page.on(
            "console",
            lambda m: (
                m.type == "error" and not m.text.startswith("Failed to load resource") and self.errors.append(m.text)
            ),
        )
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        async def on_response(response):
            # Chromium asks for /favicon.ico on its own; Switchboard has none (not a page's fault).
            if response.status >= 400 and not response.url.endswith("/favicon.ico"):
                self.errors.append(f"{response.status} {response.url}")
            if response.request.resource_type == "document":
                self.headers[response.url] = await response.all_headers()

        page.on("response", on_response)

    async def check(self, path: str):
        csp = [h.get("content-security-policy") for url, h in self.headers.items() if url.split("?")[0].endswith(path)]
        assert csp and all(csp), f"{path}: no Content-Security-Policy header ({csp})"
        policy = csp[-1]
        assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0], policy
        assert "frame-ancestors 'none'" in policy, policy
        assert await self.page.evaluate("window.__cspViolations") == [], path
        assert self.errors == [], path


async def logged_in(browser, fleet, username: str) -> Watch:
    page = await login(browser, fleet.url, username)
    await page.context.add_init_script(WATCH_VIOLATIONS)
    return Watch(page)


@pytest.mark.timeout(180)
async def test_every_page_has_a_csp_and_works_without_a_violation(fleet, tokens, browser):
    # The login page, before anyone is logged in.
    context = await browser.new_context(base_url=fleet.url)
    await context.add_init_script(WATCH_VIOLATIONS)
    anon = Watch(await context.new_page())
    await anon.page.goto("/login/")
    await expect(anon.page.locator("input[name=username]")).to_be_visible()
    await anon.check("/login/")

    alice = await logged_in(browser, fleet, "alice")
    page = alice.page
    await page.goto("/")
    await expect(page.locator("#rooms a", has_text="Lobby")).to_be_visible()
    await alice.check("/")

    await page.click("#rooms a:has-text('Lobby')")
    await expect(page.locator("#status")).to_have_text("live")
    await page.fill("#chat-message-input", "csp says hello")
    await page.press("#chat-message-input", "Enter")
    await expect(page.locator("#chat-log .message:not(.system-message) .text").last).to_have_text("csp says hello")
    await alice.check("/chat/lobby/")

    await page.goto("/reports/")
    await expect(page.locator("#status")).to_have_text("live", timeout=15000)
    await alice.check("/reports/")

    doc_id = new_document(fleet, tokens, "Hello\n")
    await page.goto("/collab/")
    await expect(page.locator(f"a[href='/collab/{doc_id}/']")).to_be_visible()
    await alice.check("/collab/")
    await page.goto(f"/collab/{doc_id}/")
    await expect(page.locator("#status")).to_have_text("live", timeout=20_000)
    await expect(page.locator("#editor")).to_have_attribute("data-synced", "1", timeout=20_000)
    await expect(page.locator(".cm-content")).to_have_text("Hello", timeout=20_000)
    await page.locator(".cm-content").click()
    await page.keyboard.type("typed. ")
    await page.wait_for_function("() => window.collab.ytext.toString().includes('typed.')")
    await alice.check(f"/collab/{doc_id}/")

    admin = await logged_in(browser, fleet, "admin")
    await admin.page.goto("/dashboard/")
    await expect(admin.page.locator("#status")).to_have_text("live")
    await expect(admin.page.locator("#stat-online-users")).not_to_have_text("–")
    await admin.check("/dashboard/")
