"""Decisions on budgets: the units that grant a budget or change one from a month on, each with its
decision and document in the same transaction, and the reads of decisions and their documents.

A budget whose amounts differ by month (a plan's rounding month, a change) has a row in
``budget_months`` for every month and line; the credit run credits those (``credit_runs``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from wallet.ledger.accounts import wallet_account
from wallet.ledger.catalog import UnitValue, value_on
from wallet.ledger.errors import CategoryNotAllowed, Conflict, NotFound, ValidationError
from wallet.ledger.plans import month_index, months_from
from wallet.storage.port import NewBudget, NewDecision, Record
from wallet.storage.sql import audit, notices, render
from wallet.storage.sql.connection import Connection, Row
from wallet.storage.sql.ledger_rows import ensure_account
from wallet.storage.sql.organizer import insert_budget, load_budget
from wallet.storage.sql.reading import Reader
from wallet.storage.sql.units import Unit, unit_of_work

PRICES_SQL = (
    "SELECT s.code, s.category, s.name_fi, s.name_sv, v.valid_from, v.unit_value FROM services s"
    " JOIN service_unit_values v ON v.service_id = s.id WHERE s.code = ? ORDER BY v.valid_from"
)
_MONTHS_UPSERT = (
    "INSERT INTO budget_months (budget_id, category, month, amount, decision_id) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (budget_id, category, month) DO UPDATE SET amount = excluded.amount,"
    " decision_id = excluded.decision_id"
)
LAST_CREDITED_SQL = (
    "SELECT MAX(month) FROM (SELECT month FROM credits WHERE budget_id = ?"
    " UNION ALL SELECT month FROM staged_credits WHERE budget_id = ?) credited"
)
DECISION_COLUMNS = (
    "id, number, budget_id, client_id, kind, from_month, language, decided_by, calculation, document_sha256, created_at"
)


def service_prices(rows: Sequence[Row], today: str) -> Record | None:
    """A catalog service's category, names and unit value in force ``today``, from ``PRICES_SQL``'s rows."""
    if not rows:
        return None
    first = rows[0]
    value = value_on([UnitValue(row["valid_from"], row["unit_value"]) for row in rows], today)
    return {"category": first["category"], "fi": first["name_fi"], "sv": first["name_sv"], "unit_value": value}


async def read_prices(reader: Reader, codes: Sequence[str], today: str) -> dict[str, Record]:
    """The catalog's services among ``codes``, each with its unit value in force ``today``."""
    found: dict[str, Record] = {}
    for code in sorted(set(codes)):
        priced = service_prices(list(await reader.execute_fetchall(PRICES_SQL, (code,))), today)
        if priced is not None:
            found[code] = priced
    return found


def _check_prices(connection: Connection, decision: NewDecision, today: str) -> None:
    """The catalog's unit values are still those the calculation used: else it is made again."""
    for code, used in decision.prices:
        priced = service_prices(connection.execute(PRICES_SQL, (code,)).fetchall(), today)
        if priced is None or priced["unit_value"] != used:
            raise Conflict(f"the unit value of {code!r} changed while the decision was made: send it again")


def _insert_decision(connection: Connection, decision: NewDecision, now: str) -> None:
    connection.execute(
        "INSERT INTO decisions (id, number, budget_id, client_id, kind, from_month, language, decided_by,"
        " calculation, document, document_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            decision.id,
            decision.number,
            decision.budget_id,
            decision.client_id,
            decision.kind,
            decision.from_month,
            decision.language,
            decision.decided_by,
            decision.calculation,
            decision.document,
            decision.document_sha256,
            now,
        ),
    )
    notices.queue(connection, decision.client_id, "decision", decision.id, decision.language, now)
    audit.append(
        connection,
        now,
        f"decision.{decision.kind}",
        decision.id,
        budget_id=decision.budget_id,
        client_id=decision.client_id,
        number=decision.number,
        from_month=decision.from_month,
        document_sha256=decision.document_sha256,
    )


def _write_months(
    connection: Connection, budget_id: str, decision_id: str | None, rows: Sequence[tuple[str, str, int]]
) -> None:
    connection.executemany(
        _MONTHS_UPSERT, [(budget_id, category, month, amount, decision_id) for month, category, amount in rows]
    )


def decision_record(decision: NewDecision, now: str) -> Record:
    return {
        "id": decision.id,
        "number": decision.number,
        "budget_id": decision.budget_id,
        "client_id": decision.client_id,
        "kind": decision.kind,
        "from_month": decision.from_month,
        "language": decision.language,
        "decided_by": decision.decided_by,
        "document_sha256": decision.document_sha256,
        "created_at": now,
    }


@unit_of_work
def grant_budget(budget: NewBudget, decision: NewDecision, today: str, now: str) -> Unit:
    """A new budget with its decision; its months too where they differ (``decision.schedule``)."""

    def unit(connection: Connection) -> Record:
        _check_prices(connection, decision, today)
        granted = insert_budget(connection, budget, now, decision.budget_id)
        _insert_decision(connection, decision, now)
        if decision.schedule:
            _write_months(connection, decision.budget_id, decision.id, decision.schedule)
        return {**granted, "decision": decision_record(decision, now)}

    return unit


@unit_of_work
def change_budget(decision: NewDecision, current_month: str, today: str, now: str) -> Unit:
    """A new decision on a budget: its lines from ``decision.from_month`` on, never a month credited."""

    def unit(connection: Connection) -> Record:
        budget = load_budget(connection, decision.client_id, decision.budget_id)
        start, end, from_month = budget["start_month"], budget["end_month"], decision.from_month
        if not start <= from_month <= end:
            raise ValidationError("from_month", f"must be within the budget, {start} to {end}")
        if from_month < current_month:
            raise Conflict(f"{from_month} has passed: a decision changes the months from {current_month} on")
        last_credited = connection.execute(LAST_CREDITED_SQL, (decision.budget_id, decision.budget_id)).fetchone()[0]
        if last_credited is not None and from_month <= last_credited:
            raise Conflict(f"{last_credited} is credited already: a change may start from the month after it")
        _check_prices(connection, decision, today)
        for category, _ in decision.lines:
            if connection.execute("SELECT 1 FROM categories WHERE code = ?", (category,)).fetchone() is None:
                raise CategoryNotAllowed(f"unknown category {category!r}", field="lines")
        before = {line["category"]: line["monthly_amount"] for line in budget["lines"]}
        scheduled = connection.execute(
            "SELECT 1 FROM budget_months WHERE budget_id = ? LIMIT 1", (decision.budget_id,)
        ).fetchone()
        if scheduled is None:  # every month so far came from the lines: they become rows of their own
            latest = connection.execute(
                "SELECT id FROM decisions WHERE budget_id = ? ORDER BY seq DESC LIMIT 1", (decision.budget_id,)
            ).fetchone()
            _write_months(
                connection,
                decision.budget_id,
                latest["id"] if latest is not None else None,
                [(month, category, amount) for month in months_from(start, end) for category, amount in before.items()],
            )
        _insert_decision(connection, decision, now)
        new_lines = dict(decision.lines)
        earlier = [month for month in months_from(start, end) if month < from_month]
        for category, amount in new_lines.items():
            if category in before:
                connection.execute(
                    "UPDATE budget_lines SET monthly_amount = ? WHERE budget_id = ? AND category = ?",
                    (amount, decision.budget_id, category),
                )
                continue
            connection.execute(
                "INSERT INTO budget_lines (budget_id, category, monthly_amount) VALUES (?, ?, ?)",
                (decision.budget_id, category, amount),
            )
            ensure_account(
                connection,
                wallet_account(decision.client_id, category),
                client_id=decision.client_id,
                category=category,
            )
            _write_months(connection, decision.budget_id, decision.id, [(month, category, 0) for month in earlier])
        dropped = [
            (month, category, 0)
            for month in months_from(from_month, end)
            for category in before
            if category not in new_lines
        ]
        _write_months(connection, decision.budget_id, decision.id, [*decision.schedule, *dropped])
        changed = load_budget(connection, decision.client_id, decision.budget_id)
        return {**changed, "decision": decision_record(decision, now)}

    return unit


# Reads.


async def read_budget(reader: Reader, client_id: str, budget_id: str) -> Record:
    rows = list(
        await reader.execute_fetchall("SELECT * FROM budgets WHERE id = ? AND client_id = ?", (budget_id, client_id))
    )
    if not rows:
        raise NotFound("no such budget for this client")
    lines = await reader.execute_fetchall(
        "SELECT category, monthly_amount FROM budget_lines WHERE budget_id = ? ORDER BY category", (budget_id,)
    )
    return render.budget(rows[0], [dict(line) for line in lines])


async def client_decisions(reader: Reader, client_id: str) -> list[Record]:
    rows = await reader.execute_fetchall(
        f"SELECT {DECISION_COLUMNS} FROM decisions WHERE client_id = ? ORDER BY seq DESC", (client_id,)
    )
    return [_render(row) for row in rows]


def _render(row: Row) -> Record:
    record = {name: row[name] for name in DECISION_COLUMNS.replace(" ", "").split(",") if name != "calculation"}
    return record


async def document(
    reader: Reader, client_id: str, decision_id: str | None, budget_id: str | None
) -> tuple[Record, bytes]:
    """A decision's stored document: by its id, or a budget's latest decision."""
    where, parameter = ("id = ?", decision_id) if decision_id is not None else ("budget_id = ?", budget_id)
    rows = list(
        await reader.execute_fetchall(
            f"SELECT {DECISION_COLUMNS}, document FROM decisions WHERE client_id = ? AND {where}"
            " ORDER BY seq DESC LIMIT 1",
            (client_id, parameter),
        )
    )
    if not rows:
        raise NotFound("no such decision")
    row: Any = rows[0]
    return _render(row), bytes(row["document"])


# ``wallet check``.


def decision_breaches(connection: Connection) -> list[str]:
    """Each decision's document is the one issued (its SHA-256), and each month of a budget credits
    what the decision in force for it calculated: the latest decision from that month or before.
    A budget's months are its ``budget_months`` rows where it has them, else its lines every month."""
    breaches: list[str] = []
    if connection.execute(connection.dialect.table_exists, ("decisions",)).fetchone() is None:
        return breaches  # a database from before decisions
    by_budget: dict[str, list[tuple[str, dict[str, list[int]]]]] = {}
    for row in connection.execute(
        "SELECT id, budget_id, from_month, calculation, document, document_sha256 FROM decisions ORDER BY seq"
    ):
        if hashlib.sha256(bytes(row["document"])).hexdigest() != row["document_sha256"]:
            breaches.append(f"decision {row['id']}: its document is not the one issued (SHA-256 differs)")
        lines = {line["category"]: line["monthly_amounts"] for line in json.loads(row["calculation"])["lines"]}
        by_budget.setdefault(row["budget_id"], []).append((row["from_month"], lines))
    months: dict[str, dict[tuple[str, str], int]] = {}
    for row in connection.execute("SELECT budget_id, category, month, amount FROM budget_months"):
        months.setdefault(row["budget_id"], {})[(row["month"], row["category"])] = row["amount"]
    for budget in connection.execute("SELECT id, start_month, end_month FROM budgets"):
        decisions = by_budget.get(budget["id"])
        if not decisions:
            continue  # a budget made before decisions were kept
        lines = {
            line["category"]: line["monthly_amount"]
            for line in connection.execute(
                "SELECT category, monthly_amount FROM budget_lines WHERE budget_id = ?", (budget["id"],)
            )
        }
        scheduled = months.get(budget["id"])
        for month in months_from(budget["start_month"], budget["end_month"]):
            in_force = [calculated for from_month, calculated in decisions if from_month <= month]
            if not in_force:
                continue
            index = month_index(budget["start_month"], month)
            expected = {category: amounts[index] for category, amounts in in_force[-1].items()}
            if scheduled is not None:
                actual = {category: amount for (m, category), amount in scheduled.items() if m == month and amount}
            else:
                actual = dict(lines)
            if actual != {category: amount for category, amount in expected.items() if amount}:
                breaches.append(
                    f"budget {budget['id']} {month}: credits {sorted(actual.items())} but its decision"
                    f" calculated {sorted(expected.items())}"
                )
    return breaches
