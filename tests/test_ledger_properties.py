"""Property tests: any sequence of credits, charges, holds, captures, voids, refunds and expiries
keeps every invariant, and money is conserved (a Jepsen-bank style total), checked against a model."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NATIONAL_ID, OTHER_NATIONAL_ID, RecordingSms
from wallet.auth.tokens import Principal, Role
from wallet.bootstrap import open_service
from wallet.check import check_database
from wallet.clock import FakeClock
from wallet.ledger.errors import OperationError
from wallet.ledger.months import UnusedPolicy
from wallet.settings import Settings
from wallet.shapes import requests

PHONES = ["+358401000001", "+358401000002"]
CATEGORIES = ["home_care", "transport"]
MONTHLY = {"home_care": 3_000, "transport": 1_000}

operation = st.one_of(
    st.tuples(
        st.just("charge"),
        st.sampled_from(PHONES),
        st.sampled_from(CATEGORIES),
        st.integers(1, 2_500),
        st.sampled_from(["national_id", "otp", "wrong_id"]),
    ),
    st.tuples(st.just("confirm"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("void"), st.integers(0, 50)),
    st.tuples(st.just("refund"), st.integers(0, 50), st.integers(1, 2_500)),
    st.tuples(st.just("sweep"), st.integers(0, 400)),
    st.tuples(
        st.just("next_month"),
    ),
)


@dataclass
class Model:
    """What the wallet should hold, computed from acknowledged answers only."""

    balance: dict[tuple[str, str], int] = field(default_factory=dict)
    held: dict[tuple[str, str], int] = field(default_factory=dict)
    charges: list[dict] = field(default_factory=list)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=40))
def test_any_sequence_keeps_every_invariant(operations: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_run(Path(directory), operations))


async def _run(directory: Path, operations: list[tuple]) -> None:
    settings_ = Settings(
        db=str(directory / "w.db"),
        signing_key=str(directory / "k.pem"),
        sms_outbox=str(directory / "sms"),
        auto_credit_run=False,
    )
    clock = FakeClock(datetime(2027, 1, 15, 10, tzinfo=UTC))
    sms = RecordingSms()
    model = Model()
    async with open_service(settings_, clock=clock, sms=sms) as service:
        for code in CATEGORIES:
            await service.create_category(requests.NewCategory(code, code))
        clients = {}
        for phone in PHONES:
            client = await service.create_client(requests.NewClient("x", phone, NATIONAL_ID))
            clients[phone] = client["id"]
            await service.create_budget(
                client["id"],
                requests.NewBudget(
                    "2027-01",
                    "2027-06",
                    UnusedPolicy.EXPIRE,
                    tuple(requests.BudgetLine(*line) for line in MONTHLY.items()),
                ),
            )
        provider = await service.create_provider(
            requests.NewProvider("p", "2077474-0", "FI2112345600000785", tuple(CATEGORIES))
        )
        await service.set_provider_status(provider["id"], "approved")
        principal = Principal(Role.PROVIDER, provider["id"], provider_id=provider["id"])
        await service.credit_run("2027-01")
        for phone in PHONES:
            for category, amount in MONTHLY.items():
                model.balance[(phone, category)] = amount
                model.held[(phone, category)] = 0

        for op in operations:
            kind = op[0]
            try:
                if kind == "charge":
                    _, phone, category, amount, method = op
                    identity = "otp" if method == "otp" else "national_id"
                    national_id = OTHER_NATIONAL_ID if method == "wrong_id" else NATIONAL_ID
                    command = requests.NewCharge(
                        phone,
                        amount,
                        category,
                        requests.NationalIdIdentity(national_id)
                        if identity == "national_id"
                        else requests.OtpIdentity(),
                    )
                    charge = (await service.charge(principal, command, None)).value
                    key = (phone, category)
                    if charge["status"] == "captured":
                        model.balance[key] -= amount
                    else:
                        model.held[key] += amount
                    code = sms.last_code(phone) if identity == "otp" else None
                    model.charges.append({**charge, "key": key, "code": code})
                elif kind in ("confirm", "void", "refund") and model.charges:
                    charge = model.charges[op[1] % len(model.charges)]
                    if kind == "confirm":
                        code = charge["code"] if op[2] else "000000"
                        if code is None:
                            continue
                        result = (await service.confirm_charge(principal, charge["id"], code, None)).value
                        if result["status"] == "captured":
                            model.held[charge["key"]] -= charge["amount"]
                            model.balance[charge["key"]] -= charge["amount"]
                            charge["status"] = "captured"
                    elif kind == "void":
                        await service.void_charge(principal, charge["id"], None)
                        model.held[charge["key"]] -= charge["amount"]
                        charge["status"] = "voided"
                    else:
                        await service.refund(principal, charge["id"], op[2], None)
                        model.balance[charge["key"]] += op[2]
                elif kind == "sweep":
                    clock.advance(seconds=op[1])
                    await service.sweep_expired_holds()
                    await _resync_voided(service, principal, model)
                elif kind == "next_month" and clock.now().month == 1:
                    clock.advance(days=20)  # into February
                    await service.sweep_expired_holds()
                    await _resync_voided(service, principal, model)
                    await service.credit_run("2027-02")
                    for key in model.balance:
                        available = model.balance[key] - model.held[key]
                        model.balance[key] += MONTHLY[key[1]] - available  # the remainder expired
            except OperationError:
                pass  # refusals change nothing; the model is only moved on success
            if kind == "confirm" and model.charges:
                await _resync_voided(service, principal, model)  # a 5th wrong code voids
            assert check_database(settings_.db) == []
            for phone, client_id in clients.items():
                wallet = await service.storage.get_wallet(client_id, "2027-01" if clock.now().month == 1 else "2027-02")
                for line in wallet["lines"]:
                    key = (phone, line["category"])
                    assert line["balance"] == model.balance[key], (op, line, model.balance[key])
                    assert line["held"] == model.held[key]
                    assert line["available"] >= 0
        # Conservation: whatever is not on funding is on a wallet or with the provider.
        import sqlite3

        connection = sqlite3.connect(settings_.db)
        total = connection.execute("SELECT SUM(balance) FROM accounts").fetchone()[0]
        connection.close()
        assert total == 0


async def _resync_voided(service, principal, model: Model) -> None:  # type: ignore[no-untyped-def]
    for charge in model.charges:
        if charge["status"] == "pending":
            now = await service.get_charge(principal, charge["id"])
            if now["status"] == "voided":
                model.held[charge["key"]] -= charge["amount"]
                charge["status"] = "voided"
