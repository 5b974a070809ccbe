"""Stock Yjs clients in Node (y-websocket's WebsocketProvider over the `ws` package)
against the fleet through nginx: random concurrent edits, some offline, then all
three clients and the server hold the same text (web/collab/test/converge.mjs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from collabhelpers import new_document, server_document

WEB = Path(__file__).resolve().parents[1] / "web" / "collab"


@pytest.mark.parametrize("seed", [7, 1234])
def test_three_node_yjs_clients_and_the_server_converge(fleet, tokens, seed):
    if not (WEB / "node_modules" / "y-websocket").exists():
        pytest.fail("web/collab/node_modules is missing: run `make web`")
    doc_id = new_document(fleet, tokens, "seed text\n", {"bob": "edit"})
    result = subprocess.run(
        [
            "node",
            "test/converge.mjs",
            fleet.ws_url,
            str(doc_id),
            ",".join((tokens["alice"], tokens["bob"], tokens["alice"])),
            str(seed),
        ],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    texts = out["texts"]
    assert texts[0] == texts[1] == texts[2]
    assert "<offline-mark>" in texts[0]
    assert server_document(fleet, tokens, doc_id)["content"] == texts[0]
    for names in out["awareness"]:
        assert names == ["node-0", "node-1", "node-2"], out["awareness"]
