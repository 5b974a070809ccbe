"""Every service's URL patterns, read from its own URLconf under its own settings: the
one place the e2e tests learn which endpoints exist (the authorization matrix needs a
row for each, the OpenAPI test a documented operation for each /api/ one).

Each Django project is configured once per process, so each service is asked in a
subprocess of its own, once per test session."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

from launcher import ROOT, SERVICES

_PRINT_PATTERNS = (
    "import django, json; django.setup();"
    "from django.conf import settings; from importlib import import_module;"
    "print(json.dumps([str(p.pattern) for p in import_module(settings.ROOT_URLCONF).urlpatterns]))"
)


@functools.cache
def url_patterns(service: str) -> tuple[str, ...]:
    """The top-level URL patterns of `service` (a deploy/launcher.py SERVICES name)."""
    (svc,) = [s for s in SERVICES if s.name == service]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": svc.settings, "PYTHONPATH": str(ROOT / "services")}
    out = subprocess.run([sys.executable, "-c", _PRINT_PATTERNS], env=env, capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout))


def all_url_patterns() -> list[str]:
    """Every pattern of every service, each once."""
    return sorted({p for svc in SERVICES for p in url_patterns(svc.name)})
