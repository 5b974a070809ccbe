"""clients/js/src/generated.js is exactly what generate.py writes from closecodes.py and
routes.toml: a close code or route added on the server without regenerating fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location("jsclient_generate", HERE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_is_the_generators_output():
    gen = load_generator()
    assert gen.OUT.read_text() == gen.render(), "clients/js/src/generated.js is stale: run `make jsclient-generate`"


def test_every_close_code_and_the_policy_are_in_it():
    from switchboard.closecodes import CloseCode, may_reconnect

    gen = load_generator()
    text = gen.render()
    for code in CloseCode:
        assert f'"{code.name}": {int(code)}' in text
    ranges = gen.terminal_ranges()
    for code in range(1000, 5000):
        assert (not may_reconnect(code)) == any(a <= code <= b for a, b in ranges), code
