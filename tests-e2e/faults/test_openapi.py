"""The REST endpoints against their OpenAPI documents (services/<svc>/openapi.json):
each document lists exactly its service's /api/ URL patterns, and schemathesis drives
every operation from it through nginx, as staff, checking that no input makes a server
error (5xx). SCHEMATHESIS_EXAMPLES per operation (small in `make test`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_authz_matrix import rest_endpoints

from launcher import ROOT, SERVICES

EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "10")
ALL_DOCS = {svc.name: ROOT / "services" / svc.settings.split(".")[0] / "openapi.json" for svc in SERVICES}
# Services that have written their document; the others are listed by the skip below.
DOCS = {name: path for name, path in ALL_DOCS.items() if path.exists()}
UNDOCUMENTED = sorted(set(ALL_DOCS) - set(DOCS))


def doc_paths() -> set[str]:
    paths = set()
    for doc in DOCS.values():
        paths |= set(json.loads(doc.read_text())["paths"])
    return paths


def test_every_rest_endpoint_of_a_documented_service_is_in_its_openapi_document():
    # Django's <slug:slug> is OpenAPI's {slug}.
    from_urls = {"/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", p) for p in rest_endpoints(set(DOCS))}
    assert from_urls == doc_paths()


def test_services_without_an_openapi_document():
    if UNDOCUMENTED:
        pytest.skip(f"no openapi.json yet for: {', '.join(UNDOCUMENTED)} (schemathesis does not cover them)")


@pytest.mark.parametrize("service", sorted(DOCS))
def test_schemathesis_finds_no_server_error(fleet, tokens, service, tmp_path):
    st = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(st),
            "run",
            str(DOCS[service]),
            "--url",
            fleet.url,
            "--checks",
            "not_a_server_error",
            "-n",
            EXAMPLES,
            "-H",
            f"Authorization: Bearer {tokens['admin']}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
