"""Itemized charges (suoritteet): each item priced at the provider's active offer and the unit value
in force on its service date, then charged as one ordinary charge of the items' amount in their
category, all in one unit of work: a price or a unit value changed meanwhile cannot slip between
the pricing and the charge, and a refusal anywhere (402, 403, 422) writes nothing.

Its own unit factory, so the charge batch runner (``charge_batch``) never takes it: it runs one by one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from wallet.ledger.catalog import UnitValue, format_quantity, price_item, value_on
from wallet.ledger.errors import CategoryNotAllowed, InvariantViolation, ProviderNotApproved, ValidationError
from wallet.ledger.money import MAX_AMOUNT_CENTS
from wallet.storage.port import ChargeCommand, ChargeItemCommand, Limits, Record, Refusal
from wallet.storage.sql import charges
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

ITEM_COLUMNS = (
    "charge_id, position, service_id, offer_id, quantity_hundredths, unit_price, unit_value, amount, own_share,"
    " service_date"
)
_SERVICE_SQL = "SELECT id, code, category FROM services WHERE code = ?"
_OFFER_SQL = (
    "SELECT o.id, (SELECT p.unit_price FROM offer_prices p WHERE p.offer_id = o.id ORDER BY p.seq DESC LIMIT 1)"
    " AS unit_price FROM offers o WHERE o.provider_id = ? AND o.service_id = ? AND o.status = 'active'"
)
_UNIT_VALUES_SQL = "SELECT valid_from, unit_value FROM service_unit_values WHERE service_id = ? ORDER BY valid_from"


def render_items(rows: Sequence[Row | Record], services: dict[str, str]) -> list[Record]:
    """The items as the API shows them; ``services``: code by service id."""
    return [
        {
            "service": services[row["service_id"]],
            "quantity": format_quantity(row["quantity_hundredths"]),
            "unit_price": row["unit_price"],
            "unit_value": row["unit_value"],
            "amount": row["amount"],
            "own_share": row["own_share"],
            "service_date": row["service_date"],
        }
        for row in rows
    ]


@unit_of_work
def charge(
    command: ChargeCommand,
    items: tuple[ChargeItemCommand, ...],
    limits: Limits,
    now: datetime,
    month: str,
    today: str,
) -> Unit:
    def unit(connection: Connection) -> Record | Refusal:
        services: dict[str, Row] = {}
        for index, item in enumerate(items):
            service = connection.execute(_SERVICE_SQL, (item.service,)).fetchone()
            if service is None:
                raise ValidationError(f"items[{index}].service", "is not a service in the catalog")
            services[item.service] = service
            if item.service_date is not None and item.service_date > today:
                raise ValidationError(f"items[{index}].service_date", f"must be today ({today}) or before")
        categories = {service["category"] for service in services.values()}
        if len(categories) != 1:
            raise CategoryNotAllowed("the items must all be of one category (one budget line)", field="items")
        (category,) = categories
        approved = connection.execute(
            "SELECT 1 FROM providers p JOIN provider_categories c ON c.provider_id = p.id"
            " WHERE p.id = ? AND p.status = 'approved' AND c.category = ?",
            (command.provider_id, category),
        ).fetchone()
        if approved is None:
            raise ProviderNotApproved("the provider is not approved for the items' category", field="items")
        priced: list[Record] = []
        for index, item in enumerate(items):
            service = services[item.service]
            offer = connection.execute(_OFFER_SQL, (command.provider_id, service["id"])).fetchone()
            if offer is None or offer["unit_price"] is None:
                raise ValidationError(f"items[{index}].service", "the provider has no active offer of this service")
            day = item.service_date or today
            history = [
                UnitValue(r["valid_from"], r["unit_value"])
                for r in connection.execute(_UNIT_VALUES_SQL, (service["id"],))
            ]
            unit_value = value_on(history, day)
            if unit_value is None:
                raise ValidationError(f"items[{index}].service_date", "the service had no unit value on that day")
            price = price_item(item.quantity_hundredths, offer["unit_price"], unit_value)
            priced.append(
                {
                    "position": index,
                    "service_id": service["id"],
                    "offer_id": offer["id"],
                    "quantity_hundredths": item.quantity_hundredths,
                    "unit_price": offer["unit_price"],
                    "unit_value": unit_value,
                    "amount": price.amount,
                    "own_share": price.own_share,
                    "service_date": day,
                }
            )
        amount = sum(item["amount"] for item in priced)
        own_share = sum(item["own_share"] for item in priced)
        if amount < 1:
            raise ValidationError("items", "come to less than a cent for the budget to pay")
        if amount > MAX_AMOUNT_CENTS:
            raise ValidationError("items", f"come to more than {MAX_AMOUNT_CENTS} cents")
        whole = dataclasses.replace(command, amount=amount, category=category)
        outcome = charges.charge.__wrapped__(whole, limits, now, month)(connection)  # type: ignore[attr-defined]
        if isinstance(outcome, Refusal):
            return outcome  # a failed identity check: recorded as such, no items
        connection.executemany(
            f"INSERT INTO charge_items ({ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    outcome["id"],
                    item["position"],
                    item["service_id"],
                    item["offer_id"],
                    item["quantity_hundredths"],
                    item["unit_price"],
                    item["unit_value"],
                    item["amount"],
                    item["own_share"],
                    item["service_date"],
                )
                for item in priced
            ],
        )
        if outcome["amount"] != amount:
            raise InvariantViolation("an itemized charge's amount is not the sum of its items")
        codes = {service["id"]: code for code, service in services.items()}
        return {**outcome, "own_share": own_share, "items": render_items(priced, codes)}

    return unit


async def items_of(reader: Reader, charge_ids: Sequence[str]) -> dict[str, tuple[int, list[Record]]]:
    """Each itemized charge's own share and items, by charge id (charges without items are absent)."""
    if not charge_ids:
        return {}
    marks = ", ".join("?" for _ in charge_ids)
    rows = list(
        await reader.execute_fetchall(
            f"SELECT i.*, s.code FROM charge_items i JOIN services s ON s.id = i.service_id"
            f" WHERE i.charge_id IN ({marks}) ORDER BY i.charge_id, i.position",
            list(charge_ids),
        )
    )
    found: dict[str, tuple[int, list[Record]]] = {}
    for row in rows:
        share, listed = found.get(row["charge_id"], (0, []))
        listed.extend(render_items([row], {row["service_id"]: row["code"]}))
        found[row["charge_id"]] = (share + row["own_share"], listed)
    return found
