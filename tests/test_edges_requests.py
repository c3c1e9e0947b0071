"""Edges of requests found by an outside test run (issue 21, items 3, 4 and 6).

- A phone number is ASCII digits, spaces, ``+``, ``-`` and parentheses, and nothing else, on every
  route that takes one: what a provider types and what is charged are the same number as a person
  reads it. Anything else is 422 ``validation_error`` naming ``phone``, and writes nothing.
- ``POST /v1/token`` answers as RFC 6749 section 5.2 says (400 ``invalid_request`` or
  ``unsupported_grant_type``, 401 ``invalid_client`` with a Basic challenge), the problem+json
  members beside the OAuth ones, never cached.
- The OpenAPI document lists every status an operation answers, and nothing else (no ``default``).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import NATIONAL_ID, World
from tests.state import changed_tables, database_state

PROBLEM = "application/problem+json"
PHONE = "+358401234567"

# Each of these phonenumbers reads as +358401234567 (or its national form): a charge to one of
# them was captured on that number.
HOSTILE_PHONES = {
    "right-to-left override": "\u202e0401234567",
    "zero-width space": "040\u200b1234567",
    "byte order mark": "\ufeff0401234567",
    "no-break space": "040\u00a0123\u00a04567",
    "fullwidth digits": "\uff10\uff14\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
    "Arabic-Indic digits": "\u0660\u0664\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
    "Devanagari digits": "\u0966\u096a\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d",
    "a tel: URI": "tel:+358401234567",
    "an extension": "+358401234567 ext 1",
    "a tab": "040\t1234567",
    "a dot": "040.123.4567",
    "a letter": "040 123 456O",
    "a final newline": "0401234567\n",
}
# As people write them: still read, and normalised to E.164.
WRITTEN_BY_PEOPLE = ("040 123 4567", "040-1234567", "+358 (0)40 123 4567", "(040) 123 45 67", "+358401234567")


class Unchanged:
    """``async with Unchanged(world):`` fails if the block wrote anything anywhere."""

    def __init__(self, world: World) -> None:
        self.db = world.service.settings.db

    async def __aenter__(self) -> None:
        self.before = database_state(self.db)

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is None:
            assert changed_tables(self.before, database_state(self.db)) == []


def _refused_phone(status: int, problem: dict[str, Any], where: Any) -> None:
    assert (status, problem.get("code"), problem.get("field")) == (422, "validation_error", "phone"), (where, problem)


# 3. Phone numbers.


async def test_a_hostile_phone_is_refused_on_every_route_that_takes_one(world: World) -> None:
    client, provider = await world.funded(10_000, phone=PHONE)
    sent = len(world.sms.sent)
    before = await world.wallet(client)
    async with Unchanged(world):
        for name, phone in HOSTILE_PHONES.items():
            charge = {
                "phone": phone,
                "amount": 1_000,
                "category": "home_care",
                "identity": {"method": "national_id", "national_id": NATIONAL_ID},
            }
            status, problem = await world.call("POST", "/v1/charges", provider["token"], charge, key=f"k-{name}")
            _refused_phone(status, problem, (name, "charge"))
            otp = {**charge, "identity": {"method": "otp"}}
            status, problem = await world.call("POST", "/v1/charges", provider["token"], otp)
            _refused_phone(status, problem, (name, "otp charge"))
            new_client = {"name": "Eino Esimerkki", "phone": phone}
            status, problem = await world.call("POST", "/v1/clients", world.admin, new_client)
            _refused_phone(status, problem, (name, "client"))
            status, problem = await world.call("POST", "/v1/login", json={"phone": phone})
            _refused_phone(status, problem, (name, "login"))
            status, problem = await world.call("POST", "/v1/login/verify", json={"phone": phone, "code": "123456"})
            _refused_phone(status, problem, (name, "login/verify"))
            mandate = {"phone": phone, "scope": "view"}
            path = f"/v1/clients/{client['id']}/representatives"
            status, problem = await world.call("POST", path, world.admin, mandate)
            _refused_phone(status, problem, (name, "representative"))
    assert await world.wallet(client) == before  # nothing charged, nothing held
    assert len(world.sms.sent) == sent  # no code sent to anyone


async def test_a_phone_as_people_write_it_is_read_and_normalised(world: World) -> None:
    client, provider = await world.funded(10_000, phone=PHONE)
    for index, written in enumerate(WRITTEN_BY_PEOPLE):
        status, charge = await world.call(
            "POST",
            "/v1/charges",
            provider["token"],
            {
                "phone": written,
                "amount": 100,
                "category": "home_care",
                "identity": {"method": "national_id", "national_id": NATIONAL_ID},
            },
            key=f"written-{index}",
        )
        assert status == 201 and charge["status"] == "captured", (written, charge)
    assert (await world.wallet(client))["balance"] == 10_000 - 100 * len(WRITTEN_BY_PEOPLE)
    _, created = await world.call(
        "POST", "/v1/clients", world.admin, {"name": "Eino", "phone": "050 (765) 43-21"}, expect=201
    )
    assert created["phone"] == "+358507654321"
    await world.call("POST", "/v1/login", json={"phone": "040 123 4567"}, expect=202)
    assert world.sms.sent[-1]["to"] == PHONE


def test_the_document_declares_the_phone_characters() -> None:
    from wallet.api import openapi
    from wallet.api.app import create_app
    from wallet.settings import Settings

    document = openapi.document(create_app(Settings(), background_jobs=False).router, Settings())
    phone = document["components"]["schemas"]["NewClient"]["properties"]["phone"]
    assert phone["pattern"] == "^[0-9 +()-]+$"
