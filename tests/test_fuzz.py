"""Schemathesis against the real ``wallet serve``: every operation of /v1/openapi.json is sent
generated requests, valid and invalid, with a token of a role it admits. No answer may be a 5xx,
and every answer must match the document: its status (the document lists every status of each
operation and has no ``default`` response, which would let any status through), content type,
headers and body schema.

The run is bounded for CI (``FUZZ_EXAMPLES_DEFAULT`` examples per operation, the same examples
every run, so that CI is not flaky); ``WALLET_FUZZ_EXAMPLES=500`` runs more, with fresh random
examples each time. After the run the database must still pass ``wallet check``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.processes import Server, WalletFiles, charge_body, current_month, seed
from wallet.api import openapi
from wallet.api.app import create_app
from wallet.auth.keys import load_or_create_signing_key
from wallet.auth.tokens import Role, TokenService
from wallet.settings import Settings

FUZZ_EXAMPLES_DEFAULT = 8
HTTP_TIMEOUT_SECONDS = 10.0
EVENT_STREAM_READ_SECONDS = 0.3
EXAMPLES = int(os.environ.get("WALLET_FUZZ_EXAMPLES", FUZZ_EXAMPLES_DEFAULT))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _document() -> dict[str, Any]:
    """The document as the server serves it (built from the route table and the default settings)."""
    return openapi.document(create_app(Settings(), background_jobs=False).router, Settings())


schema = schemathesis.openapi.from_dict(_document())
ISSUER, AUDIENCE = Settings().token_issuer, Settings().token_audience
pytestmark = pytest.mark.slow


@dataclass
class Live:
    server: Server
    files: WalletFiles
    tokens: dict[str, str]
    ids: dict[str, str]  # real objects for the path parameters, so that requests reach past 404
    session: requests.Session


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    files = WalletFiles(Path(tmp_path_factory.mktemp("fuzz")))
    server = Server(files, env={"WALLET_AUTO_SETTLEMENT": "false"}).start()
    try:
        seeded = seed(files, server, 1_000_000)
        api = server.api(seeded.provider_token)
        charge = api.call("POST", "/v1/charges", charge_body(seeded, 1_000), expect=201)
        api.call("POST", "/v1/charges", charge_body(seeded, 500), expect=201)
        settlement = api.call("POST", "/v1/settlements", expect=201)
        minted = TokenService(load_or_create_signing_key(files.signing_key), ISSUER, AUDIENCE, 10)
        now = datetime.now(UTC)  # the server's clock is the real one
        admin = minted.mint(Role.ADMIN, now, 3600)
        # A representative acting for the client: its mandate is real (the service re-reads it on
        # every request), its token minted as /v1/login/verify would issue it.
        representation = server.api(admin).call(
            "POST",
            f"/v1/clients/{seeded.client_id}/representatives",
            {"phone": "+358501234321", "scope": "manage"},
            expect=201,
        )
        budgets = server.api(admin).call("GET", f"/v1/clients/{seeded.client_id}/budgets", expect=200)
        service = server.api(admin).call(
            "POST",
            "/v1/services",
            {
                "code": "home_help",
                "category": seeded.category,
                "name": {"fi": "Kotipalvelu", "sv": "Hemservice"},
                "unit": "hour",
                "unit_value": 3000,
            },
            expect=201,
        )
        offer = api.call(
            "POST",
            f"/v1/providers/{seeded.provider_id}/offers",
            {"service": "home_help", "unit_price": 3500},
            expect=201,
        )
        ids = {
            "client_id": seeded.client_id,
            "provider_id": seeded.provider_id,
            "charge_id": charge["id"],
            "settlement_id": settlement["id"],
            "month": current_month(),
            "representation_id": representation["id"],
            "budget_id": budgets["data"][0]["id"],
            "batch_id": "pb_none",  # without WALLET_PAYER_* no payment batch is made: 404 its answer
            "service_id": service["id"],
            "offer_id": offer["id"],
            "decision_id": server.api(seeded.client_token).call("GET", "/v1/me/decisions", expect=200)["data"][0]["id"],
        }
        tokens = {
            "admin": admin,
            "finance": minted.mint(Role.FINANCE, now, 3600),
            "provider": seeded.provider_token,
            "client": seeded.client_token,
            "representative": minted.mint(
                Role.REPRESENTATIVE,
                now,
                3600,
                representative_id=representation["representative_id"],
                client_ids=(seeded.client_id,),
                client_id=seeded.client_id,
            ),
        }
        with requests.Session() as session:
            yield Live(server, files, tokens, ids, session)
    finally:
        server.stop()
    completed = files.check()
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_run_checks_every_status_against_the_document() -> None:
    """``status_code_conformance`` lets any status through for an operation with a ``default``
    response: none has one, so a status an operation does not list fails the run."""
    assert status_code_conformance in CHECKS and not_a_server_error in CHECKS
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert "default" not in statuses and all(s.isdigit() for s in statuses), (method, path, statuses)


def _negative(case: Any, location: ParameterLocation) -> bool:
    component = case.meta.components.get(location) if case.meta is not None else None
    return component is not None and component.mode.is_negative


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="WALLET_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_errors_and_every_answer_matches_the_document(case: Any, live: Live) -> None:
    # Real ids and real tokens where schemathesis generated valid (random) ones; where it made the
    # path or the headers invalid on purpose (a negative case: the Authorization header left out),
    # that is kept, and the answer must be a refusal.
    if not _negative(case, ParameterLocation.PATH):
        for name in case.path_parameters or {}:
            case.path_parameters[name] = live.ids[name]
    roles = case.operation.definition.raw.get("x-roles")
    headers = {}
    if roles and "Authorization" in (case.headers or {}):
        headers["Authorization"] = f"Bearer {live.tokens[roles[0]]}"
    # An event stream never ends by itself: read what it sends in its first moments, then hang up.
    timeout = (
        HTTP_TIMEOUT_SECONDS,
        EVENT_STREAM_READ_SECONDS if case.operation.path == "/v1/me/events" else HTTP_TIMEOUT_SECONDS,
    )
    case.call_and_validate(
        base_url=live.server.base_url, session=live.session, headers=headers, checks=CHECKS, timeout=timeout
    )
