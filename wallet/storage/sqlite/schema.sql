-- The wallet's SQLite schema. Ledger tables (transactions, postings) are append-only: triggers
-- refuse UPDATE and DELETE. Accounts carry running balances that `wallet check` recomputes.
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT;

CREATE TABLE IF NOT EXISTS categories (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS clients (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    phone_hash        TEXT NOT NULL UNIQUE,  -- HMAC of the E.164 number: the lookup key
    phone_ciphertext  TEXT NOT NULL,         -- AES-GCM under the phone key: the number itself
    national_id_hash  TEXT,
    created_at        TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS budgets (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    client_id    TEXT NOT NULL REFERENCES clients(id),
    start_month  TEXT NOT NULL,
    end_month    TEXT NOT NULL,
    unused       TEXT NOT NULL CHECK (unused IN ('carry_over', 'expire')),
    created_at   TEXT NOT NULL,
    CHECK (start_month <= end_month)
) STRICT;
CREATE INDEX IF NOT EXISTS budgets_by_client ON budgets (client_id, start_month);
CREATE INDEX IF NOT EXISTS budgets_by_end ON budgets (end_month);

CREATE TABLE IF NOT EXISTS budget_lines (
    budget_id       TEXT NOT NULL REFERENCES budgets(id),
    category        TEXT NOT NULL REFERENCES categories(code),
    monthly_amount  INTEGER NOT NULL CHECK (monthly_amount > 0),
    PRIMARY KEY (budget_id, category)
) STRICT;

CREATE TABLE IF NOT EXISTS providers (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    business_id  TEXT NOT NULL,
    iban         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'suspended')),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS provider_categories (
    provider_id  TEXT NOT NULL REFERENCES providers(id),
    category     TEXT NOT NULL REFERENCES categories(code),
    PRIMARY KEY (provider_id, category)
) STRICT;

CREATE TABLE IF NOT EXISTS provider_credentials (
    client_id    TEXT PRIMARY KEY,
    provider_id  TEXT NOT NULL REFERENCES providers(id),
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS accounts (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('funding', 'wallet', 'payable', 'settled')),
    client_id    TEXT,
    provider_id  TEXT,
    category     TEXT,
    balance      INTEGER NOT NULL DEFAULT 0,
    held         INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    CHECK (kind <> 'wallet' OR balance - held >= 0)
) STRICT;
CREATE INDEX IF NOT EXISTS accounts_by_client ON accounts (client_id) WHERE client_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS transactions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    client_id    TEXT,
    provider_id  TEXT,
    category     TEXT,
    charge_id    TEXT,
    refund_id    TEXT,
    month        TEXT
) STRICT;
-- No index by client: a client's history is read from its wallet events (wallet_events_by_client),
-- which hold one row per posting on its lines. Each per-client index is a random page for every
-- charge to write (schema 3 dropped this one, postings_by_account and charges_by_client;
-- docs/performance.md).
CREATE INDEX IF NOT EXISTS transactions_by_time ON transactions (created_at);

CREATE TABLE IF NOT EXISTS postings (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id  TEXT NOT NULL REFERENCES transactions(id),
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    amount          INTEGER NOT NULL CHECK (amount <> 0),
    balance_after   INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS postings_by_transaction ON postings (transaction_id);

CREATE TRIGGER IF NOT EXISTS transactions_append_only_update BEFORE UPDATE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS transactions_append_only_delete BEFORE DELETE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS postings_append_only_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;
CREATE TRIGGER IF NOT EXISTS postings_append_only_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;

CREATE TABLE IF NOT EXISTS charges (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    provider_id      TEXT NOT NULL REFERENCES providers(id),
    client_id        TEXT NOT NULL REFERENCES clients(id),
    category         TEXT NOT NULL,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    amount           INTEGER NOT NULL CHECK (amount > 0),
    method           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'captured', 'voided')),
    description      TEXT,
    created_at       TEXT NOT NULL,
    expires_at       TEXT,
    captured_at      TEXT,
    voided_at        TEXT,
    void_reason      TEXT,
    refunded_amount  INTEGER NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    otp_hash         TEXT,
    otp_attempts     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS charges_by_provider ON charges (provider_id, seq);
CREATE INDEX IF NOT EXISTS charges_pending ON charges (expires_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS refunds (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    charge_id       TEXT NOT NULL REFERENCES charges(id),
    provider_id     TEXT NOT NULL REFERENCES providers(id),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    transaction_id  TEXT NOT NULL REFERENCES transactions(id),
    created_at      TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS refunds_by_charge ON refunds (charge_id);

-- One credit per wallet line per month; one boundary expiry per wallet line per month.
CREATE TABLE IF NOT EXISTS credits (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    month           TEXT NOT NULL,
    budget_id       TEXT NOT NULL REFERENCES budgets(id),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    transaction_id  TEXT NOT NULL REFERENCES transactions(id),
    PRIMARY KEY (account_id, month)
) STRICT;
CREATE INDEX IF NOT EXISTS credits_by_month ON credits (month);

CREATE TABLE IF NOT EXISTS expiries (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    boundary_month  TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    transaction_id  TEXT REFERENCES transactions(id),
    PRIMARY KEY (account_id, boundary_month)
) STRICT;

CREATE TABLE IF NOT EXISTS credit_runs (
    month        TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    finished_at  TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS identity_failures (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id    TEXT NOT NULL,
    provider_id  TEXT,
    method       TEXT NOT NULL,
    at           TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS identity_failures_by_client ON identity_failures (client_id, at);
CREATE INDEX IF NOT EXISTS identity_failures_by_provider ON identity_failures (provider_id, at);

CREATE TABLE IF NOT EXISTS login_codes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id   TEXT NOT NULL REFERENCES clients(id),
    code_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    used_at     TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS login_codes_by_client ON login_codes (client_id, created_at);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_time ON idempotency_keys (created_at);

INSERT INTO accounts (id, kind) VALUES ('funding', 'funding') ON CONFLICT DO NOTHING;

-- The tamper-evident audit log: every money movement and organizer action, hash-chained.
CREATE TABLE IF NOT EXISTS audit_log (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    subject        TEXT NOT NULL,
    data           TEXT NOT NULL,
    previous_hash  TEXT NOT NULL,
    hash           TEXT NOT NULL  -- distinct by the chain; no index (schema version 2)
) STRICT;
CREATE TRIGGER IF NOT EXISTS audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Settlement batches (see wallet/ledger/settlements.py). A batch's lines are ledger transactions
-- (captures and refunds) keyed by their transaction id: a line can never be in two batches.
CREATE INDEX IF NOT EXISTS transactions_by_provider ON transactions (provider_id, seq) WHERE provider_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS settlements (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- also the number in the reference
    id              TEXT NOT NULL UNIQUE,
    provider_id     TEXT NOT NULL REFERENCES providers(id),
    reference       TEXT NOT NULL UNIQUE,               -- Finnish reference, digits only
    rf_reference    TEXT NOT NULL UNIQUE,               -- ISO 11649 form, compact
    amount          INTEGER NOT NULL,                   -- net cents owed to the provider; negative: owed by it
    count           INTEGER NOT NULL CHECK (count > 0),
    period_start    TEXT NOT NULL,                      -- time of the batch's first line
    period_end      TEXT NOT NULL,                      -- time of its last line
    until           TEXT NOT NULL,                      -- the cut-off asked for
    transaction_id  TEXT UNIQUE REFERENCES transactions(id),  -- NULL exactly when amount = 0
    scan_from_seq   INTEGER NOT NULL,                   -- every line of this provider below it is settled
    status          TEXT NOT NULL CHECK (status IN ('open', 'invoiced', 'paid')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CHECK ((amount = 0) = (transaction_id IS NULL)),
    CHECK (period_start <= period_end)
) STRICT;
CREATE INDEX IF NOT EXISTS settlements_by_provider ON settlements (provider_id, seq);
CREATE INDEX IF NOT EXISTS settlements_by_time ON settlements (created_at);

CREATE TABLE IF NOT EXISTS settlement_items (
    transaction_id  TEXT PRIMARY KEY REFERENCES transactions(id),
    settlement_id   TEXT NOT NULL REFERENCES settlements(id),
    amount          INTEGER NOT NULL CHECK (amount <> 0)  -- its posting on the provider's payable account
) STRICT;
CREATE INDEX IF NOT EXISTS settlement_items_by_settlement ON settlement_items (settlement_id);

-- Every status change of a batch, with who (the principal's scope) and when.
CREATE TABLE IF NOT EXISTS settlement_events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    settlement_id    TEXT NOT NULL REFERENCES settlements(id),
    previous_status  TEXT,
    status           TEXT NOT NULL CHECK (status IN ('open', 'invoiced', 'paid')),
    actor            TEXT NOT NULL,
    at               TEXT NOT NULL,
    note             TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS settlement_events_by_settlement ON settlement_events (settlement_id, seq);

-- A batch's money never changes after it is made; only its status (and when) may.
CREATE TRIGGER IF NOT EXISTS settlements_fixed BEFORE UPDATE OF
    seq, id, provider_id, reference, rf_reference, amount, count, period_start, period_end, until,
    transaction_id, scan_from_seq, created_at ON settlements
BEGIN SELECT RAISE(ABORT, 'a settlement batch is fixed once made; only its status changes'); END;
CREATE TRIGGER IF NOT EXISTS settlements_never_deleted BEFORE DELETE ON settlements
BEGIN SELECT RAISE(ABORT, 'settlement batches are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS settlement_items_append_only_update BEFORE UPDATE ON settlement_items
BEGIN SELECT RAISE(ABORT, 'settlement items are append-only'); END;
CREATE TRIGGER IF NOT EXISTS settlement_items_append_only_delete BEFORE DELETE ON settlement_items
BEGIN SELECT RAISE(ABORT, 'settlement items are append-only'); END;
CREATE TRIGGER IF NOT EXISTS settlement_events_append_only_update BEFORE UPDATE ON settlement_events
BEGIN SELECT RAISE(ABORT, 'settlement events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS settlement_events_append_only_delete BEFORE DELETE ON settlement_events
BEGIN SELECT RAISE(ABORT, 'settlement events are append-only'); END;

-- Invoice reconciliations: each received invoice and its outcome (see wallet/ledger/reconciliation.py).
CREATE TABLE IF NOT EXISTS reconciliations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL CHECK (source IN ('finvoice', 'csv')),
    invoices    INTEGER NOT NULL CHECK (invoices > 0),
    matched     INTEGER NOT NULL CHECK (matched >= 0),
    actor       TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS reconciliation_invoices (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    reconciliation_id   TEXT NOT NULL REFERENCES reconciliations(id),
    position            INTEGER NOT NULL,
    invoice_number      TEXT,
    reference           TEXT,            -- as written on the invoice
    payment_reference   TEXT,            -- compact Finnish form, when its check digits hold
    seller_business_id  TEXT,            -- as written
    seller_digits       TEXT,            -- the Y-tunnus digits, for comparing
    amount              INTEGER,         -- cents, when readable
    outcome             TEXT NOT NULL CHECK (outcome IN
                            ('matched', 'amount_mismatch', 'unknown_reference', 'business_id_mismatch', 'duplicate')),
    settlement_id       TEXT REFERENCES settlements(id),
    detail              TEXT NOT NULL,
    UNIQUE (reconciliation_id, position)
) STRICT;
-- One matched invoice per batch, and a seller's invoice number matches once: the database says so.
CREATE UNIQUE INDEX IF NOT EXISTS reconciliation_invoices_one_match_per_settlement
    ON reconciliation_invoices (settlement_id) WHERE outcome = 'matched';
CREATE UNIQUE INDEX IF NOT EXISTS reconciliation_invoices_matched_once
    ON reconciliation_invoices (seller_digits, invoice_number)
    WHERE outcome = 'matched' AND invoice_number IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS reconciliation_invoices_append_only_update BEFORE UPDATE ON reconciliation_invoices
BEGIN SELECT RAISE(ABORT, 'reconciliation invoices are append-only'); END;
CREATE TRIGGER IF NOT EXISTS reconciliation_invoices_append_only_delete BEFORE DELETE ON reconciliation_invoices
BEGIN SELECT RAISE(ABORT, 'reconciliation invoices are append-only'); END;

-- The client's live feed (GET /v1/me/events): one row per change to a wallet line, written by the
-- unit of work in the same transaction as the change. ``seq`` is the event id; one writer at a time
-- means ids rise in commit order, so a stream that sends the rows above its last id loses nothing
-- and repeats nothing. ``amount`` is signed: the change to the line's balance for credit, expiry,
-- capture and refund; the change to what is available for hold and void. Balances are after it.
CREATE TABLE IF NOT EXISTS wallet_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id       TEXT NOT NULL REFERENCES clients(id),
    type            TEXT NOT NULL CHECK (type IN ('credit', 'expiry', 'hold', 'capture', 'void', 'refund')),
    category        TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount <> 0),
    charge_id       TEXT,
    provider_id     TEXT,
    transaction_id  TEXT,
    reason          TEXT,               -- why a hold was released (void)
    line_balance    INTEGER NOT NULL,
    line_available  INTEGER NOT NULL,
    balance         INTEGER NOT NULL,   -- the whole wallet
    available       INTEGER NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS wallet_events_by_client ON wallet_events (client_id, seq);
CREATE TRIGGER IF NOT EXISTS wallet_events_append_only_update BEFORE UPDATE ON wallet_events
BEGIN SELECT RAISE(ABORT, 'wallet events are append-only'); END;
-- No index of charges by client: a client's charges are found by the wallet event each is made
-- with (its hold, or its capture when captured at once). Schema 3 dropped charges_by_client.

-- Representatives (puolesta-asiointi, as in the Suomi.fi mandates): a person who acts for one or
-- more clients. Found by the keyed hash of their phone, as clients are; the number itself only as
-- AES-GCM ciphertext; a national id only as a keyed hash.
CREATE TABLE IF NOT EXISTS representatives (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    name              TEXT,
    phone_hash        TEXT NOT NULL UNIQUE,
    phone_ciphertext  TEXT NOT NULL,
    national_id_hash  TEXT,
    created_at        TEXT NOT NULL
) STRICT;

-- A mandate: this representative may act for this client, with a scope. Revocation sets
-- revoked_at once; nothing else ever changes and nothing is deleted. At most one active mandate
-- per (representative, client).
CREATE TABLE IF NOT EXISTS representations (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    representative_id  TEXT NOT NULL REFERENCES representatives(id),
    client_id          TEXT NOT NULL REFERENCES clients(id),
    scope              TEXT NOT NULL CHECK (scope IN ('view', 'manage')),
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    revoked_at         TEXT,
    revoked_by         TEXT,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
    CHECK (revoked_at IS NULL OR revoked_at >= created_at)
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS representations_one_active
    ON representations (representative_id, client_id) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS representations_by_client ON representations (client_id, seq);
CREATE TRIGGER IF NOT EXISTS representations_fixed BEFORE UPDATE OF
    seq, id, representative_id, client_id, scope, created_at, created_by ON representations
BEGIN SELECT RAISE(ABORT, 'a mandate is fixed once made; it can only be revoked'); END;
CREATE TRIGGER IF NOT EXISTS representations_revoked_once BEFORE UPDATE OF revoked_at, revoked_by ON representations
WHEN OLD.revoked_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a revoked mandate stays revoked'); END;
CREATE TRIGGER IF NOT EXISTS representations_never_deleted BEFORE DELETE ON representations
BEGIN SELECT RAISE(ABORT, 'mandates are never deleted'); END;

-- A representative's login codes (a client's are in login_codes). Used only for a phone that is
-- not also a client's: such a phone's code is the client's, and verify decides whose token it is.
CREATE TABLE IF NOT EXISTS representative_login_codes (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    representative_id  TEXT NOT NULL REFERENCES representatives(id),
    code_hash          TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    used_at            TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS representative_login_codes_by_representative
    ON representative_login_codes (representative_id, created_at);

-- One month of money at a time: a credit run ahead of its month stages the month's credit here,
-- posting nothing. The run of that month (from its midnight, WALLET_TIMEZONE) releases it: it posts
-- the credit (funding → wallet line, a row in `credits`) in the transaction that expires the month
-- before. Released ⇔ a `credits` row of the same line and month. Never updated or deleted.
CREATE TABLE IF NOT EXISTS staged_credits (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    month       TEXT NOT NULL,
    budget_id   TEXT NOT NULL REFERENCES budgets(id),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    staged_at   TEXT NOT NULL,
    PRIMARY KEY (account_id, month)
) STRICT;
CREATE INDEX IF NOT EXISTS staged_credits_by_month ON staged_credits (month);
CREATE TRIGGER IF NOT EXISTS staged_credits_no_update BEFORE UPDATE ON staged_credits
BEGIN SELECT RAISE(ABORT, 'staged credits are append-only'); END;
CREATE TRIGGER IF NOT EXISTS staged_credits_no_delete BEFORE DELETE ON staged_credits
BEGIN SELECT RAISE(ABORT, 'staged credits are append-only'); END;

-- Months whose run has released everything staged for them (written when that run finishes):
-- `wallet check` finds any staged credit of such a month left unreleased.
CREATE TABLE IF NOT EXISTS month_releases (
    month        TEXT PRIMARY KEY,
    finished_at  TEXT NOT NULL
) STRICT;

-- Bank statements (camt.054 notifications, camt.053 statements): each file received, the ids of
-- the statements or notifications in it (each accepted once), and each entry's outcome
-- (see wallet/ledger/bank_statements.py). A 'paid' entry is what paid a settlement; 'returned', a
-- credit that re-opened it.
CREATE TABLE IF NOT EXISTS bank_statements (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('camt.053', 'camt.054')),
    message_id  TEXT NOT NULL,
    entries     INTEGER NOT NULL CHECK (entries >= 0),
    applied     INTEGER NOT NULL CHECK (applied >= 0),
    actor       TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS bank_statement_documents (
    document_key  TEXT PRIMARY KEY,  -- kind, then the Stmt/Id or Ntfctn/Id: "camt.054:NTF-1"
    statement_id  TEXT NOT NULL REFERENCES bank_statements(id)
) STRICT;

CREATE TABLE IF NOT EXISTS bank_statement_entries (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    statement_id     TEXT NOT NULL REFERENCES bank_statements(id),
    position         INTEGER NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('DBIT', 'CRDT')),
    amount           INTEGER,          -- cents, when readable
    booking_date     TEXT,
    entry_reference  TEXT,             -- the bank's AcctSvcrRef
    reference        TEXT,             -- the creditor reference, as written
    end_to_end_id    TEXT,
    outcome          TEXT NOT NULL CHECK (outcome IN ('paid', 'returned', 'already_paid', 'already_applied',
                         'amount_mismatch', 'unknown_reference', 'not_paid', 'not_booked')),
    settlement_id    TEXT REFERENCES settlements(id),
    detail           TEXT NOT NULL,
    UNIQUE (statement_id, position)
) STRICT;
-- A bank entry is applied once: the database says so too.
CREATE UNIQUE INDEX IF NOT EXISTS bank_statement_entries_applied_once
    ON bank_statement_entries (entry_reference) WHERE outcome IN ('paid', 'returned') AND entry_reference IS NOT NULL;
CREATE INDEX IF NOT EXISTS bank_statement_entries_by_settlement ON bank_statement_entries (settlement_id, seq);
CREATE TRIGGER IF NOT EXISTS bank_statement_entries_append_only_update BEFORE UPDATE ON bank_statement_entries
BEGIN SELECT RAISE(ABORT, 'bank statement entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS bank_statement_entries_append_only_delete BEFORE DELETE ON bank_statement_entries
BEGIN SELECT RAISE(ABORT, 'bank statement entries are append-only'); END;

-- Payment batches (pain.001 credit-transfer files, see wallet/ledger/payments.py): each batch, and
-- each settlement it pays with the creditor as it was when the batch was made. A settlement is in
-- one batch at most that is not cancelled (released_at IS NULL).
CREATE TABLE IF NOT EXISTS payment_batches (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    message_id      TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('created', 'cancelled')),
    count           INTEGER NOT NULL CHECK (count > 0),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    payer_name      TEXT NOT NULL,
    payer_iban      TEXT NOT NULL,
    payer_bic       TEXT NOT NULL,
    execution_date  TEXT NOT NULL,
    actor           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    cancelled_at    TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS payment_batch_items (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id       TEXT NOT NULL REFERENCES payment_batches(id),
    settlement_id  TEXT NOT NULL REFERENCES settlements(id),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    reference      TEXT NOT NULL,
    end_to_end_id  TEXT NOT NULL,
    creditor_name  TEXT NOT NULL,
    creditor_iban  TEXT NOT NULL,
    released_at    TEXT,
    UNIQUE (batch_id, settlement_id)
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS payment_batch_items_one_batch_per_settlement
    ON payment_batch_items (settlement_id) WHERE released_at IS NULL;


-- What a Finvoice says beside the fields judged: the bank channel frame's sender, the invoice
-- total (more than the amount to pay when partly prepaid), the Finvoice version. One row per
-- invoice that has any of them, beside its reconciliation_invoices row.
CREATE TABLE IF NOT EXISTS reconciliation_invoice_details (
    reconciliation_id  TEXT NOT NULL REFERENCES reconciliations(id),
    position           INTEGER NOT NULL,
    sender             TEXT,
    invoice_total      INTEGER,
    finvoice_version   TEXT,
    PRIMARY KEY (reconciliation_id, position)
) STRICT;

-- The organizer's service catalog (wallet/ledger/catalog.py): a service within a budget category,
-- its unit, and its unit value (the most the budget pays for one unit) from a day on. The values
-- only grow: a new one starts on a later day, and none is ever changed or removed.
CREATE TABLE IF NOT EXISTS services (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    code        TEXT NOT NULL UNIQUE,
    category    TEXT NOT NULL REFERENCES categories(code),
    name_fi     TEXT NOT NULL,
    name_sv     TEXT NOT NULL,
    name_en     TEXT,
    unit        TEXT NOT NULL CHECK (unit IN ('hour', 'visit', 'day', 'trip', 'item', 'month')),
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS services_by_category ON services (category, seq);

CREATE TABLE IF NOT EXISTS service_unit_values (
    service_id  TEXT NOT NULL REFERENCES services(id),
    valid_from  TEXT NOT NULL,
    unit_value  INTEGER NOT NULL CHECK (unit_value > 0),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (service_id, valid_from)
) STRICT;
CREATE TRIGGER IF NOT EXISTS service_unit_values_append_only_update BEFORE UPDATE ON service_unit_values
BEGIN SELECT RAISE(ABORT, 'unit values are append-only'); END;
CREATE TRIGGER IF NOT EXISTS service_unit_values_append_only_delete BEFORE DELETE ON service_unit_values
BEGIN SELECT RAISE(ABORT, 'unit values are append-only'); END;

-- Providers' offers: at most one active offer per provider and service. Its price history is
-- append-only (offer_prices: the newest row is the price now); where and in which languages the
-- provider serves are rows of their own, so that the comparison filters on them with an index.
CREATE TABLE IF NOT EXISTS offers (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    provider_id   TEXT NOT NULL REFERENCES providers(id),
    service_id    TEXT NOT NULL REFERENCES services(id),
    status        TEXT NOT NULL CHECK (status IN ('active', 'withdrawn')),
    description   TEXT,
    address       TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    withdrawn_at  TEXT
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS offers_one_active ON offers (provider_id, service_id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS offers_by_service ON offers (service_id, status);
CREATE INDEX IF NOT EXISTS offers_by_provider ON offers (provider_id, seq);

CREATE TABLE IF NOT EXISTS offer_prices (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    offer_id    TEXT NOT NULL REFERENCES offers(id),
    unit_price  INTEGER NOT NULL CHECK (unit_price > 0),
    valid_from  TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS offer_prices_by_offer ON offer_prices (offer_id, seq);
CREATE TRIGGER IF NOT EXISTS offer_prices_append_only_update BEFORE UPDATE ON offer_prices
BEGIN SELECT RAISE(ABORT, 'offer prices are append-only'); END;
CREATE TRIGGER IF NOT EXISTS offer_prices_append_only_delete BEFORE DELETE ON offer_prices
BEGIN SELECT RAISE(ABORT, 'offer prices are append-only'); END;

CREATE TABLE IF NOT EXISTS offer_municipalities (
    offer_id      TEXT NOT NULL REFERENCES offers(id),
    municipality  TEXT NOT NULL,
    PRIMARY KEY (offer_id, municipality)
) STRICT;
CREATE INDEX IF NOT EXISTS offer_municipalities_by_code ON offer_municipalities (municipality);

CREATE TABLE IF NOT EXISTS offer_languages (
    offer_id  TEXT NOT NULL REFERENCES offers(id),
    language  TEXT NOT NULL,
    PRIMARY KEY (offer_id, language)
) STRICT;
CREATE INDEX IF NOT EXISTS offer_languages_by_code ON offer_languages (language);

-- An itemized charge's items (suoritteet), as priced when it was made: the offer's price and the
-- unit value in force on the service date, so that a later change of either changes no past
-- charge. The charge's amount is the sum of its items' amounts (`wallet check` verifies).
CREATE TABLE IF NOT EXISTS charge_items (
    charge_id            TEXT NOT NULL REFERENCES charges(id),
    position             INTEGER NOT NULL CHECK (position >= 0),
    service_id           TEXT NOT NULL REFERENCES services(id),
    offer_id             TEXT NOT NULL REFERENCES offers(id),
    quantity_hundredths  INTEGER NOT NULL CHECK (quantity_hundredths > 0),
    unit_price           INTEGER NOT NULL CHECK (unit_price > 0),
    unit_value           INTEGER NOT NULL CHECK (unit_value > 0),
    amount               INTEGER NOT NULL CHECK (amount >= 0),
    own_share            INTEGER NOT NULL CHECK (own_share >= 0),
    service_date         TEXT NOT NULL,
    PRIMARY KEY (charge_id, position)
) STRICT;
CREATE TRIGGER IF NOT EXISTS charge_items_append_only_update BEFORE UPDATE ON charge_items
BEGIN SELECT RAISE(ABORT, 'charge items are append-only'); END;
CREATE TRIGGER IF NOT EXISTS charge_items_append_only_delete BEFORE DELETE ON charge_items
BEGIN SELECT RAISE(ABORT, 'charge items are append-only'); END;

-- Receipts by SMS (issue 22): a transactional outbox. Every capture, refund and void is a wallet
-- event; this trigger writes the event's receipt row in the same transaction, whatever unit of work
-- (or batch) wrote the event, so a receipt exists exactly when its movement was committed, and once
-- (the event's seq is the key). The service claims unsent rows in a write (claimed_at, attempts),
-- sends each after that commit and marks it sent: a claim not marked sent within the lease (its
-- sender died) is claimed again, at most WALLET_RECEIPT_ATTEMPTS_MAX times (then abandoned_at).
-- Only movements made after this table existed get receipts.
CREATE TABLE IF NOT EXISTS receipts (
    event_seq   INTEGER PRIMARY KEY REFERENCES wallet_events(seq),
    client_id   TEXT NOT NULL REFERENCES clients(id),
    created_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    claimed_at  TEXT,
    sent_at     TEXT,
    abandoned_at TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS receipts_unsent ON receipts (event_seq) WHERE sent_at IS NULL AND abandoned_at IS NULL;
CREATE TRIGGER IF NOT EXISTS wallet_events_receipt AFTER INSERT ON wallet_events
WHEN NEW.type IN ('capture', 'refund', 'void')
BEGIN INSERT INTO receipts (event_seq, client_id, created_at) VALUES (NEW.seq, NEW.client_id, NEW.created_at); END;

-- Page sessions, made by an OpenID Connect sign-in (wallet/api/signin.py). The cookie's secret is kept
-- only as its keyed hash; a session ends at ended_at (sign-out), after the idle lifetime since
-- last_seen_at, or at expires_at (the absolute lifetime), whichever comes first.
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash            TEXT PRIMARY KEY,
    audience           TEXT NOT NULL CHECK (audience IN ('client', 'staff')),
    role               TEXT NOT NULL,
    subject            TEXT NOT NULL,
    name               TEXT,
    client_id          TEXT,
    representative_id  TEXT,
    client_ids         TEXT NOT NULL,  -- a representative's clients at sign-in, as a JSON list
    created_at         TEXT NOT NULL,
    last_seen_at       TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    ended_at           TEXT
) STRICT;

-- Decisions (päätökset): every budget, and every change to one, with the calculation it rests on
-- and its document (a PDF) as issued, stored once with its SHA-256 and never rendered again.
CREATE TABLE IF NOT EXISTS decisions (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    number           TEXT NOT NULL UNIQUE,
    budget_id        TEXT NOT NULL REFERENCES budgets(id),
    client_id        TEXT NOT NULL REFERENCES clients(id),
    kind             TEXT NOT NULL CHECK (kind IN ('grant', 'change')),
    from_month       TEXT NOT NULL,
    language         TEXT NOT NULL CHECK (language IN ('fi', 'sv')),
    decided_by       TEXT NOT NULL,
    calculation      TEXT NOT NULL,  -- JSON: the plan's items and the lines' monthly amounts
    document         BLOB NOT NULL,
    document_sha256  TEXT NOT NULL,
    created_at       TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS decisions_by_client ON decisions (client_id, seq);
CREATE INDEX IF NOT EXISTS decisions_by_budget ON decisions (budget_id, seq);
CREATE TRIGGER IF NOT EXISTS decisions_append_only_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_append_only_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;

-- A budget's amount per line and month where it is not the same every month (a plan's rounding
-- month, a change from a month on): then every month of the budget has a row for every line
-- (0 where a later decision dropped the line), and the credit run credits these.
CREATE TABLE IF NOT EXISTS budget_months (
    budget_id    TEXT NOT NULL REFERENCES budgets(id),
    category     TEXT NOT NULL REFERENCES categories(code),
    month        TEXT NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount >= 0),
    decision_id  TEXT REFERENCES decisions(id),  -- NULL: from lines made before decisions were kept
    PRIMARY KEY (budget_id, category, month)
) STRICT;

-- Messages owed to clients (an outbox): a new decision (written with it), a month's statement
-- (queued at the month's end). A sweep sends them by SMS and marks them sent; one that fails to
-- send stays unsent and is tried again.
CREATE TABLE IF NOT EXISTS notices (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id   TEXT NOT NULL REFERENCES clients(id),
    kind        TEXT NOT NULL CHECK (kind IN ('decision', 'statement')),
    subject     TEXT NOT NULL,  -- the decision's id, or the statement's month
    language    TEXT NOT NULL CHECK (language IN ('fi', 'sv')),
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    UNIQUE (client_id, kind, subject)
) STRICT;
CREATE INDEX IF NOT EXISTS notices_unsent ON notices (seq) WHERE sent_at IS NULL;

-- A closed month's statement as a PDF, stored once per client and language the first time it is
-- asked for (or its notice queued) and served as stored afterwards; the open month is never stored.
CREATE TABLE IF NOT EXISTS statement_documents (
    client_id        TEXT NOT NULL REFERENCES clients(id),
    month            TEXT NOT NULL,
    language         TEXT NOT NULL CHECK (language IN ('fi', 'sv')),
    document         BLOB NOT NULL,
    document_sha256  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (client_id, month, language)
) STRICT;
CREATE TRIGGER IF NOT EXISTS statement_documents_append_only_update BEFORE UPDATE ON statement_documents
BEGIN SELECT RAISE(ABORT, 'statement documents are append-only'); END;
CREATE TRIGGER IF NOT EXISTS statement_documents_append_only_delete BEFORE DELETE ON statement_documents
BEGIN SELECT RAISE(ABORT, 'statement documents are append-only'); END;
