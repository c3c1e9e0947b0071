"""`GET /v1/settlements` names the payment batch that holds each settlement, so finance's page can
show settlements as open, invoiced, in a batch or paid."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.camt import Entry, notification
from tests.conftest import World
from tests.test_bank_statements import upload
from tests.test_payment_batches import PAYER, invoiced
from tests.test_reconciliation import provider_and_batch
from wallet.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, **PAYER)


async def listed(world: World, query: str = "") -> dict[str, str | None]:
    _, page = await world.call("GET", f"/v1/settlements?limit=200{query}", world.finance, expect=200)
    return {settlement["id"]: settlement["payment_batch_id"] for settlement in page["data"]}


async def test_each_listed_settlement_names_its_payment_batch_until_the_batch_is_cancelled(world: World) -> None:
    first, second = await invoiced(world, 5_000), await invoiced(world, 7_000)
    provider, still_open = await provider_and_batch(world, amount=1_000)
    assert await listed(world) == {first["id"]: None, second["id"]: None, still_open["id"]: None}

    _, made = await world.call("POST", "/v1/payment-batches", world.finance, {"settlement_ids": [first["id"]]})
    assert await listed(world) == {first["id"]: made["id"], second["id"]: None, still_open["id"]: None}
    assert await listed(world, "&status=invoiced") == {first["id"]: made["id"], second["id"]: None}

    _, cancelled = await world.call("POST", f"/v1/payment-batches/{made['id']}/cancel", world.finance, expect=200)
    assert cancelled["status"] == "cancelled"
    assert await listed(world) == {first["id"]: None, second["id"]: None, still_open["id"]: None}

    # A new batch of every invoiced one; the bank pays the first: paid, and still named by its batch.
    _, again = await world.call("POST", "/v1/payment-batches", world.finance, expect=201)
    assert await listed(world, "&status=invoiced") == {first["id"]: again["id"], second["id"]: again["id"]}
    status, body = await upload(world, notification([Entry(5_000, reference=first["reference"])]))
    assert (status, body["entries"][0]["outcome"]) == (201, "paid")
    paid: dict[str, Any] = await listed(world, "&status=paid")
    assert paid == {first["id"]: again["id"]}
    # A provider's own list names the batch too (its own settlements only).
    _, own = await world.call("GET", "/v1/settlements", provider["token"], expect=200)
    assert [s["payment_batch_id"] for s in own["data"]] == [None]
