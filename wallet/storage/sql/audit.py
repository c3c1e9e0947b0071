"""Appending to the audit chain, inside the unit of work whose change it records.

Each entry names the hash of the one before it: the chain's head, read with
``SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1``. While the writer holds a write
transaction (``BEGIN IMMEDIATE`` … ``COMMIT``) nobody else can append, so the writer lets this
module remember the head for that transaction (``track_head`` … ``untrack_head``): the first entry
of a batch reads it, every later one takes it from memory. A unit undone by ``ROLLBACK TO`` puts
back the head it started with (``tracked_head`` before, ``restore_head`` after). Anything that
writes ``audit_log`` without ``append`` calls ``forget_head``: the next entry reads the head again.
Outside a tracked transaction every entry reads it, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

from wallet.ledger.audit import GENESIS, canonical, link_hash
from wallet.ledger.transactions import Posting
from wallet.storage.port import ACTOR
from wallet.storage.sql.connection import Connection

HEAD_SQL = "SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1"

# Per connection in a tracked transaction (by id: sqlite3 connections take no weak references; the
# writer holds the connection for as long as it is tracked): the head, or None until read.
_heads: dict[int, str | None] = {}


def track_head(connection: Any) -> None:
    """The writer has just begun a write transaction on ``connection``: remember the head in it."""
    _heads[id(connection)] = None


def untrack_head(connection: Any) -> None:
    """The transaction has ended (committed or rolled back): forget the head."""
    _heads.pop(id(connection), None)


def tracked_head(connection: Any) -> str | None:
    """The head remembered now (``None``: not known, or not tracked), to restore after a rollback."""
    return _heads.get(id(connection))


def restore_head(connection: Any, head: str | None) -> None:
    """After ``ROLLBACK TO`` a savepoint: the head as it was when the savepoint was taken."""
    key = id(connection)
    if key in _heads:
        _heads[key] = head


def forget_head(connection: Any) -> None:
    """``audit_log`` was written around ``append``: the next entry reads the head from the table."""
    restore_head(connection, None)


def append(connection: Connection, at: str, action: str, subject: str, **data: Any) -> None:
    append_canonical(connection, at, action, subject, canonical(data))


def ledger_data(postings: Sequence[Posting], charge_id: str | None, refund_id: str | None, month: str | None) -> str:
    """A ledger entry's data, ``canonical({"postings": [[account_id, amount], ...], "charge_id": ...,
    "refund_id": ..., "month": ...})``, written out directly (a sixth of the encoder's time; a credit
    run writes a million, a charge one). Keys in sorted order; strings through the encoder's own
    ``encode_basestring``, integers as ``int.__repr__``, None as ``null``: what ``json`` does with
    them (``tests/test_audit.py`` and ``tests/test_credit_run_bulk.py`` hold the two equal)."""
    written = ",".join(f"[{encode_basestring(p.account_id)},{int.__repr__(p.amount)}]" for p in postings)
    return (
        f'{{"charge_id":{_text_or_null(charge_id)},"month":{_text_or_null(month)},"postings":[{written}],'
        f'"refund_id":{_text_or_null(refund_id)}}}'
    )


def _text_or_null(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def append_canonical(connection: Connection, at: str, action: str, subject: str, payload: str) -> None:
    """``append`` with its data already in canonical form (``canonical`` or ``ledger_data``)."""
    key = id(connection)
    previous = _heads.get(key)
    if previous is None:
        row = connection.execute(HEAD_SQL).fetchone()
        previous = row[0] if row else GENESIS
    actor = ACTOR.get()
    entry_hash = link_hash(previous, at, actor, action, subject, payload)
    connection.execute(
        "INSERT INTO audit_log (at, actor, action, subject, data, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, actor, action, subject, payload, previous, entry_hash),
    )
    if key in _heads:
        _heads[key] = entry_hash
