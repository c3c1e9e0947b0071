"""The service catalog and providers' offers: their units of work and their reads.

A service's unit values and an offer's prices are append-only histories (triggers refuse changing
them); what a charge will use is read from them (``wallet.ledger.catalog.value_on``). Every write
is audited in the unit that makes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from wallet.ids import new_id
from wallet.ledger.catalog import OfferStatus, UnitValue, own_share_per_unit, value_on
from wallet.ledger.errors import CategoryNotAllowed, Conflict, NotFound, ProviderNotApproved, ValidationError
from wallet.ledger.parties import ProviderStatus
from wallet.storage.port import NewOffer, NewService, OfferChange, OfferFilter, Record
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

# The most unit values one service keeps, and prices one offer: a limit on what one record carries.
UNIT_VALUES_MAX = 100
OFFER_PRICES_MAX = 100
_NO_CURSOR = 2**62

# Services.


def render_service(row: Row, history: Sequence[UnitValue], today: str) -> Record:
    name: Record = {"fi": row["name_fi"], "sv": row["name_sv"]}
    if row["name_en"] is not None:
        name["en"] = row["name_en"]
    return {
        "id": row["id"],
        "code": row["code"],
        "category": row["category"],
        "name": name,
        "unit": row["unit"],
        "unit_value": value_on(history, today),
        "unit_values": [{"valid_from": v.valid_from, "unit_value": v.unit_value} for v in history],
        "created_at": row["created_at"],
    }


_UNIT_VALUES_SQL = (
    "SELECT service_id, valid_from, unit_value FROM service_unit_values WHERE service_id = ? ORDER BY valid_from"
)


def _history(rows: Iterable[Row]) -> dict[str, list[UnitValue]]:
    by_service: dict[str, list[UnitValue]] = {}
    for row in rows:
        by_service.setdefault(row["service_id"], []).append(UnitValue(row["valid_from"], row["unit_value"]))
    return by_service


def load_service(connection: Connection, service_id: str, today: str) -> Record:
    row = connection.execute("SELECT * FROM services WHERE id = ?", (service_id,)).fetchone()
    if row is None:
        raise NotFound("no such service")
    history = _history(connection.execute(_UNIT_VALUES_SQL, (service_id,)).fetchall())
    return render_service(row, history.get(service_id, []), today)


@unit_of_work
def create_service(service: NewService, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        if connection.execute("SELECT 1 FROM categories WHERE code = ?", (service.category,)).fetchone() is None:
            raise CategoryNotAllowed(f"unknown category {service.category!r}", field="category")
        service_id = new_id("sv")
        try:
            connection.execute(
                "INSERT INTO services (id, code, category, name_fi, name_sv, name_en, unit, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service_id,
                    service.code,
                    service.category,
                    service.name_fi,
                    service.name_sv,
                    service.name_en,
                    service.unit,
                    now,
                ),
            )
        except connection.dialect.integrity_error:
            raise Conflict("a service with this code exists", field="code") from None
        connection.execute(
            "INSERT INTO service_unit_values (service_id, valid_from, unit_value, created_at) VALUES (?, ?, ?, ?)",
            (service_id, service.valid_from, service.unit_value, now),
        )
        audit.append(
            connection,
            now,
            "service.created",
            service_id,
            code=service.code,
            category=service.category,
            unit=service.unit,
            unit_value=service.unit_value,
            valid_from=service.valid_from,
        )
        return load_service(connection, service_id, service.valid_from)

    return unit


@unit_of_work
def add_unit_value(service_id: str, unit_value: int, valid_from: str, today: str, now: str) -> Unit:
    """A new unit value from ``valid_from`` on: never on a past day, and only after every value
    already set (the history is never rewritten, so no charge's value changes after the fact)."""

    def unit(connection: Connection) -> Record:
        service = load_service(connection, service_id, today)
        if valid_from < today:
            raise ValidationError("valid_from", f"must be today ({today}) or later: the past is not rewritten")
        latest = service["unit_values"][-1]["valid_from"]
        if valid_from <= latest:
            raise Conflict(f"a unit value is set from {latest}; a new one must start after it", field="valid_from")
        if len(service["unit_values"]) >= UNIT_VALUES_MAX:
            raise Conflict(f"a service keeps at most {UNIT_VALUES_MAX} unit values")
        connection.execute(
            "INSERT INTO service_unit_values (service_id, valid_from, unit_value, created_at) VALUES (?, ?, ?, ?)",
            (service_id, valid_from, unit_value, now),
        )
        audit.append(
            connection, now, "service.unit_value_set", service_id, unit_value=unit_value, valid_from=valid_from
        )
        return load_service(connection, service_id, today)

    return unit


async def get_service(reader: Reader, service_id: str, today: str) -> Record:
    rows = list(await reader.execute_fetchall("SELECT * FROM services WHERE id = ?", (service_id,)))
    if not rows:
        raise NotFound("no such service")
    history = _history(await reader.execute_fetchall(_UNIT_VALUES_SQL, (service_id,)))
    return render_service(rows[0], history.get(service_id, []), today)


async def list_services(
    reader: Reader, category: str | None, today: str, limit: int, before: int | None
) -> tuple[list[Record], int | None]:
    """Oldest first would shift under a reader as services are added: newest first, by seq."""
    query = "SELECT * FROM services WHERE seq < ?"
    parameters: list[Any] = [before if before is not None else _NO_CURSOR]
    if category is not None:
        query += " AND category = ?"
        parameters.append(category)
    rows = list(await reader.execute_fetchall(f"{query} ORDER BY seq DESC LIMIT ?", (*parameters, limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [row["id"] for row in rows]
    history: dict[str, list[UnitValue]] = {}
    if ids:
        history = _history(
            await reader.execute_fetchall(
                "SELECT service_id, valid_from, unit_value FROM service_unit_values"
                f" WHERE service_id IN ({_marks(ids)}) ORDER BY service_id, valid_from",
                ids,
            )
        )
    data = [render_service(row, history.get(row["id"], []), today) for row in rows]
    return data, rows[-1]["seq"] if more else None


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


# Offers.


def _load_offer_row(connection: Connection, provider_id: str, offer_id: str) -> Row:
    row = connection.execute(
        "SELECT o.*, s.code AS service FROM offers o JOIN services s ON s.id = o.service_id"
        " WHERE o.id = ? AND o.provider_id = ?",
        (offer_id, provider_id),
    ).fetchone()
    if row is None:
        raise NotFound("no such offer for this provider")
    found: Row = row
    return found


def _offer_details(
    rows: Sequence[Row], prices: Iterable[Row], municipalities: Iterable[Row], languages: Iterable[Row]
) -> list[Record]:
    by_offer_prices: dict[str, list[Record]] = {}
    for price in prices:
        by_offer_prices.setdefault(price["offer_id"], []).append(
            {"unit_price": price["unit_price"], "valid_from": price["valid_from"]}
        )
    places: dict[str, list[str]] = {}
    for place in municipalities:
        places.setdefault(place["offer_id"], []).append(place["municipality"])
    spoken: dict[str, list[str]] = {}
    for language in languages:
        spoken.setdefault(language["offer_id"], []).append(language["language"])
    offers = []
    for row in rows:
        history = by_offer_prices.get(row["id"], [])
        offers.append(
            {
                "id": row["id"],
                "provider_id": row["provider_id"],
                "service": row["service"],
                "service_id": row["service_id"],
                "status": row["status"],
                "unit_price": history[-1]["unit_price"] if history else None,
                "unit_prices": history,
                "description": row["description"],
                "municipalities": sorted(places.get(row["id"], [])),
                "languages": sorted(spoken.get(row["id"], [])),
                "address": row["address"],
                "created_at": row["created_at"],
                "updated_at": row["updated_at"],
                "withdrawn_at": row["withdrawn_at"],
            }
        )
    return offers


_PRICES_SQL = "SELECT offer_id, unit_price, valid_from FROM offer_prices WHERE offer_id IN ({}) ORDER BY seq"
_PLACES_SQL = "SELECT offer_id, municipality FROM offer_municipalities WHERE offer_id IN ({})"
_LANGUAGES_SQL = "SELECT offer_id, language FROM offer_languages WHERE offer_id IN ({})"


def load_offer(connection: Connection, provider_id: str, offer_id: str) -> Record:
    row = _load_offer_row(connection, provider_id, offer_id)
    ids = (offer_id,)
    return _offer_details(
        [row],
        connection.execute(_PRICES_SQL.format("?"), ids).fetchall(),
        connection.execute(_PLACES_SQL.format("?"), ids).fetchall(),
        connection.execute(_LANGUAGES_SQL.format("?"), ids).fetchall(),
    )[0]


def _check_may_offer(connection: Connection, provider_id: str, category: str) -> None:
    """A provider offers only in the categories it is approved for, and never while suspended (a
    pending provider may prepare its offers: they show once it is approved)."""
    provider = connection.execute("SELECT status FROM providers WHERE id = ?", (provider_id,)).fetchone()
    if provider is None:
        raise NotFound("no such provider")
    if provider["status"] == ProviderStatus.SUSPENDED:
        raise ProviderNotApproved("the provider is suspended")
    approved = connection.execute(
        "SELECT 1 FROM provider_categories WHERE provider_id = ? AND category = ?", (provider_id, category)
    ).fetchone()
    if approved is None:
        raise ProviderNotApproved(f"the provider is not approved for the category {category!r}")


def _write_places(
    connection: Connection, offer_id: str, municipalities: Sequence[str], languages: Sequence[str]
) -> None:
    connection.executemany(
        "INSERT INTO offer_municipalities (offer_id, municipality) VALUES (?, ?)",
        [(offer_id, code) for code in municipalities],
    )
    connection.executemany(
        "INSERT INTO offer_languages (offer_id, language) VALUES (?, ?)", [(offer_id, code) for code in languages]
    )


@unit_of_work
def create_offer(offer: NewOffer, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        service = connection.execute("SELECT id, category FROM services WHERE code = ?", (offer.service,)).fetchone()
        if service is None:
            raise ValidationError("service", "is not a service in the catalog")
        _check_may_offer(connection, offer.provider_id, service["category"])
        offer_id = new_id("of")
        try:
            connection.execute(
                "INSERT INTO offers (id, provider_id, service_id, status, description, address, created_at,"
                " updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?, ?)",
                (offer_id, offer.provider_id, service["id"], offer.description, offer.address, now, now),
            )
        except connection.dialect.integrity_error:
            raise Conflict(
                "the provider has an active offer of this service: change it instead", field="service"
            ) from None
        connection.execute(
            "INSERT INTO offer_prices (offer_id, unit_price, valid_from) VALUES (?, ?, ?)",
            (offer_id, offer.unit_price, now),
        )
        _write_places(connection, offer_id, offer.municipalities, offer.languages)
        audit.append(
            connection,
            now,
            "offer.created",
            offer_id,
            provider_id=offer.provider_id,
            service=offer.service,
            unit_price=offer.unit_price,
            municipalities=list(offer.municipalities),
            languages=list(offer.languages),
        )
        return load_offer(connection, offer.provider_id, offer_id)

    return unit


@unit_of_work
def change_offer(provider_id: str, offer_id: str, change: OfferChange, now: str) -> Unit:
    """A new price joins the offer's history (the old ones stay, for the charges that used them);
    the rest is replaced. A withdrawn offer is not changed again (409)."""

    def unit(connection: Connection) -> Record:
        row = _load_offer_row(connection, provider_id, offer_id)
        if row["status"] != OfferStatus.ACTIVE:
            raise Conflict("the offer is withdrawn")
        category = connection.execute("SELECT category FROM services WHERE id = ?", (row["service_id"],)).fetchone()
        _check_may_offer(connection, provider_id, category["category"])
        changed: Record = {}
        if change.unit_price is not None:
            count = connection.execute("SELECT COUNT(*) FROM offer_prices WHERE offer_id = ?", (offer_id,)).fetchone()
            if count[0] >= OFFER_PRICES_MAX:
                raise Conflict(f"an offer keeps at most {OFFER_PRICES_MAX} prices: withdraw it and make a new one")
            connection.execute(
                "INSERT INTO offer_prices (offer_id, unit_price, valid_from) VALUES (?, ?, ?)",
                (offer_id, change.unit_price, now),
            )
            changed["unit_price"] = change.unit_price
        if change.description is not None:
            connection.execute("UPDATE offers SET description = ? WHERE id = ?", (change.description, offer_id))
            changed["description"] = True
        if change.address is not None:
            connection.execute("UPDATE offers SET address = ? WHERE id = ?", (change.address, offer_id))
            changed["address"] = True
        if change.municipalities is not None:
            connection.execute("DELETE FROM offer_municipalities WHERE offer_id = ?", (offer_id,))
            _write_places(connection, offer_id, change.municipalities, ())
            changed["municipalities"] = list(change.municipalities)
        if change.languages is not None:
            connection.execute("DELETE FROM offer_languages WHERE offer_id = ?", (offer_id,))
            _write_places(connection, offer_id, (), change.languages)
            changed["languages"] = list(change.languages)
        connection.execute("UPDATE offers SET updated_at = ? WHERE id = ?", (now, offer_id))
        audit.append(connection, now, "offer.changed", offer_id, provider_id=provider_id, **changed)
        return load_offer(connection, provider_id, offer_id)

    return unit


@unit_of_work
def withdraw_offer(provider_id: str, offer_id: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        row = _load_offer_row(connection, provider_id, offer_id)
        if row["status"] == OfferStatus.WITHDRAWN:
            return load_offer(connection, provider_id, offer_id)  # already so: nothing to record
        connection.execute(
            "UPDATE offers SET status = 'withdrawn', withdrawn_at = ?, updated_at = ? WHERE id = ?",
            (now, now, offer_id),
        )
        audit.append(connection, now, "offer.withdrawn", offer_id, provider_id=provider_id)
        return load_offer(connection, provider_id, offer_id)

    return unit


async def _details(reader: Reader, rows: list[Row]) -> list[Record]:
    ids = [row["id"] for row in rows]
    if not ids:
        return []
    marks = _marks(ids)
    return _offer_details(
        rows,
        await reader.execute_fetchall(_PRICES_SQL.format(marks), ids),
        await reader.execute_fetchall(_PLACES_SQL.format(marks), ids),
        await reader.execute_fetchall(_LANGUAGES_SQL.format(marks), ids),
    )


async def list_provider_offers(
    reader: Reader, provider_id: str, limit: int, before: int | None
) -> tuple[list[Record], int | None]:
    if not list(await reader.execute_fetchall("SELECT 1 FROM providers WHERE id = ?", (provider_id,))):
        raise NotFound("no such provider")
    rows = list(
        await reader.execute_fetchall(
            "SELECT o.*, s.code AS service FROM offers o JOIN services s ON s.id = o.service_id"
            " WHERE o.provider_id = ? AND o.seq < ? ORDER BY o.seq DESC LIMIT ?",
            (provider_id, before if before is not None else _NO_CURSOR, limit + 1),
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return await _details(reader, rows), rows[-1]["seq"] if more else None


# The own share per unit, in SQL for the order and the cursor; the rendered figure is the ledger's.
_OWN_SHARE = "CASE WHEN q.unit_price > q.unit_value THEN q.unit_price - q.unit_value ELSE 0 END"


async def compare_offers(
    reader: Reader, offer_filter: OfferFilter, today: str, limit: int, after: tuple[int, int, int] | None
) -> tuple[list[Record], tuple[int, int, int] | None]:
    conditions = ""
    parameters: list[Any] = [today]
    if offer_filter.service is not None:
        conditions += " AND s.code = ?"
        parameters.append(offer_filter.service)
    if offer_filter.municipality is not None:
        conditions += (
            " AND EXISTS (SELECT 1 FROM offer_municipalities m WHERE m.offer_id = o.id AND m.municipality = ?)"
        )
        parameters.append(offer_filter.municipality)
    if offer_filter.language is not None:
        conditions += " AND EXISTS (SELECT 1 FROM offer_languages g WHERE g.offer_id = o.id AND g.language = ?)"
        parameters.append(offer_filter.language)
    own, price, seq = after if after is not None else (-1, -1, -1)
    rows = list(
        await reader.execute_fetchall(
            "SELECT q.*, " + _OWN_SHARE + " AS own_share FROM ("
            " SELECT o.seq, o.id, o.provider_id, p.name AS provider_name, s.code AS service, s.name_fi, s.name_sv,"
            " s.name_en, s.unit, s.category, o.description, o.address,"
            " (SELECT op.unit_price FROM offer_prices op WHERE op.offer_id = o.id ORDER BY op.seq DESC LIMIT 1)"
            " AS unit_price,"
            " (SELECT v.unit_value FROM service_unit_values v WHERE v.service_id = s.id AND v.valid_from <= ?"
            " ORDER BY v.valid_from DESC LIMIT 1) AS unit_value"
            " FROM offers o"
            " JOIN providers p ON p.id = o.provider_id AND p.status = 'approved'"
            " JOIN services s ON s.id = o.service_id"
            " JOIN provider_categories pc ON pc.provider_id = o.provider_id AND pc.category = s.category"
            " WHERE o.status = 'active'" + conditions + ") q"
            " WHERE q.unit_value IS NOT NULL AND q.unit_price IS NOT NULL"
            " AND (" + _OWN_SHARE + " > ? OR (" + _OWN_SHARE + " = ? AND (q.unit_price > ?"
            " OR (q.unit_price = ? AND q.seq > ?))))"
            " ORDER BY own_share, q.unit_price, q.seq LIMIT ?",
            (*parameters, own, own, price, price, seq, limit + 1),
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [row["id"] for row in rows]
    places: dict[str, list[str]] = {}
    spoken: dict[str, list[str]] = {}
    if ids:
        for place in await reader.execute_fetchall(_PLACES_SQL.format(_marks(ids)), ids):
            places.setdefault(place["offer_id"], []).append(place["municipality"])
        for language in await reader.execute_fetchall(_LANGUAGES_SQL.format(_marks(ids)), ids):
            spoken.setdefault(language["offer_id"], []).append(language["language"])
    data = []
    for row in rows:
        name: Record = {"fi": row["name_fi"], "sv": row["name_sv"]}
        if row["name_en"] is not None:
            name["en"] = row["name_en"]
        data.append(
            {
                "offer_id": row["id"],
                "provider_id": row["provider_id"],
                "provider_name": row["provider_name"],
                "service": row["service"],
                "service_name": name,
                "category": row["category"],
                "unit": row["unit"],
                "unit_price": row["unit_price"],
                "unit_value": row["unit_value"],
                "own_share_per_unit": own_share_per_unit(row["unit_price"], row["unit_value"]),
                "municipalities": sorted(places.get(row["id"], [])),
                "languages": sorted(spoken.get(row["id"], [])),
                "address": row["address"],
                "description": row["description"],
            }
        )
    last = rows[-1] if more else None
    return data, (int(last["own_share"]), int(last["unit_price"]), int(last["seq"])) if last is not None else None
