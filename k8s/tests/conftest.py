"""Fixtures of the manifest tests: every overlay rendered once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

K8S = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(K8S))

import render  # noqa: E402

OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render.build(K8S / "overlays" / request.param)


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    return {name: render.build(K8S / "overlays" / name) for name in OVERLAYS}
