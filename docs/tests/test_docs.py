"""The documentation holds together: every relative link and anchor resolves inside the
repository, nothing links outside it, the README stays a pitch, and the generated
reference pages equal what docs/generate.py writes from the code."""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "bench/results").glob("*.md")]
)
MD = MarkdownIt("commonmark").enable("table")


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(inline) -> str:
    """What a heading renders as: its text and code spans, without markup."""
    return "".join(child.content for child in inline.children or () if child.type in ("text", "code_inline"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in heading.lower() if ch in " -_" or unicodedata.category(ch)[0] in ("L", "M", "N"))
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    tokens = MD.parse(path.read_text())
    seen: dict[str, int] = {}
    out = set()
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            base = slug(_text(tokens[i + 1]))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    found = []
    for token in MD.parse(path.read_text()):
        for child in token.children or ():
            if child.type == "link_open":
                found.append(child.attrs["href"])
            elif child.type == "html_inline":
                found += re.findall(r'href="([^"]+)"', child.content)
    return found


def test_there_are_pages_and_links_to_check():
    assert ROOT / "docs" / "architecture.md" in PAGES
    assert len(links(ROOT / "README.md")) >= 10


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(page):
    broken = []
    for href in links(page):
        parts = urlsplit(href)
        if parts.scheme in ("http", "https", "mailto"):
            continue  # outside links are allowed; only files in the repository are checked
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not target.is_relative_to(ROOT):
            broken.append(f"{href}: outside the repository")
        elif not target.exists():
            broken.append(f"{href}: no such file")
        elif parts.fragment and target.suffix == ".md" and parts.fragment not in anchors(target):
            broken.append(f"{href}: no heading with that anchor in {target.relative_to(ROOT)}")
    assert not broken, broken


def test_no_page_points_at_files_outside_the_repository():
    # Code spans and prose count too: a newcomer's clone has no ../shared.
    for page in PAGES:
        text = page.read_text()
        for outside in ("../shared", "shared/seed", "ARCHITECTURE.md", "/work/"):
            assert outside not in text, f"{page.relative_to(ROOT)} mentions {outside}"


def test_the_readme_is_a_pitch():
    assert len((ROOT / "README.md").read_bytes()) <= 15 * 1024


def test_the_readme_names_every_service_of_the_route_table():
    import tomllib

    routes = tomllib.loads((ROOT / "gateway" / "routes.toml").read_text())
    services = {r["service"] for r in routes["websocket"] + routes["http"]} - {"flower"}
    readme = (ROOT / "README.md").read_text()
    table = {m for m in re.findall(r"^\| ([a-z-]+) \|", readme, re.M)}
    assert services <= table, services - table


@pytest.mark.parametrize("name", ["configuration.md", "metrics.md", "frames.md"])
def test_generated_pages_equal_the_generators_output(name):
    generate = _generator()
    committed = (ROOT / "docs" / name).read_text()
    assert committed == generate.PAGES[name](), f"docs/{name} is stale: run `make docs`"


def test_the_configuration_page_documents_every_setting():
    from switchboard.config import SETTINGS

    page = (ROOT / "docs" / "configuration.md").read_text()
    documented = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", page, re.M)
    assert sorted(documented) == sorted(s.name for s in SETTINGS)


def test_the_metrics_page_documents_every_metric_the_rules_use():
    page = (ROOT / "docs" / "metrics.md").read_text()
    for name in (
        "switchboard_gateway_connections",
        "switchboard_inbox_backlog_commands",
        "switchboard_inbox_commands_total",
        "switchboard_inbox_handling_seconds",
    ):
        assert f"| `{name}` |" in page


def test_slug_matches_githubs_anchors():
    assert slug("The local run: make compose-test") == "the-local-run-make-compose-test"
    assert slug("Chat (the spec's frames, plus seq and client_id)") == "chat-the-specs-frames-plus-seq-and-client_id"
    assert slug("SwitchboardGatewayDown") == "switchboardgatewaydown"


def test_the_readme_and_testing_page_say_what_make_test_runs():
    makefile = (ROOT / "Makefile").read_text()
    (deps,) = re.findall(r"^test: (.*?)\s*##", makefile, re.M)
    targets = [t for t in deps.split() if t not in ("venv", "deps")]
    readme = (ROOT / "README.md").read_text()
    assert f"`make test` runs `{' '.join(targets)}`" in readme
    testing = (ROOT / "docs" / "testing.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)`", testing, re.M)
    assert set(targets) <= set(rows), set(targets) - set(rows)
