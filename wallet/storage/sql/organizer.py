"""The organizer's units of work: categories, clients, budgets, providers and their credentials."""

from __future__ import annotations

from wallet.ids import new_id
from wallet.ledger.accounts import payable_account, wallet_account
from wallet.ledger.errors import (
    CategoryNotAllowed,
    Conflict,
    NotFound,
)
from wallet.ledger.months import check_new_end
from wallet.storage.port import NewBudget, NewClient, NewProvider, Record
from wallet.storage.sql import audit, render
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.ledger_rows import ensure_account
from wallet.storage.sql.units import Unit, unit_of_work


@unit_of_work
def create_category(code: str, name: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        try:
            connection.execute("INSERT INTO categories (code, name, created_at) VALUES (?, ?, ?)", (code, name, now))
        except connection.dialect.integrity_error:
            raise Conflict("a category with this code exists", field="code") from None
        audit.append(connection, now, "category.created", code, name=name)
        return {"code": code, "name": name, "created_at": now}

    return unit


@unit_of_work
def create_client(client: NewClient, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        client_id = new_id("cl")
        try:
            connection.execute(
                "INSERT INTO clients (id, name, phone_hash, phone_ciphertext, national_id_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (client_id, client.name, client.phone_hash, client.phone_ciphertext, client.national_id_hash, now),
            )
        except connection.dialect.integrity_error:
            raise Conflict("a client with this phone number exists", field="phone") from None
        audit.append(connection, now, "client.created", client_id, with_national_id=client.national_id_hash is not None)
        row = connection.execute("SELECT * FROM clients WHERE id = ?", (client_id,)).fetchone()
        return render.client(row)

    return unit


@unit_of_work
def create_budget(budget: NewBudget, now: str, budget_id: str | None = None) -> Unit:
    def unit(connection: Connection) -> Record:
        return insert_budget(connection, budget, now, budget_id or new_id("bu"))

    return unit


def insert_budget(connection: Connection, budget: NewBudget, now: str, budget_id: str) -> Record:
    """The budget and its lines (``create_budget``; a decision's unit writes them with its own)."""
    if connection.execute("SELECT 1 FROM clients WHERE id = ?", (budget.client_id,)).fetchone() is None:
        raise NotFound("no such client")
    for category, _ in budget.lines:
        if connection.execute("SELECT 1 FROM categories WHERE code = ?", (category,)).fetchone() is None:
            raise CategoryNotAllowed(f"unknown category {category!r}", field="lines")
    overlapping = connection.execute(
        "SELECT id FROM budgets WHERE client_id = ? AND start_month <= ? AND end_month >= ?",
        (budget.client_id, budget.end_month, budget.start_month),
    ).fetchone()
    if overlapping is not None:
        raise Conflict("the client has a budget for an overlapping period", budget_id=overlapping["id"])
    connection.execute(
        "INSERT INTO budgets (id, client_id, start_month, end_month, unused, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (budget_id, budget.client_id, budget.start_month, budget.end_month, budget.unused.value, now),
    )
    audit.append(
        connection,
        now,
        "budget.created",
        budget_id,
        client_id=budget.client_id,
        start_month=budget.start_month,
        end_month=budget.end_month,
        unused=budget.unused.value,
        lines=[list(line) for line in budget.lines],
    )
    for category, monthly_amount in budget.lines:
        connection.execute(
            "INSERT INTO budget_lines (budget_id, category, monthly_amount) VALUES (?, ?, ?)",
            (budget_id, category, monthly_amount),
        )
        ensure_account(
            connection, wallet_account(budget.client_id, category), client_id=budget.client_id, category=category
        )
    return {
        "id": budget_id,
        "client_id": budget.client_id,
        "start_month": budget.start_month,
        "end_month": budget.end_month,
        "unused": budget.unused.value,
        "lines": [{"category": c, "monthly_amount": a} for c, a in budget.lines],
        "created_at": now,
    }


def load_provider(connection: Connection, provider_id: str) -> Record:
    row = connection.execute("SELECT * FROM providers WHERE id = ?", (provider_id,)).fetchone()
    if row is None:
        raise NotFound("no such provider")
    categories = [
        r["category"]
        for r in connection.execute(
            "SELECT category FROM provider_categories WHERE provider_id = ? ORDER BY category", (provider_id,)
        )
    ]
    return render.provider(row, categories)


@unit_of_work
def create_provider(provider: NewProvider, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        for category in provider.categories:
            if connection.execute("SELECT 1 FROM categories WHERE code = ?", (category,)).fetchone() is None:
                raise CategoryNotAllowed(f"unknown category {category!r}", field="categories")
        provider_id = new_id("pr")
        connection.execute(
            "INSERT INTO providers (id, name, business_id, iban, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
            (provider_id, provider.name, provider.business_id, provider.iban, now, now),
        )
        for category in provider.categories:
            connection.execute(
                "INSERT INTO provider_categories (provider_id, category) VALUES (?, ?)", (provider_id, category)
            )
        ensure_account(connection, payable_account(provider_id), provider_id=provider_id)
        audit.append(
            connection,
            now,
            "provider.created",
            provider_id,
            business_id=provider.business_id,
            categories=list(provider.categories),
        )
        return load_provider(connection, provider_id)

    return unit


def load_budget(connection: Connection, client_id: str, budget_id: str) -> Record:
    """A budget with its lines; another client's budget is not there."""
    row = connection.execute("SELECT * FROM budgets WHERE id = ? AND client_id = ?", (budget_id, client_id)).fetchone()
    if row is None:
        raise NotFound("no such budget for this client")
    lines = connection.execute(
        "SELECT category, monthly_amount FROM budget_lines WHERE budget_id = ? ORDER BY category", (budget_id,)
    ).fetchall()
    return render.budget(row, [dict(line) for line in lines])


@unit_of_work
def end_budget(client_id: str, budget_id: str, end_month: str, current_month: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        budget = load_budget(connection, client_id, budget_id)
        last_credited = connection.execute(
            "SELECT MAX(month) FROM (SELECT month FROM credits WHERE budget_id = ?"
            " UNION ALL SELECT month FROM staged_credits WHERE budget_id = ?) credited",
            (budget_id, budget_id),
        ).fetchone()[0]
        check_new_end(budget["start_month"], budget["end_month"], end_month, current_month, last_credited)
        if end_month == budget["end_month"]:
            return budget  # already ends then: nothing to change, nothing to record
        connection.execute("UPDATE budgets SET end_month = ? WHERE id = ?", (end_month, budget_id))
        audit.append(
            connection,
            now,
            "budget.ended",
            budget_id,
            client_id=client_id,
            previous_end_month=budget["end_month"],
            end_month=end_month,
        )
        return {**budget, "end_month": end_month}

    return unit


@unit_of_work
def set_provider_status(provider_id: str, status: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        load_provider(connection, provider_id)
        connection.execute("UPDATE providers SET status = ?, updated_at = ? WHERE id = ?", (status, now, provider_id))
        audit.append(connection, now, f"provider.{status}", provider_id)
        return load_provider(connection, provider_id)

    return unit


@unit_of_work
def add_provider_credential(provider_id: str, client_id: str, secret_hash: str, now: str) -> Unit:
    def unit(connection: Connection) -> Record:
        load_provider(connection, provider_id)
        connection.execute(
            "INSERT INTO provider_credentials (client_id, provider_id, secret_hash, created_at) VALUES (?, ?, ?, ?)",
            (client_id, provider_id, secret_hash, now),
        )
        audit.append(connection, now, "provider.credentials_issued", provider_id, client_id=client_id)
        return {"client_id": client_id, "provider_id": provider_id}

    return unit
