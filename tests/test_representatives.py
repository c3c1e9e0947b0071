"""Representatives (puolesta-asiointi): the organizer gives a person a mandate to act for a client,
`view` or `manage`; the representative logs in with their own phone and acts for the clients they
hold a mandate for; every action says who acted for whom; a revocation stops the next request,
whatever tokens are out there."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jwt
from aiohttp.test_utils import TestClient

from tests.conftest import OTHER_NATIONAL_ID, RecordingSms, World
from tests.test_app_approval import app_charge, next_event
from tests.test_openapi import CheckedWorld, Contract, fetch_document
from wallet.clock import FakeClock

REPRESENTATIVE_PHONE = "+358501234567"


async def link(
    world: World, client: dict[str, Any], scope: str = "manage", phone: str = REPRESENTATIVE_PHONE, **extra: Any
) -> dict[str, Any]:
    body = {"phone": phone, "scope": scope, "name": "Liisa Läheinen", **extra}
    _, created = await world.call("POST", f"/v1/clients/{client['id']}/representatives", world.admin, body, expect=201)
    return dict(created)


async def revoke(world: World, client: dict[str, Any], representation: dict[str, Any]) -> dict[str, Any]:
    path = f"/v1/clients/{client['id']}/representatives/{representation['id']}/revoke"
    _, revoked = await world.call("POST", path, world.admin, expect=200)
    return dict(revoked)


async def log_in(world: World, phone: str = REPRESENTATIVE_PHONE, client_id: str | None = None) -> tuple[int, Any]:
    await world.call("POST", "/v1/login", json={"phone": phone}, expect=202)
    body = {"phone": phone, "code": world.sms.last_code(phone)}
    if client_id is not None:
        body["client_id"] = client_id
    return await world.call("POST", "/v1/login/verify", json=body)


async def representative_token(world: World, phone: str = REPRESENTATIVE_PHONE, client_id: str | None = None) -> str:
    status, body = await log_in(world, phone, client_id)
    assert status == 200, body
    return str(body["access_token"])


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def audit_rows(world: World) -> list[dict[str, Any]]:
    return world.records("SELECT * FROM audit_log ORDER BY seq")


async def charge_status(world: World, provider: dict[str, Any], charge: dict[str, Any]) -> str:
    _, seen = await world.call("GET", f"/v1/charges/{charge['id']}", provider["token"], expect=200)
    return str(seen["status"])


async def test_a_representative_approves_for_the_linked_client_and_not_for_another(world: World) -> None:
    client, provider = await world.funded(10_000)
    other = await world.client(phone="+358401112226")
    await world.budget(other["id"], {"home_care": 5_000})
    await world.credit()
    mandate = await link(world, client)
    assert (mandate["scope"], mandate["status"], mandate["phone"]) == ("manage", "active", REPRESENTATIVE_PHONE)

    token = await representative_token(world)
    assert {key: claims(token)[key] for key in ("role", "sub", "representative_id", "client_ids", "client_id")} == {
        "role": "representative",
        "sub": mandate["representative_id"],
        "representative_id": mandate["representative_id"],
        "client_ids": [client["id"]],
        "client_id": client["id"],
    }
    seen = await world.call("GET", "/v1/me/wallet", token, expect=200)
    assert seen[1]["client_id"] == client["id"] and seen[1]["balance"] == 10_000

    mine = await app_charge(world, provider, client, 2_500)
    _, approved = await world.call("POST", f"/v1/me/charges/{mine['id']}/approve", token, expect=200)
    assert approved["status"] == "captured"
    assert (await world.wallet(client))["balance"] == 7_500

    theirs = await app_charge(world, provider, other, 1_000)
    status, body = await world.call("POST", f"/v1/me/charges/{theirs['id']}/approve?client_id={other['id']}", token)
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await world.call("POST", f"/v1/me/charges/{theirs['id']}/approve", token)  # acting for client
    assert (status, body["code"]) == (404, "not_found")
    await world.call("GET", f"/v1/me/wallet?client_id={other['id']}", token, expect=403)
    assert await charge_status(world, provider, theirs) == "pending"
    assert (await world.wallet(other))["available"] == 4_000

    # The audit chain says who acted for whom.
    entries = [row for row in audit_rows(world) if row["subject"] == mine["id"] and row["action"] == "charge.approved"]
    assert len(entries) == 1
    assert entries[0]["actor"] == f"representative:{mandate['representative_id']}"
    assert json.loads(entries[0]["data"]) == {
        "client_id": client["id"],
        "representative_id": mandate["representative_id"],
        "representation_id": mandate["id"],
    }
    linked = [row for row in audit_rows(world) if row["action"] == "representative.linked"]
    assert [(row["subject"], row["actor"]) for row in linked] == [(mandate["id"], "admin:admin-cli")]
    assert json.loads(linked[0]["data"])["client_id"] == client["id"]


async def test_revocation_takes_effect_at_once_even_for_an_issued_token(world: World) -> None:
    client, provider = await world.funded(10_000)
    mandate = await link(world, client)
    token = await representative_token(world)
    await world.call("GET", "/v1/me/wallet", token, expect=200)
    pending = await app_charge(world, provider, client, 1_000)

    revoked = await revoke(world, client, mandate)
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    for method, path in (
        ("GET", "/v1/me/wallet"),
        ("GET", "/v1/me/transactions"),
        ("GET", "/v1/me/charges"),
        ("GET", "/v1/me/statements/2027-01"),
        ("GET", "/v1/me/events"),
        ("POST", f"/v1/me/charges/{pending['id']}/approve"),
        ("POST", f"/v1/me/charges/{pending['id']}/decline"),
    ):
        status, body = await world.call(method, path, token)
        assert (status, body["code"]) == (403, "forbidden"), (method, path)
    assert await charge_status(world, provider, pending) == "pending"
    _, listed = await world.call("GET", "/v1/me/mandates", token, expect=200)
    assert listed["data"] == []

    # No mandate left: no login code is sent, and nothing verifies.
    sent = len(world.sms.sent)
    await world.call("POST", "/v1/login", json={"phone": REPRESENTATIVE_PHONE}, expect=202)
    assert len(world.sms.sent) == sent
    status, body = await world.call("POST", "/v1/login/verify", json={"phone": REPRESENTATIVE_PHONE, "code": "123456"})
    assert (status, body["code"]) == (422, "identity_check_failed")

    # Revoking again changes nothing; the audit chain has one linking and one revocation, by the organizer.
    assert await revoke(world, client, mandate) == revoked
    actions = [(row["action"], row["actor"]) for row in audit_rows(world) if row["subject"] == mandate["id"]]
    assert actions == [("representative.linked", "admin:admin-cli"), ("representative.revoked", "admin:admin-cli")]
    _, page = await world.call("GET", f"/v1/clients/{client['id']}/representatives", world.admin, expect=200)
    assert [(item["id"], item["status"]) for item in page["data"]] == [(mandate["id"], "revoked")]


async def test_a_revocation_racing_approvals_never_lets_one_through_after_it(world: World) -> None:
    client, provider = await world.funded(100_000)
    mandate = await link(world, client)
    token = await representative_token(world)
    charges = [await app_charge(world, provider, client, 1_000) for _ in range(12)]
    path = f"/v1/clients/{client['id']}/representatives/{mandate['id']}/revoke"
    calls = [world.call("POST", f"/v1/me/charges/{charge['id']}/approve", token) for charge in charges[:6]]
    calls.append(world.call("POST", path, world.admin))
    calls += [world.call("POST", f"/v1/me/charges/{charge['id']}/approve", token) for charge in charges[6:]]
    results = await asyncio.gather(*calls)
    assert results[6][0] == 200
    answers = [status for status, _ in results[:6] + results[7:]]
    assert set(answers) <= {200, 403}, answers
    entries = audit_rows(world)
    revoked_at = next(row["seq"] for row in entries if row["action"] == "representative.revoked")
    approved = {row["subject"]: row["seq"] for row in entries if row["action"] == "charge.approved"}
    for charge, status in zip(charges, answers, strict=True):
        if status == 200:
            assert approved[charge["id"]] < revoked_at  # approved before the revocation committed
            assert await charge_status(world, provider, charge) == "captured"
        else:
            assert charge["id"] not in approved
            assert await charge_status(world, provider, charge) == "pending"
    wallet = await world.wallet(client)
    assert wallet["balance"] == 100_000 - 1_000 * answers.count(200)


async def test_a_view_representative_reads_but_cannot_approve_or_decline(world: World) -> None:
    client, provider = await world.funded(10_000)
    await link(world, client, scope="view")
    token = await representative_token(world)
    charge = await app_charge(world, provider, client, 3_000)
    _, wallet = await world.call("GET", "/v1/me/wallet", token, expect=200)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (10_000, 3_000, 7_000)
    _, history = await world.call("GET", "/v1/me/transactions", token, expect=200)
    assert [item["type"] for item in history["data"]] == ["credit"]
    _, waiting = await world.call("GET", "/v1/me/charges?status=pending", token, expect=200)
    assert [item["id"] for item in waiting["data"]] == [charge["id"]]
    _, statement = await world.call("GET", "/v1/me/statements/2027-01", token, expect=200)
    assert statement["closing_balance"] == 10_000
    for answer in ("approve", "decline"):
        status, body = await world.call("POST", f"/v1/me/charges/{charge['id']}/{answer}", token, key=f"k-{answer}")
        assert (status, body["code"]) == (403, "forbidden")
    assert await charge_status(world, provider, charge) == "pending"
    assert not [row for row in audit_rows(world) if row["action"] in ("charge.approved", "charge.declined")]


async def test_a_representative_of_several_clients_chooses_at_login_or_per_request(world: World) -> None:
    first, provider = await world.funded(10_000)
    second = await world.client(phone="+358401112226", national_id=OTHER_NATIONAL_ID)
    await world.budget(second["id"], {"home_care": 4_000})
    await world.credit()
    stranger = await world.client(phone="+358401112227")
    to_first = await link(world, first, scope="manage")
    to_second = await link(world, second, scope="view")
    assert to_first["representative_id"] == to_second["representative_id"]  # one person, two mandates

    token = await representative_token(world)
    assert claims(token)["client_ids"] == [first["id"], second["id"]] and "client_id" not in claims(token)
    status, body = await world.call("GET", "/v1/me/wallet", token)
    assert (status, body["code"], body["field"]) == (422, "validation_error", "client_id")
    assert (await world.call("GET", f"/v1/me/wallet?client_id={first['id']}", token, expect=200))[1][
        "balance"
    ] == 10_000
    assert (await world.call("GET", f"/v1/me/wallet?client_id={second['id']}", token, expect=200))[1][
        "balance"
    ] == 4_000
    await world.call("GET", f"/v1/me/wallet?client_id={stranger['id']}", token, expect=403)
    _, mandates = await world.call("GET", "/v1/me/mandates", token, expect=200)
    assert [(m["client_id"], m["scope"]) for m in mandates["data"]] == [(first["id"], "manage"), (second["id"], "view")]

    held = await app_charge(world, provider, second, 500)
    await world.call("POST", f"/v1/me/charges/{held['id']}/approve?client_id={second['id']}", token, expect=403)

    # Chosen at login: the token's default. A client without a mandate is refused and the code stays unspent.
    await world.call("POST", "/v1/login", json={"phone": REPRESENTATIVE_PHONE}, expect=202)
    code = world.sms.last_code(REPRESENTATIVE_PHONE)
    status, body = await world.call(
        "POST", "/v1/login/verify", json={"phone": REPRESENTATIVE_PHONE, "code": code, "client_id": stranger["id"]}
    )
    assert (status, body["code"]) == (403, "forbidden")
    _, issued = await world.call(
        "POST",
        "/v1/login/verify",
        json={"phone": REPRESENTATIVE_PHONE, "code": code, "client_id": second["id"]},
        expect=200,
    )
    assert claims(issued["access_token"])["client_id"] == second["id"]
    assert (await world.call("GET", "/v1/me/wallet", issued["access_token"], expect=200))[1]["client_id"] == second[
        "id"
    ]


async def test_a_phone_of_a_client_and_a_representative_logs_in_as_either(world: World) -> None:
    parent, _ = await world.funded(10_000)
    child = await world.client(phone="+358401112226", national_id=OTHER_NATIONAL_ID)
    await world.budget(child["id"], {"home_care": 2_000})
    await world.credit()
    await link(world, child, phone=parent["phone"])

    status, own = await log_in(world, parent["phone"])  # as before: the phone's own wallet
    assert status == 200 and claims(own["access_token"])["role"] == "client"
    assert claims(own["access_token"])["client_id"] == parent["id"]
    status, acting = await log_in(world, parent["phone"], client_id=child["id"])
    assert status == 200 and claims(acting["access_token"])["role"] == "representative"
    _, wallet = await world.call("GET", "/v1/me/wallet", acting["access_token"], expect=200)
    assert (wallet["client_id"], wallet["balance"]) == (child["id"], 2_000)
    # The client's own token names only itself.
    await world.call("GET", f"/v1/me/wallet?client_id={child['id']}", own["access_token"], expect=403)
    await world.call("GET", f"/v1/me/wallet?client_id={parent['id']}", own["access_token"], expect=200)


async def test_the_organizer_links_with_checks(world: World) -> None:
    client, _ = await world.funded(1_000)
    other = await world.client(phone="+358401112226")
    path = f"/v1/clients/{client['id']}/representatives"
    first = await link(world, client, national_id="010101-123N")
    assert first["has_national_id"] is True and first["name"] == "Liisa Läheinen"
    for body, status, code in (
        ({"phone": "+358509999999", "scope": "everything"}, 422, "validation_error"),
        ({"phone": "not a phone", "scope": "view"}, 422, "validation_error"),
        ({"phone": "+358509999999", "scope": "view", "national_id": "010101-123X"}, 422, "validation_error"),
        ({"phone": client["phone"], "scope": "view"}, 409, "conflict"),  # the client's own phone
        ({"phone": REPRESENTATIVE_PHONE, "scope": "view"}, 409, "conflict"),  # already acts for this client
    ):
        answered, problem = await world.call("POST", path, world.admin, body)
        assert (answered, problem["code"]) == (status, code), body
    answered, problem = await world.call(
        "POST",
        f"/v1/clients/{other['id']}/representatives",
        world.admin,
        {"phone": "050 123 4567", "scope": "view", "national_id": OTHER_NATIONAL_ID},
    )
    assert (answered, problem["code"], problem["field"]) == (409, "conflict", "national_id")
    await world.call(
        "POST",
        "/v1/clients/cl_nobody/representatives",
        world.admin,
        {"phone": "+358509999999", "scope": "view"},
        expect=404,
    )
    await world.call("GET", "/v1/clients/cl_nobody/representatives", world.admin, expect=404)
    await world.call("POST", f"{path}/rl_nobody/revoke", world.admin, expect=404)
    await world.call("POST", f"/v1/clients/{other['id']}/representatives/{first['id']}/revoke", world.admin, expect=404)
    await world.call("POST", path, client["token"], {"phone": "+358509999999", "scope": "view"}, expect=403)
    await world.call("GET", path, world.finance, expect=403)

    # A revoked mandate can be given again, as a new mandate.
    await revoke(world, client, first)
    again = await link(world, client, scope="view", phone="050 123 4567")
    assert again["id"] != first["id"] and again["representative_id"] == first["representative_id"]
    _, page = await world.call("GET", f"{path}?limit=1", world.admin, expect=200)
    assert [item["id"] for item in page["data"]] == [again["id"]] and page["next_cursor"]
    _, rest = await world.call("GET", f"{path}?limit=1&cursor={page['next_cursor']}", world.admin, expect=200)
    assert [item["id"] for item in rest["data"]] == [first["id"]] and rest["next_cursor"] is None

    # Phones and national ids are not in the database in clear.
    dump = world.dump()
    assert REPRESENTATIVE_PHONE not in dump and "501234567" not in dump and "010101-123N" not in dump


async def test_a_revocation_ends_an_open_event_stream(world: World) -> None:
    client, provider = await world.funded(10_000)
    mandate = await link(world, client, scope="view")
    token = await representative_token(world)
    stream = await world.http.get("/v1/me/events", headers=world.auth(token))
    try:
        assert stream.status == 200
        assert (await next_event(stream))["balance"] == 10_000  # the opening snapshot
        await revoke(world, client, mandate)
        await app_charge(world, provider, client, 1_000)  # a change the representative must not see

        async def rest() -> bytes:
            return await stream.content.read()  # to the end of the stream

        remainder = await asyncio.wait_for(rest(), 10)
        assert b"event: hold" not in remainder
    finally:
        stream.close()


async def test_the_representative_responses_match_the_openapi_document(
    http: TestClient, sms: RecordingSms, clock: FakeClock
) -> None:
    w = CheckedWorld(http, sms, clock)
    w.contract = Contract(await fetch_document(http))
    client, provider = await w.funded(10_000)
    path = f"/v1/clients/{client['id']}/representatives"
    _, mandate = await w.call("POST", path, w.admin, {"phone": REPRESENTATIVE_PHONE, "scope": "manage"}, expect=201)
    await w.call("POST", path, w.admin, {"phone": REPRESENTATIVE_PHONE, "scope": "manage"}, expect=409)
    await w.call("POST", path, w.admin, {"phone": REPRESENTATIVE_PHONE, "scope": "all"}, expect=422)
    await w.call("GET", path, w.admin, expect=200)
    await w.call("POST", "/v1/login", json={"phone": REPRESENTATIVE_PHONE}, expect=202)
    code = w.sms.last_code(REPRESENTATIVE_PHONE)
    body = {"phone": REPRESENTATIVE_PHONE, "code": code}
    await w.call("POST", "/v1/login/verify", json={**body, "client_id": "cl_nobody"}, expect=403)
    _, issued = await w.call("POST", "/v1/login/verify", json=body, expect=200)
    token = issued["access_token"]
    await w.call("GET", "/v1/me/mandates", token, expect=200)
    await w.call("GET", f"/v1/me/wallet?client_id={client['id']}", token, expect=200)
    charge = await app_charge(w, provider, client, 1_000)
    await w.call("POST", f"/v1/me/charges/{charge['id']}/approve", token, expect=200)
    await w.call("GET", "/v1/me/mandates", client["token"], expect=403)
    await w.call("POST", f"{path}/{mandate['id']}/revoke", w.admin, expect=200)
    await w.call("GET", "/v1/me/wallet", token, expect=403)
    await w.call("POST", f"{path}/rl_nobody/revoke", w.admin, expect=404)
    exercised = {(method, template) for method, template, _ in w.contract.seen}
    assert {
        ("POST", "/v1/clients/{client_id}/representatives"),
        ("GET", "/v1/clients/{client_id}/representatives"),
        ("POST", "/v1/clients/{client_id}/representatives/{representation_id}/revoke"),
        ("GET", "/v1/me/mandates"),
    } <= exercised


async def test_wallet_check_finds_a_mandate_revoked_behind_the_audit_logs_back(world: World) -> None:
    client, _ = await world.funded(1_000)
    mandate = await link(world, client)
    from wallet.check import check_database

    assert check_database(world.service.settings.db) == []
    with world.database() as database:  # an UPDATE straight on the database: no audit entry, unlike the API's
        database.execute(
            "UPDATE representations SET revoked_at = created_at, revoked_by = 'nobody' WHERE id = ?", mandate["id"]
        )
    assert check_database(world.service.settings.db) == [
        f"mandate {mandate['id']}: the audit log records its linking 1 times and its revocation 0 times"
    ]
    world.check = lambda: None  # type: ignore[method-assign]  # this database is broken on purpose


async def test_a_representatives_login_codes_have_the_clients_limits(world: World) -> None:
    client, _ = await world.funded(1_000)
    await link(world, client)
    settings = world.service.settings
    await world.call("POST", "/v1/login", json={"phone": REPRESENTATIVE_PHONE}, expect=202)
    code = world.sms.last_code(REPRESENTATIVE_PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(settings.login_code_max_attempts):
        status, body = await world.call("POST", "/v1/login/verify", json={"phone": REPRESENTATIVE_PHONE, "code": wrong})
        assert (status, body["code"]) == (422, "identity_check_failed")
    status, _ = await world.call("POST", "/v1/login/verify", json={"phone": REPRESENTATIVE_PHONE, "code": code})
    assert status == 422  # the code is spent by the guesses
    for _ in range(settings.login_requests_max - 1):
        await world.call("POST", "/v1/login", json={"phone": REPRESENTATIVE_PHONE}, expect=202)
    status, body = await world.call("POST", "/v1/login", json={"phone": REPRESENTATIVE_PHONE})
    assert (status, body["code"]) == (429, "rate_limited")
    # A code once used does not work twice.
    world.clock.advance(seconds=settings.login_requests_window_seconds + 1)
    await representative_token(world)
    status, _ = await world.call(
        "POST",
        "/v1/login/verify",
        json={"phone": REPRESENTATIVE_PHONE, "code": world.sms.last_code(REPRESENTATIVE_PHONE)},
    )
    assert status == 422
