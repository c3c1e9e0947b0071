"""PostgreSQL's differences from SQLite, as the named hooks of ``wallet.storage.sql.connection.Dialect``."""

from __future__ import annotations

import functools

from wallet.ledger.audit import GENESIS
from wallet.storage.sql.connection import Preparable

# The cluster-wide write lock: one key per schema, so that databases (or test schemas) sharing a
# server never wait for each other. Taken first in every write transaction: exclusively by every
# unit but new charges (one writer at a time across all nodes, as SQLite has), shared by a batch of
# new charges, which orders itself by rows and the order lock (``Dialect.side_by_side``).
WRITE_LOCK_KEY = "hashtext('wallet.writer:' || current_schema())"
WRITE_LOCK_SQL = Preparable(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
BEGIN_WRITE = ("BEGIN", WRITE_LOCK_SQL)
# The write lock tried, sent with the transaction's first statement: held by another writer, the
# statement fails (the failing branch is a cast of a value the planner cannot fold), so nothing
# sent after it in the pipeline runs, and the connection raises ``WriteLockBusy``.
WRITE_LOCK_BUSY = "wallet write lock busy"
TRY_WRITE_LOCK_SQL = Preparable(
    f"SELECT CASE WHEN pg_try_advisory_xact_lock({WRITE_LOCK_KEY}) THEN 1"
    f" ELSE ('{WRITE_LOCK_BUSY} ' || pg_backend_pid())::int END"
)
BEGIN_TRY_WRITE = ("BEGIN", TRY_WRITE_LOCK_SQL)
# The write lock taken in a round trip of its own, waiting for it: whether another writer held it.
WAIT_WRITE_LOCK_SQL = Preparable(
    f"SELECT CASE WHEN pg_try_advisory_xact_lock({WRITE_LOCK_KEY}) THEN false"
    f" ELSE (SELECT true FROM pg_advisory_xact_lock({WRITE_LOCK_KEY})) END"
)
SHARED_WRITE_LOCK_SQL = Preparable(f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK_KEY})")
BEGIN_SHARED_WRITE = ("BEGIN", SHARED_WRITE_LOCK_SQL)
# The order lock of side-by-side writers: the audit head, the seq numbers and payable accounts are
# written under it, held to COMMIT, so their order is the commit order.
ORDER_LOCK_SQL = Preparable("SELECT pg_advisory_xact_lock(hashtext('wallet.order:' || current_schema()))")
# Under the order lock, in the pipeline with the COMMIT (no round trip while it is held), what the
# order puts in each row. The postings of one JSON-array parameter of ``[transaction_id, account_id,
# amount, balance_after, rebase]`` in order; ``rebase`` 1: ``balance_after`` counts from zero (a
# payable account, not locked while the batch worked it out) and the account's committed balance is
# added. A missing account leaves it NULL, which the column refuses. The audit entries of one
# JSON-array parameter of ``[at, actor, action, subject, data]`` in order, linked to the chain's head
# and each other (``wallet.ledger.audit.link_hash``: SHA-256 of the fields joined by U+001F, in hex).
# Not ``Preparable``: each reads a table (an account by key, the chain's last entry), whose plan a
# generic one cached while the table was small could turn into a scan.
REBASED_POSTINGS_SQL = (
    "INSERT INTO postings (transaction_id, account_id, amount, balance_after)"
    " SELECT p.value->>0, p.value->>1, (p.value->>2)::bigint, (p.value->>3)::bigint"
    " + CASE WHEN p.value->>4 = '1' THEN (SELECT a.balance FROM accounts a WHERE a.id = p.value->>1) ELSE 0 END"
    " FROM json_array_elements(?::json) WITH ORDINALITY AS p (value, n) ORDER BY p.n"
)
CHAINED_AUDIT_SQL = (
    "INSERT INTO audit_log (at, actor, action, subject, data, previous_hash, hash)"
    " WITH RECURSIVE e AS MATERIALIZED (SELECT j.n, j.value->>0 AS at, j.value->>1 AS actor,"
    " j.value->>2 AS action, j.value->>3 AS subject, j.value->>4 AS data"
    " FROM json_array_elements(?::json) WITH ORDINALITY AS j (value, n)),"
    " chain (n, previous_hash, hash) AS ("
    " SELECT 0::bigint, ''::text COLLATE \"C\", COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),"
    f" '{GENESIS}')::text COLLATE \"C\""
    " UNION ALL SELECT e.n, c.hash, encode(sha256(convert_to(concat_ws(chr(31), c.hash, e.at, e.actor, e.action,"
    " e.subject, e.data), 'UTF8')), 'hex') COLLATE \"C\" FROM chain c JOIN e ON e.n = c.n + 1)"
    " SELECT e.at, e.actor, e.action, e.subject, e.data, c.previous_hash, c.hash FROM chain c JOIN e ON e.n = c.n"
    " ORDER BY c.n"
)
# Not FOR UPDATE: that would wait for, and block, the KEY SHARE locks of foreign-key checks.
LOCK_ROWS = " FOR NO KEY UPDATE"
# The moved accounts of one JSON-array parameter of ``[id, balance, held]``, looked up by index
# (``= ANY (ARRAY(...))``: joined to the list, a small table without statistics was read whole, 1 ms
# a batch at 1,000 wallets). The failing branch is a cast that depends on the count, so the planner
# cannot fold it away.
CHECK_ACCOUNTS_SQL = (
    "WITH e AS MATERIALIZED (SELECT value->>0 AS id, (value->>1)::bigint AS balance,"
    " (value->>2)::bigint AS held FROM json_array_elements(?::json))"
    " SELECT CASE WHEN COUNT(*) = (SELECT COUNT(*) FROM e) THEN 1"
    " ELSE ('accounts not as worked out: ' || COUNT(*))::int END FROM accounts"
    " JOIN e ON accounts.id = e.id AND accounts.balance = e.balance AND accounts.held = e.held"
    " WHERE accounts.id = ANY (ARRAY(SELECT id FROM e))"
)
# An idempotency key's lock: the two-number advisory lock space (apart from the write and order
# locks' one-number keys), taken in the order of the keys' hashes (sorted in a subquery kept apart
# by OFFSET 0), so two batches take shared keys' locks in one order. In memory: no row, no WAL.
LOCK_KEYS_SQL = Preparable(
    "SELECT pg_advisory_xact_lock(hashtext('wallet.key:' || current_schema()), h) FROM"
    " (SELECT DISTINCT hashtext((k.value->>0) || ':' || (k.value->>1)) AS h"
    " FROM json_array_elements(?::json) AS k ORDER BY h OFFSET 0) AS keys"
)
# A client's lock, in the two-number space apart from the keys': a side-by-side batch holds the
# lock of every client whose wallet lines it reads, so no other such batch moves them until its
# COMMIT (exclusive batches exclude them all). In memory: no row written, unlike a row lock. Tried:
# the ids of one JSON-array parameter whose lock another transaction holds (their charges wait for
# the writer's next batch; a try never waits, so tries cannot deadlock). Taken waiting, in the order
# of the ids' hashes as the keys' are, by a batch holding charges left over from an earlier one.
CLIENT_LOCK_SPACE = "hashtext('wallet.client:' || current_schema())"
TRY_LOCK_CLIENTS_SQL = (
    "SELECT c.id FROM (SELECT DISTINCT value AS id FROM json_array_elements_text(?::json)"
    " ORDER BY id OFFSET 0) AS c"
    f" WHERE NOT pg_try_advisory_xact_lock({CLIENT_LOCK_SPACE}, hashtext(c.id))"
)
LOCK_CLIENTS_SQL = (
    f"SELECT pg_advisory_xact_lock({CLIENT_LOCK_SPACE}, h) FROM"
    " (SELECT DISTINCT hashtext(value) AS h FROM json_array_elements_text(?::json) ORDER BY h OFFSET 0) AS clients"
)
# ``Dialect.move_accounts``: every account of a batch moved by one statement, looked up by index as
# in ``CHECK_ACCOUNTS_SQL``.
MOVE_ACCOUNTS_SQL = (
    "WITH m AS MATERIALIZED (SELECT value->>0 AS id, (value->>1)::bigint AS balance_change,"
    " (value->>2)::bigint AS held_change FROM json_array_elements(?::json))"
    " UPDATE accounts SET balance = accounts.balance + m.balance_change, held = accounts.held + m.held_change"
    " FROM m WHERE accounts.id = m.id AND accounts.id = ANY (ARRAY(SELECT id FROM m))"
    " RETURNING accounts.id, accounts.balance, accounts.held"
)

# A list passed as one JSON-array parameter, as a table with a ``value`` column (SQLite: json_each).
LIST_PARAMETER = "json_array_elements_text(?::json)"
# ``= ANY`` of an array, not ``IN (SELECT ...)``: without statistics (the test server runs without
# autovacuum) the planner answers the IN form with a hash join over every row of the scope, 2 ms a
# batch's idempotency keys after 10,000 charges and growing; this form is an index scan.
IN_LIST = f"= ANY (ARRAY(SELECT {LIST_PARAMETER}))"
TABLE_EXISTS_SQL = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"


class StorageFault(Exception):
    """The database is unreachable, full, or the lock did not come in time: the batch is refused."""


class WriteLockBusy(StorageFault):
    """The write lock, tried with a transaction's first statement, is another writer's: nothing
    after the try ran. The writer rolls back and takes the lock waiting (``Connection.lock_write``)."""


class RetryableConflict(StorageFault):
    """PostgreSQL gave up on the transaction (serialization failure, deadlock): the whole batch
    fails, as on any storage fault, and the writer runs it again."""


class PlaceholderInLiteral(ValueError):
    """A statement with ``?`` or ``%`` inside a quoted literal: its placeholders would be ambiguous."""


def _outside_literals(sql: str) -> list[str]:
    """``sql`` split at single quotes: even parts are SQL, odd parts the insides of literals."""
    parts = sql.split("'")
    if len(parts) % 2 == 0:
        raise PlaceholderInLiteral(f"an unterminated literal in {sql!r}")
    for inside in parts[1::2]:
        if "?" in inside or "%" in inside:
            raise PlaceholderInLiteral(f"'?' or '%' inside a quoted literal in {sql!r}; pass it as a parameter")
    return parts


@functools.lru_cache(maxsize=2048)
def render_format(sql: str) -> str:
    """A unit's statement (``?`` placeholders) in psycopg's form: ``%s``, and a literal ``%`` as ``%%``."""
    parts = _outside_literals(sql)
    parts[::2] = [part.replace("%", "%%").replace("?", "%s") for part in parts[::2]]
    return "'".join(parts)


@functools.lru_cache(maxsize=2048)
def render_numbered(sql: str) -> str:
    """A unit's statement (``?`` placeholders) in asyncpg's form: ``$1``, ``$2``, ... in order."""
    parts = _outside_literals(sql)
    number = 0
    for index in range(0, len(parts), 2):
        pieces = parts[index].split("?")
        out = [pieces[0]]
        for piece in pieces[1:]:
            number += 1
            out.append(f"${number}{piece}")
        parts[index] = "".join(out)
    return "'".join(parts)
