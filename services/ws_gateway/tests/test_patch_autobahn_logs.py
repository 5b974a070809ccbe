"""autobahn_logs.py: autobahn's WebSocket protocol stops styling the arguments of debug
lines nobody logs, for every frame daphne sends (autobahn styles them with click before
the logger drops the line); the frames themselves are unchanged."""

from __future__ import annotations

import click

from ws_gateway.tests.wire import Wire, patched

FRAMES = 20


async def styled_while_sending(monkeypatch) -> tuple[int, list]:
    """How often click.style ran while daphne sent FRAMES frames, and what arrived."""
    calls = 0
    style = click.style

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return style(*args, **kwargs)

    wire = Wire()
    try:
        await wire.open()
        monkeypatch.setattr(click, "style", counting)  # counts autobahn.util.hl's calls
        for i in range(FRAMES):
            await wire.app.send({"type": "websocket.send", "text": f"frame {i}"})
        monkeypatch.setattr(click, "style", style)
        wire.turn()
        return calls, wire.frames()
    finally:
        wire.close()


async def test_without_the_patch_every_frame_styles_its_log_arguments(monkeypatch):
    with patched():
        calls, frames = await styled_while_sending(monkeypatch)
    assert calls >= FRAMES
    assert len(frames) == FRAMES


async def test_with_the_patch_no_frame_styles_anything_and_frames_are_unchanged(monkeypatch):
    with patched("autobahn_logs"):
        calls, frames = await styled_while_sending(monkeypatch)
    assert calls == 0
    assert frames == [("text", f"frame {i}".encode()) for i in range(FRAMES)]
