"""Closed months' statements stored once (issue 23, item 5: "decisions and statements are stored once
and match the ledger"): the first PDF asked for a month that has ended is kept, per client and
language, and served as kept afterwards, whatever the ledger says later; the open month's is
rendered on each request and never kept; the month-start sweep keeps each notice's document; and
``wallet check`` finds a kept document that is not the one kept."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import RecordingSms
from tests.test_openapi import CheckedWorld, Contract, fetch_document
from tests.test_plans import text_of
from tests.test_statements import at_local, captured, provider, statement
from wallet.check import check_database
from wallet.clock import FakeClock
from wallet.documents.pdf import euros


@pytest.fixture
async def w(http: TestClient, sms: RecordingSms, clock: FakeClock) -> AsyncIterator[CheckedWorld]:
    world = CheckedWorld(http, sms, clock)
    world.contract = Contract(await fetch_document(http))
    yield world
    world.check()


async def statement_pdf(w: CheckedWorld, token: str, month: str, query: str = "") -> tuple[bytes, str | None]:
    """The PDF and its ``X-Document-SHA256`` header (None where there is none)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/pdf"}
    response = await w.http.get(f"/v1/me/statements/{month}{query}", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/pdf"
    return await response.read(), response.headers.get("X-Document-SHA256")


def kept(w: CheckedWorld, client: dict[str, Any]) -> list[tuple[Any, ...]]:
    return w.sql(
        "SELECT month, language, document_sha256 FROM statement_documents WHERE client_id = ? ORDER BY month, language",
        client["id"],
    )


async def january_with_a_charge(w: CheckedWorld) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A client with January credited and a charge in it; the clock in January still."""
    await w.category("home_care", "Kotihoito")
    client = await w.client()
    await w.budget(client["id"], {"home_care": 20_000})
    hoiva = await provider(w, "Hoiva Oy", ["home_care"])
    await w.credit("2027-01")
    at_local(w, "2027-01-31T12:00", client, hoiva)
    charge = await captured(w, hoiva, client, 1_234, "home_care")
    return client, hoiva, charge


async def test_a_closed_months_pdf_is_kept_once_and_a_later_refund_does_not_alter_it(w: CheckedWorld) -> None:
    client, hoiva, charge = await january_with_a_charge(w)
    # January is open: rendered on request, no hash, nothing kept.
    open_document, open_sha = await statement_pdf(w, client["token"], "2027-01")
    assert open_sha is None and kept(w, client) == []
    assert "Kuukausi on kesken" in text_of(open_document)

    at_local(w, "2027-02-01T01:00", client, hoiva)  # January has ended in Helsinki
    january = await statement(w, client, "2027-01")
    first, first_sha = await statement_pdf(w, client["token"], "2027-01")
    assert first_sha == hashlib.sha256(first).hexdigest()
    assert kept(w, client) == [("2027-01", "fi", first_sha)]
    text = text_of(first)
    assert "Tiliote 1/2027" in text and "Hoiva Oy" in text and "Kuukausi on kesken" not in text
    for figure in (january["opening_balance"], january["credits"]["amount"], -1_234, january["closing_balance"]):
        assert euros(figure) in text, figure

    # February: the January charge is refunded in part; January's statement as JSON still adds up
    # from the ledger, and its kept PDF is the very same bytes, once.
    at_local(w, "2027-02-10T12:00", client, hoiva)
    await w.call("POST", f"/v1/charges/{charge}/refunds", hoiva["token"], {"amount": 500}, expect=201)
    again, again_sha = await statement_pdf(w, client["token"], "2027-01")
    assert again == first and again_sha == first_sha
    assert kept(w, client) == [("2027-01", "fi", first_sha)]
    # February is open: rendered with the refund, never kept.
    february, february_sha = await statement_pdf(w, client["token"], "2027-02")
    assert february_sha is None and euros(500) in text_of(february)
    assert kept(w, client) == [("2027-01", "fi", first_sha)]

    # Swedish is kept on its own, once.
    swedish, swedish_sha = await statement_pdf(w, client["token"], "2027-01", "?language=sv")
    assert "Kontoutdrag 1/2027" in text_of(swedish) and swedish_sha == hashlib.sha256(swedish).hexdigest()
    assert kept(w, client) == [("2027-01", "fi", first_sha), ("2027-01", "sv", swedish_sha)]


async def test_two_first_requests_at_once_keep_one_document(w: CheckedWorld) -> None:
    client, hoiva, _ = await january_with_a_charge(w)
    at_local(w, "2027-02-01T01:00", client, hoiva)
    (one, one_sha), (two, two_sha) = await asyncio.gather(
        statement_pdf(w, client["token"], "2027-01"), statement_pdf(w, client["token"], "2027-01")
    )
    assert one == two and one_sha == two_sha == hashlib.sha256(one).hexdigest()
    assert kept(w, client) == [("2027-01", "fi", one_sha)]


async def test_the_month_start_sweep_keeps_each_notices_document(w: CheckedWorld) -> None:
    client, hoiva, _ = await january_with_a_charge(w)
    await w.service.queue_statement_notices()  # still January: December's (no budget) is owed to nobody
    assert kept(w, client) == []
    at_local(w, "2027-02-01T01:00", client, hoiva)
    await w.service.send_notices()
    [(month, language, sha)] = kept(w, client)
    assert (month, language) == ("2027-01", "fi")  # the notice's language: no decision, so Finnish
    document, header = await statement_pdf(w, client["token"], "2027-01")
    assert header == sha == hashlib.sha256(document).hexdigest()
    assert euros(-1_234) in text_of(document)
    await w.service.send_notices()  # again: nothing more kept
    assert len(kept(w, client)) == 1


async def test_the_current_month_is_never_kept_even_when_asked_in_both_languages(w: CheckedWorld) -> None:
    client, _ = await w.funded(10_000)
    for query in ("", "?language=sv"):
        document, sha = await statement_pdf(w, client["token"], "2027-01", query)
        assert sha is None and euros(10_000) in text_of(document)
    assert kept(w, client) == []


@pytest.mark.sqlite_only
async def test_wallet_check_finds_a_kept_statement_that_is_not_the_one_kept(w: CheckedWorld) -> None:
    client, hoiva, _ = await january_with_a_charge(w)
    at_local(w, "2027-02-01T01:00", client, hoiva)
    await statement_pdf(w, client["token"], "2027-01")
    w.sql("DROP TRIGGER statement_documents_append_only_update")  # as someone with the file in hand could
    w.sql("UPDATE statement_documents SET document = CAST('forged' AS BLOB) WHERE client_id = ?", client["id"])
    assert check_database(w.service.settings.db) == [
        f"statement {client['id']} 2027-01 fi: its document is not the one stored (SHA-256 differs)"
    ]
    # Served as kept all the same: what the check is for.
    document, sha = await statement_pdf(w, client["token"], "2027-01")
    assert document == b"forged" and sha != hashlib.sha256(document).hexdigest()
    w.sql("UPDATE statement_documents SET document = ?, document_sha256 = ?", b"", hashlib.sha256(b"").hexdigest())
