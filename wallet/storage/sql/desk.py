"""The organizer's desk: clients and providers found by what staff know of them, newest first.

A client is found by a part of their name, or exactly by the keyed hash of their phone or their
national id (the service hashes what was typed: neither is ever in a query in clear); a provider by
a part of its name or exactly by its business id. Name matching ignores case for A-Z (SQLite's
``lower`` folds only those).
"""

from __future__ import annotations

from wallet.storage.port import ClientQuery, Page, ProviderQuery
from wallet.storage.sql import render
from wallet.storage.sql.reading import Reader

_FIRST = 2**63 - 1


def _pattern(name: str) -> str:
    escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(conditions: list[tuple[str, str]]) -> tuple[str, tuple[str, ...]]:
    """``(a OR b ...)`` of the conditions given; nothing asked (an empty query) matches every row."""
    if not conditions:
        return "", ()
    return " AND (" + " OR ".join(sql for sql, _ in conditions) + ")", tuple(value for _, value in conditions)


async def search_clients(reader: Reader, query: ClientQuery, limit: int, before: int | None) -> Page:
    conditions: list[tuple[str, str]] = []
    if query.name:
        conditions.append(("lower(name) LIKE ? ESCAPE '\\'", _pattern(query.name)))
    if query.phone_hash:
        conditions.append(("phone_hash = ?", query.phone_hash))
    if query.national_id_hash:
        conditions.append(("national_id_hash = ?", query.national_id_hash))
    where, values = _matches(conditions)
    rows = list(
        await reader.execute_fetchall(
            f"SELECT * FROM clients WHERE seq < ?{where} ORDER BY seq DESC LIMIT ?",
            (before if before is not None else _FIRST, *values, limit + 1),
        )
    )
    more = len(rows) > limit
    return Page([render.client(row) for row in rows[:limit]], rows[limit - 1]["seq"] if more else None)


async def search_providers(reader: Reader, query: ProviderQuery, limit: int, before: int | None) -> Page:
    conditions: list[tuple[str, str]] = []
    if query.name:
        conditions.append(("lower(name) LIKE ? ESCAPE '\\'", _pattern(query.name)))
    if query.business_id:
        conditions.append(("business_id = ?", query.business_id))
    where, values = _matches(conditions)
    status_sql, status = ("", ()) if query.status is None else (" AND status = ?", (query.status,))
    rows = list(
        await reader.execute_fetchall(
            f"SELECT * FROM providers WHERE seq < ?{status_sql}{where} ORDER BY seq DESC LIMIT ?",
            (before if before is not None else _FIRST, *status, *values, limit + 1),
        )
    )
    more = len(rows) > limit
    providers = []
    for row in rows[:limit]:
        categories = await reader.execute_fetchall(
            "SELECT category FROM provider_categories WHERE provider_id = ? ORDER BY category", (row["id"],)
        )
        providers.append(render.provider(row, [c["category"] for c in categories]))
    return Page(providers, rows[limit - 1]["seq"] if more else None)
