"""The monthly statement (saldotiliote) of one wallet: where its money came from and went.

A statement covers what was booked on the wallet's lines from the first moment of the month to the
first moment of the next, both in the organizer's time zone. For every line, and so for the whole
wallet::

    opening_balance + credits - charges + refunds - expiry = closing_balance

Opening and closing balances are read from the ledger independently of the movements between
them; ``build`` refuses (``InvariantViolation``) a statement whose numbers do not add up.
Charges, refunds and expiry are shown as positive amounts; the equation carries the signs.
Money held by pending charges is not a movement: it is shown beside the closing balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wallet.ledger.catalog import format_quantity
from wallet.ledger.errors import InvariantViolation

# How each transaction type moves a wallet line, as the statement shows it.
CREDIT = "credit"
CAPTURE = "capture"
REFUND = "refund"
EXPIRY = "expiry"
SECTIONS = {CREDIT: "credits", CAPTURE: "charges", REFUND: "refunds", EXPIRY: "expiry"}
INCOMING = {CREDIT, REFUND}  # postings on the wallet are positive; the others negative


@dataclass(frozen=True)
class Movement:
    """The sum of one kind of posting on one wallet line in the period (signed, as posted)."""

    type: str
    category: str
    amount: int
    count: int
    provider_id: str | None = None
    provider_name: str | None = None


def build(
    month: str,
    opening: dict[str, int],
    closing: dict[str, int],
    movements: list[Movement],
) -> dict[str, Any]:
    """The statement of ``month`` from balances per category at its start and end, and movements."""
    categories = sorted(set(opening) | set(closing) | {m.category for m in movements})
    lines: dict[str, dict[str, Any]] = {
        category: {
            "category": category,
            "opening_balance": opening.get(category, 0),
            "credits": 0,
            "charges": 0,
            "refunds": 0,
            "expiry": 0,
            "closing_balance": closing.get(category, 0),
        }
        for category in categories
    }
    sections: dict[str, dict[str, Any]] = {name: {"amount": 0, "count": 0} for name in SECTIONS.values()}
    by_category: dict[str, dict[str, dict[str, int]]] = {"credits": {}, "expiry": {}}
    by_provider: dict[str, dict[tuple[str | None, str], dict[str, Any]]] = {"charges": {}, "refunds": {}}
    for movement in movements:
        section = SECTIONS.get(movement.type)
        if section is None:
            raise InvariantViolation(f"a {movement.type} posting on wallet line {movement.category}")
        if (movement.amount > 0) != (movement.type in INCOMING) or movement.amount == 0:
            raise InvariantViolation(f"a {movement.type} of {movement.amount} on wallet line {movement.category}")
        shown = abs(movement.amount)
        lines[movement.category][section] += shown
        sections[section]["amount"] += shown
        sections[section]["count"] += movement.count
        if section in by_category:
            entry = by_category[section].setdefault(movement.category, {"amount": 0, "count": 0})
            entry["amount"] += shown
            entry["count"] += movement.count
        else:
            key = (movement.provider_id, movement.category)
            row = by_provider[section].setdefault(
                key,
                {
                    "provider_id": movement.provider_id,
                    "provider_name": movement.provider_name,
                    "category": movement.category,
                    "amount": 0,
                    "count": 0,
                },
            )
            row["amount"] += shown
            row["count"] += movement.count
    for line in lines.values():
        _check_adds_up(line, f"line {line['category']}")
    for section in ("credits", "expiry"):
        sections[section]["by_category"] = [
            {"category": category, **figures} for category, figures in sorted(by_category[section].items())
        ]
    for section in ("charges", "refunds"):
        sections[section]["by_provider"] = sorted(
            by_provider[section].values(),
            key=lambda row: (row["provider_name"] or "", row["provider_id"] or "", row["category"]),
        )
    statement: dict[str, Any] = {
        "month": month,
        "opening_balance": sum(line["opening_balance"] for line in lines.values()),
        **sections,
        "closing_balance": sum(line["closing_balance"] for line in lines.values()),
        "lines": [lines[category] for category in categories],
    }
    _check_adds_up(
        {
            "opening_balance": statement["opening_balance"],
            "closing_balance": statement["closing_balance"],
            **{name: sections[name]["amount"] for name in SECTIONS.values()},
        },
        "the wallet",
    )
    return statement


def _check_adds_up(figures: dict[str, Any], what: str) -> None:
    computed = (
        figures["opening_balance"] + figures["credits"] - figures["charges"] + figures["refunds"] - figures["expiry"]
    )
    if computed != figures["closing_balance"]:
        raise InvariantViolation(
            f"statement of {what}: opening + credits - charges + refunds - expiry = {computed},"
            f" but the ledger's closing balance is {figures['closing_balance']}"
        )


def bought(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the month's captured itemized charges bought, per service (``service``, ``unit``,
    ``quantity_hundredths``, ``amount``, ``own_share``, ``count`` of items), and the own share in all:
    the part the client paid the providers directly, beside the statement, never in its equation."""
    by_service = [
        {
            "service": row["service"],
            "unit": row["unit"],
            "quantity": format_quantity(row["quantity_hundredths"]),
            "amount": row["amount"],
            "own_share": row["own_share"],
            "count": row["count"],
        }
        for row in rows
    ]
    return {"own_share": sum(row["own_share"] for row in rows), "by_service": by_service}
