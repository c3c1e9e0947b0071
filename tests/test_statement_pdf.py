"""The monthly statement as a PDF (issue 23, item 5): with ``Accept: application/pdf`` the same
statement, in Finnish or Swedish, read back with pypdf and compared to the JSON to the cent: the
opening balance, credits, each charge with its provider and services, refunds, expiry, closing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import RecordingSms
from tests.test_catalog import itemized, offer, service
from tests.test_openapi import CheckedWorld, Contract, fetch_document
from tests.test_plans import text_of
from tests.test_representatives import link, representative_token
from tests.test_statements import at_local, captured, provider, statement
from wallet.clock import FakeClock
from wallet.documents.pdf import euros


@pytest.fixture
async def w(http: TestClient, sms: RecordingSms, clock: FakeClock) -> AsyncIterator[CheckedWorld]:
    world = CheckedWorld(http, sms, clock)
    world.contract = Contract(await fetch_document(http))
    yield world
    world.check()


async def statement_pdf(w: CheckedWorld, token: str, month: str, query: str = "", expect: int = 200) -> bytes:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/pdf"}
    response = await w.http.get(f"/v1/me/statements/{month}{query}", headers=headers)
    assert response.status == expect, await response.text()
    if expect != 200:
        assert response.content_type == "application/problem+json"
        return b""
    assert response.content_type == "application/pdf"
    return await response.read()


async def test_the_statement_pdf_matches_the_json_to_the_cent(w: CheckedWorld) -> None:
    await w.category("home_care", "Kotihoito")
    await w.category("transport", "Kuljetus")
    client = await w.client()
    await w.budget(client["id"], {"home_care": 20_000, "transport": 5_000}, unused="expire")
    hoiva = await provider(w, "Hoiva Oy", ["home_care", "transport"])
    kyyti = await provider(w, "Kyyti Oy", ["transport"])
    await service(w, code="home_help", unit_value=3000)
    await offer(w, hoiva, "home_help", 3500)
    await w.credit("2027-01")
    at_local(w, "2027-01-31T12:00", client, hoiva, kyyti)
    await captured(w, hoiva, client, 1_234, "home_care")
    status, charged = await itemized(w, hoiva, client, [{"service": "home_help", "quantity": 1.5}])
    assert status == 201, charged
    at_local(w, "2027-02-01T01:00", client, hoiva, kyyti)  # January's rest expires, February is credited
    await w.credit("2027-02")
    at_local(w, "2027-02-10T12:00", client, hoiva, kyyti)
    refunded = await captured(w, kyyti, client, 2_000, "transport")
    await w.call("POST", f"/v1/charges/{refunded}/refunds", kyyti["token"], {"amount": 700}, expect=201)

    january = await statement(w, client, "2027-01")
    text = text_of(await statement_pdf(w, client["token"], "2027-01"))
    assert "Tiliote 1/2027" in text and "Aino Asiakas" in text
    for figure in (
        january["opening_balance"],
        january["credits"]["amount"],
        -january["charges"]["amount"],
        january["closing_balance"],
    ):
        assert euros(figure) in text, figure
    assert january["charges"]["amount"] == 1_234 + 4_500
    assert "Hoiva Oy" in text and "home_help × 1.5" in text  # each charge with its provider and services
    assert "31.1.2027" in text and euros(-1_234) in text and euros(-4_500) in text
    assert f"Veloitukset yhteensä {euros(1_234 + 4_500)}" in text

    february = await statement(w, client, "2027-02")
    assert february["expiry"]["amount"] == 20_000 - 1_234 - 4_500 + 5_000 and february["refunds"]["amount"] == 700
    text = text_of(await statement_pdf(w, client["token"], "2027-02"))
    for figure in (
        february["opening_balance"],
        february["credits"]["amount"],
        -february["charges"]["amount"],
        february["refunds"]["amount"],
        -february["expiry"]["amount"],
        february["closing_balance"],
    ):
        assert euros(figure) in text, figure
    assert "Kyyti Oy" in text and "hyvitys" in text and "Kuukausi on kesken" in text  # February is not over
    for line in february["lines"]:
        assert euros(line["closing_balance"]) in text

    swedish = text_of(await statement_pdf(w, client["token"], "2027-02", "?language=sv"))
    assert "Kontoutdrag 2/2027" in swedish and "Återbetalningar" in swedish and euros(700) in swedish
    await statement_pdf(w, client["token"], "2027-02", "?language=en", expect=422)
    await statement_pdf(w, client["token"], "2027-04", expect=422)  # not begun
    await link(w, client, "view")
    token = await representative_token(w)
    assert "Tiliote 2/2027" in text_of(await statement_pdf(w, token, "2027-02", f"?client_id={client['id']}"))


async def test_a_months_statement_pdf_with_nothing_in_it_says_so(w: CheckedWorld) -> None:
    client, _ = await w.funded(10_000)
    text = text_of(await statement_pdf(w, client["token"], "2027-01"))
    assert "Ei veloituksia eikä hyvityksiä." in text and euros(10_000) in text
    _: Any = None
