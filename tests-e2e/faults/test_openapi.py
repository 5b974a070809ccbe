"""The REST endpoints against the OpenAPI documents the services serve
(`/api/<prefix>/openapi.json`, built by switchboard/openapi.py from the URLconf and the
views' `@api`): every /api/ URL pattern of every service is in its service's document,
and schemathesis drives every operation of every document through nginx, as staff,
with valid and invalid input: no server error (5xx), and every response's status,
content type and body conform to the document. SCHEMATHESIS_EXAMPLES per operation
(small in `make test`); SCHEMATHESIS_SEED replays a run; schemathesis.toml beside this
file holds what the checks count as a rejection.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest
from test_authz_matrix import tokens_issue_expired
from urlconfs import url_patterns

from launcher import SERVICES
from switchboard import routes

# Identities a token-protected operation refuses with 401.
ANON = ("none", "expired", "bad_signature")


def rest_endpoints(service: str) -> list[str]:
    """Every URL pattern of this service under the route table's /api/ prefixes."""
    prefixes = [h.prefix.lstrip("/") for h in routes.load().http if h.prefix.startswith("/api/")]
    return sorted({p for p in url_patterns(service) if any(p.startswith(x) for x in prefixes)})


@pytest.fixture(scope="module")
def who_tokens(tokens):
    claims = jwt.decode(tokens["alice"], options={"verify_signature": False})
    return {
        "none": None,
        "expired": tokens_issue_expired(claims),
        "bad_signature": jwt.encode(claims, "not-the-key-" + "x" * 32, algorithm="HS256"),
        "user": tokens["alice"],
    }


EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "10")
SEED = os.environ.get("SCHEMATHESIS_SEED")  # to replay a run: the seed its output printed
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]
ENDPOINTS = {svc.name: rest_endpoints(svc.name) for svc in SERVICES}
HTTP_SERVICES = [name for name, patterns in ENDPOINTS.items() if patterns]


def template(pattern: str) -> str:
    # Django's <slug:slug> is OpenAPI's {slug}.
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern)


def document_url(service: str) -> str:
    return template(next(p for p in ENDPOINTS[service] if p.endswith("/openapi.json")))


def test_every_service_with_an_api_serves_a_document_of_every_endpoint(fleet):
    for service in HTTP_SERVICES:
        res = httpx.get(fleet.url + document_url(service), timeout=10)
        assert res.status_code == 200, (service, res.text[:300])
        assert set(res.json()["paths"]) == {template(p) for p in ENDPOINTS[service]}, service


def concrete(path: str, operation: dict) -> str:
    """The path with an id nobody owns in each parameter (refused before any lookup)."""
    for p in operation.get("parameters", []):
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", "999999")
    return path


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_every_operation_that_needs_a_token_refuses_anonymous_and_staff_only_refuses_users(
    fleet,
    who_tokens,
    service,
):
    """The authorization matrix has one method per endpoint; this covers every other
    operation, from what its document says (security, and 403 "staff only")."""
    doc = httpx.get(fleet.url + document_url(service), timeout=10).json()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if op.get("security") == []:
                continue  # public, or the view checks itself (its matrix row says how)
            url = fleet.url + concrete(path, op)
            staff_only = op["responses"].get("403", {}).get("description") == "staff only"
            for who in (*ANON, "user"):
                tok = who_tokens[who]
                headers = {"Authorization": f"Bearer {tok}"} if tok else {}
                res = httpx.request(method.upper(), url, headers=headers, json={}, timeout=10)
                if who in ANON:
                    assert res.status_code == 401, (method, path, who, res.text[:200])
                elif staff_only:
                    assert res.status_code == 403, (method, path, who, res.text[:200])


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_schemathesis_finds_no_server_error_and_no_nonconformance(fleet, tokens, service, tmp_path):
    st = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(st),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            fleet.url + document_url(service),
            "--url",
            fleet.url,
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            EXAMPLES,
            "--workers",
            "1",
            "--suppress-health-check",
            "all",
            "-H",
            f"Authorization: Bearer {tokens['admin']}",
            *(["--seed", SEED] if SEED else []),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=1800,
    )
    assert result.returncode == 0, failures(result.stdout) + result.stderr[-2000:]


def failures(out: str) -> str:
    """schemathesis's failures section, each line cut short (a generated body can be
    megabytes of one line)."""
    section = out[out.find("FAILURES") :] if "FAILURES" in out else out
    return "\n".join(line[:300] for line in section.splitlines())[:20000]
