"""docs/quickstart.md, followed as written: its step 2 shell commands make the API key,
its settings, urls.py, views.py and page go into a Django project fresh from
`startproject`, and in Chromium the page of the user who presses "Notify me" shows the
notification while another user's page does not. A quickstart edited into something
that no longer works fails here.

Only what a reader's own shop already has is the test's: the fleet (`make run`'s
launcher, with SHOP_JWT_KEYS and the page's origin allowed), two users and their login
(a session made with Django's force_login), and a URL serving the page.
"""

from __future__ import annotations

import json
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

QUICKSTART = Path(__file__).resolve().parent.parent / "docs" / "quickstart.md"
DOC_URL = "http://127.0.0.1:8080"  # where the quickstart's `make run` answers


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", QUICKSTART.read_text(), re.S)


def block(lang: str, first_line: str) -> str:
    """The quickstart's one code block of `lang` whose first line is `first_line`."""
    found = [b for b in blocks(lang) if b.splitlines()[0].strip() == first_line]
    assert len(found) == 1, f"docs/quickstart.md: no single ```{lang} block starting {first_line!r}"
    return found[0]


def filled(text: str, fleet, values: dict[str, str]) -> str:
    """The quickstart's text with this fleet's address and the values of earlier steps."""
    text = text.replace(DOC_URL, fleet.url).replace(DOC_URL.replace("http", "ws", 1), fleet.ws_url)
    for placeholder, value in values.items():
        assert placeholder in text, f"docs/quickstart.md no longer says {placeholder!r}"
        text = text.replace(placeholder, value)
    assert not re.search(r"<[a-z][^>]*step \d[^>]*>", text), f"a placeholder left unfilled:\n{text}"
    return text


def api_key_of_step_2(fleet) -> str:
    script = next(b for b in blocks("sh") if "api-keys" in b)
    done = subprocess.run(["bash", "-c", filled(script, fleet, {})], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["key"]


@pytest.fixture(scope="module")
def quickstart_shop(fleet, shop, tmp_path_factory):
    """The quickstart's project, on the port whose origin the fleet allows (conftest)."""
    run = tmp_path_factory.mktemp("quickstart")
    env = {**os.environ, "PYTHONPATH": str(run)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    py = [sys.executable, "-m", "django"]
    subprocess.run([*py, "startproject", "mysite", str(run)], check=True, env=env, timeout=60)
    site = run / "mysite"
    values = {
        "<the secret of step 1>": shop.secret,
        "sbk_<the key of step 2>": api_key_of_step_2(fleet),
    }
    settings = filled(block("python", "# settings.py"), fleet, values).replace("shop-1:", f"{shop.kid}:")
    # Your shop's own page template directory (the quickstart's step 6 page lives there).
    settings += '\nTEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]\n'
    (site / "settings.py").write_text((site / "settings.py").read_text() + "\n" + settings)
    (site / "views.py").write_text(filled(block("python", "# views.py"), fleet, {}))
    urls = filled(block("python", "# urls.py"), fleet, {})
    your_page = '    path("", login_required(TemplateView.as_view(template_name="page.html"))),  # your existing page\n'
    urls = urls.replace("    # ... your URLs ...\n", your_page)
    urls = (
        "from django.contrib.auth.decorators import login_required\n"
        "from django.views.generic import TemplateView\n" + urls
    )
    (site / "urls.py").write_text(urls)
    (run / "templates").mkdir()
    (run / "templates" / "page.html").write_text(filled(blocks("html")[0], fleet, {}))
    manage = [sys.executable, str(run / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], check=True, env=env, capture_output=True, timeout=120)
    # Your shop's users, logged in as your shop logs them in (here: Django's force_login).
    sessions = {}
    # Their ids are the tokens' `sub`: the example shop's test signs with the same fleet key
    # and its users are 1 and 2, so these start at 1001 (the same sub would be ann herself).
    for pk, name in ((1001, "una"), (1002, "vic")):
        code = (
            "from django.contrib.auth.models import User; from django.test import Client; "
            f"c = Client(); c.force_login(User.objects.create_user({name!r}, id={pk})); print(c.cookies['sessionid'].value)"
        )
        done = subprocess.run([*manage, "shell", "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        sessions[name] = done.stdout.split()[-1]  # after Django 5.2 shell's "objects imported" line
    url = f"http://127.0.0.1:{fleet.example_shop_port}"
    log = run / "runserver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{fleet.example_shop_port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/hello/", timeout=5)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        yield url, sessions
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    found = tracebacks(run)
    assert not found, "traceback(s) in the quickstart project's log:\n" + "\n".join(found)


async def test_the_quickstarts_view_notifies_its_user_and_no_other(quickstart_shop):
    from playwright.async_api import async_playwright

    url, sessions = quickstart_shop
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        pages = {}
        for name, session in sessions.items():
            context = await browser.new_context(base_url=url)
            assert re.fullmatch(r"[a-z0-9]{32}", session), session
            await context.add_cookies([{"name": "sessionid", "value": session, "url": url + "/"}])
            pages[name] = page = await context.new_page()
            await page.goto("/")
            await expect(page.locator("#unread")).to_have_text("0", timeout=20000)  # the socket is open
        hello = "Hello: from my Django view"
        await pages["una"].click("text=Notify me")
        await expect(pages["una"].locator("#notifications li")).to_have_text([hello])
        await expect(pages["una"].locator("#unread")).to_have_text("1")
        # vic's page was open all along: once his own notification is there, una's would
        # have been too had it gone to him; each page has exactly its user's one.
        await pages["vic"].click("text=Notify me")
        await expect(pages["vic"].locator("#notifications li")).to_have_text([hello])
        await expect(pages["vic"].locator("#unread")).to_have_text("1")
        await expect(pages["una"].locator("#notifications li")).to_have_text([hello])
        await browser.close()
