"""Rows to the records that cross the storage port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wallet.storage.port import Record
from wallet.storage.sql.connection import Row


def charge(row: Row | Mapping[str, Any]) -> Record:
    """A charge from its row, or from the values just written (the same columns)."""
    record: Record = {
        "id": row["id"],
        "status": row["status"],
        "amount": row["amount"],
        "category": row["category"],
        "method": row["method"],
        "description": row["description"],
        "created_at": row["created_at"],
        "refunded_amount": row["refunded_amount"],
    }
    if row["status"] == "pending":
        record["expires_at"] = row["expires_at"]
    if row["captured_at"]:
        record["captured_at"] = row["captured_at"]
    if row["voided_at"]:
        record["voided_at"] = row["voided_at"]
        record["void_reason"] = row["void_reason"]
    return record


def provider(row: Row, categories: list[str]) -> Record:
    return {
        "id": row["id"],
        "name": row["name"],
        "business_id": row["business_id"],
        "iban": row["iban"],
        "status": row["status"],
        "categories": categories,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def client(row: Row) -> Record:
    return {
        "id": row["id"],
        "name": row["name"],
        "phone_ciphertext": row["phone_ciphertext"],
        "has_national_id": row["national_id_hash"] is not None,
        "created_at": row["created_at"],
    }


def client_charge(row: Row) -> Record:
    """A charge as its client sees it: who asked, and the state of the request."""
    return {**charge(row), "provider_id": row["provider_id"], "provider_name": row["provider_name"]}


def budget(row: Row, lines: list[Record]) -> Record:
    return {
        "id": row["id"],
        "client_id": row["client_id"],
        "start_month": row["start_month"],
        "end_month": row["end_month"],
        "unused": row["unused"],
        "lines": lines,
        "created_at": row["created_at"],
    }
