"""The route table: each (method, path) the API serves, with its operation's documentation.

``wallet/api/openapi.py`` builds the OpenAPI document from it (the schemas come from the shapes in
``wallet/shapes``, the statuses from ``_statuses`` there); ``tests/test_openapi.py`` fails when a
route has no entry here, or an entry no route.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

import msgspec

from wallet import validation
from wallet.ledger.charges import ChargeStatus
from wallet.ledger.parties import ProviderStatus
from wallet.ledger.settlements import SettlementStatus
from wallet.shapes import requests, responses

Schema = dict[str, Any]


def schema_ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


MONTH = msgspec.json.schema(validation.Month)  # the month parameters, as the bodies' months


def enum_schema(values: type[Enum]) -> Schema:
    return {"type": "string", "enum": [member.value for member in values]}


# Routes.

REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the first response replayed for a repeated Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _json(shape: type[msgspec.Struct], description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema_ref(shape.__name__)}}}


def _body(shape: type[msgspec.Struct], *, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema_ref(shape.__name__)}}}


def _route(
    tag: str,
    summary: str,
    responses: dict[int, Schema],
    *,
    body: Schema | None = None,
    parameters: Iterable[str | Schema] = (),
    errors: dict[int, Iterable[str]] | None = None,
    idempotent: bool = False,
    public: bool = False,
    problem: str = "Problem",
    not_answered: Iterable[int] = (),
    description: str | None = None,
) -> Schema:
    """One route's operation; ``errors`` maps a status to the codes it may carry, beyond those derived
    from the route (``_statuses``); ``not_answered``, derived statuses the route never answers."""
    return {
        "tag": tag,
        "summary": summary,
        "responses": responses,
        "body": body,
        "parameters": list(parameters),
        "errors": {status: list(codes) for status, codes in (errors or {}).items()},
        "idempotent": idempotent,
        "public": public,
        "problem": problem,
        "not_answered": frozenset(not_answered),
        "description": description,
    }


PAGE = ("Limit", "Cursor")
EXPORT = ("ExportFrom", "ExportTo", "ExportFormat")
CSV_FILE = {"schema": {"type": "string"}}
FINVOICE_BODY = (
    "Finvoice 3.0 or 2.01: one invoice, or a bank e-invoicing channel file (a SOAP transmission frame before"
    " each invoice, documents one after another), in the encoding each document declares."
)

# The route table: each (method, path) the API serves with its operation's documentation.
ROUTES: dict[tuple[str, str], Schema] = {
    # Operations.
    ("GET", "/healthz"): _route(
        "Operations",
        "The process answers",
        {200: _json(responses.Health, "Alive.")},
        public=True,
    ),
    ("GET", "/readyz"): _route(
        "Operations",
        "Ready for traffic",
        {200: _json(responses.Readiness, "Ready.")},
        public=True,
        errors={503: ["unavailable"]},
        description="503 (with `checks`) unless the database answers a read, the writer thread runs and is "
        "not stalled, and the last background credit run did not fail.",
    ),
    ("GET", "/metrics"): _route(
        "Operations",
        "Prometheus metrics",
        {200: {"description": "The Prometheus text format.", "content": {"text/plain": CSV_FILE}}},
        public=True,
        description="No personal data in any label. Expose it to the scraper only.",
    ),
    ("GET", "/v1/openapi.json"): _route(
        "Operations",
        "This document",
        {200: {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}},
        public=True,
    ),
    # Tokens.
    ("POST", "/v1/token"): _route(
        "Tokens",
        "A provider's token (OAuth2 client credentials)",
        {200: _json(responses.Token, "A bearer token.")},
        body={
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema_ref(requests.TokenRequest.__name__)},
                "application/json": {"schema": schema_ref(requests.TokenRequest.__name__)},
            },
        },
        errors={400: ["invalid_request", "unauthorized_client"], 401: ["unauthorized"]},
        problem="OAuthProblem",
        not_answered=(415, 422),  # RFC 6749 section 5.2: another body, or a parameter refused, is 400
        description="The client id and secret in the body or in HTTP Basic (not both); `grant_type` is required. "
        "Refusals follow RFC 6749 section 5.2, their problem+json bodies with the RFC's `error` and "
        "`error_description` beside `code`, never cached (`Cache-Control: no-store`): a malformed request "
        "(a parameter missing or repeated, a body neither a form nor a JSON object, credentials both in HTTP "
        "Basic and in the body) is 400 `invalid_request`, another grant type 400 `unsupported_grant_type` "
        "(code `invalid_request`), a suspended provider 400 `unauthorized_client`; unknown or wrong "
        "credentials are 401 `invalid_client` (code `unauthorized`) with `WWW-Authenticate: Basic`, "
        "whether they came in HTTP Basic or in the body.",
    ),
    ("POST", "/v1/login"): _route(
        "Tokens",
        "A client asks for a login code by SMS",
        {202: _json(responses.LoginStarted, "A code is sent if the phone has a wallet.")},
        body=_body(requests.LoginRequest),
        errors={403: ["forbidden"], 429: ["rate_limited"]},
        description="403 when the organizer has turned the SMS sign-in off (`WALLET_SMS_LOGIN=false`).",
    ),
    ("POST", "/v1/login/verify"): _route(
        "Tokens",
        "A client's (or a representative's) token for the SMS code",
        {200: _json(responses.Token, "A client token, or a representative token.")},
        body=_body(requests.LoginVerification),
        errors={403: ["forbidden"], 422: ["identity_check_failed"]},
        description="A representative token has `role: representative`, `sub` and `representative_id` (the "
        "person), `client_ids` (the clients with an active mandate at login) and, when chosen, `client_id`. "
        "403 also when the SMS sign-in is off (`WALLET_SMS_LOGIN=false`).",
    ),
    # Organizer.
    ("POST", "/v1/categories"): _route(
        "Organizer",
        "Create a service category",
        {201: _json(responses.Category, "Created.")},
        body=_body(requests.NewCategory),
        errors={409: ["conflict"]},
    ),
    ("GET", "/v1/categories"): _route(
        "Organizer",
        "List the service categories",
        {200: _json(responses.CategoryList, "Every category.")},
        description="Clients and representatives read it too, for the names of a budget's lines.",
    ),
    ("POST", "/v1/clients"): _route(
        "Organizer",
        "Create a client (a wallet)",
        {201: _json(responses.Client, "Created.")},
        body=_body(requests.NewClient),
        errors={409: ["conflict"]},
    ),
    ("GET", "/v1/clients/{client_id}"): _route(
        "Organizer",
        "A client, with its identity-check lockout",
        {200: _json(responses.ClientDetail, "The client.")},
        parameters=["ClientId"],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/clients/{client_id}/budgets"): _route(
        "Organizer",
        "Grant a client a personal budget",
        {201: _json(responses.Budget, "Created.")},
        body=_body(requests.NewBudget),
        parameters=["ClientId"],
        errors={404: ["not_found"], 409: ["conflict"], 422: ["category_not_allowed"]},
        description="Budgets of one client must not overlap (409).",
    ),
    ("GET", "/v1/clients/{client_id}/budgets"): _route(
        "Organizer",
        "A client's budgets, newest first",
        {200: _json(responses.BudgetPage, "A page.")},
        parameters=["ClientId", *PAGE],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/clients/{client_id}/budgets/{budget_id}/end"): _route(
        "Organizer",
        "End a budget sooner",
        {200: _json(responses.Budget, "The budget with its new last month.")},
        body=_body(requests.BudgetEnd),
        parameters=["ClientId", "BudgetId"],
        errors={404: ["not_found"], 409: ["conflict"]},
        description="Nothing is credited after `end_month`; the credit run at the next month's start returns "
        "what is left on the budget's lines, whatever the `unused` policy. Ending at the month it already "
        "ends is a no-op. 409 `conflict` when a later month is already credited (ahead of time).",
    ),
    ("POST", "/v1/clients/{client_id}/representatives"): _route(
        "Organizer",
        "Give a representative a mandate to act for the client",
        {201: _json(responses.Representation, "Created.")},
        body=_body(requests.NewRepresentation),
        parameters=["ClientId"],
        errors={404: ["not_found"], 409: ["conflict"]},
        description="The representative is found by phone (one person may act for several clients) or made. 409: "
        "an active mandate for this client exists, the phone is the client's own, or the phone's representative "
        "has another national id.",
    ),
    ("GET", "/v1/clients/{client_id}/representatives"): _route(
        "Organizer",
        "The client's representatives' mandates, active and revoked, newest first",
        {200: _json(responses.RepresentationPage, "A page.")},
        parameters=["ClientId", *PAGE],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/clients/{client_id}/representatives/{representation_id}/revoke"): _route(
        "Organizer",
        "Revoke a mandate, at once",
        {200: _json(responses.Representation, "Revoked (or already so).")},
        parameters=["ClientId", "RepresentationId"],
        errors={404: ["not_found"]},
        description="Takes effect on the representative's next request, whatever tokens they hold.",
    ),
    ("POST", "/v1/providers"): _route(
        "Organizer",
        "Register a service provider (pending approval)",
        {201: _json(responses.Provider, "Created.")},
        body=_body(requests.NewProvider),
        errors={422: ["category_not_allowed"]},
    ),
    ("GET", "/v1/providers/{provider_id}"): _route(
        "Organizer",
        "A provider, with its identity-check lockout",
        {200: _json(responses.ProviderDetail, "The provider.")},
        description="A provider may read its own record (its approved categories); another's is 404.",
        parameters=["ProviderId"],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/providers/{provider_id}/approve"): _route(
        "Organizer",
        "Approve a provider to charge",
        {200: _json(responses.Provider, "Approved.")},
        parameters=["ProviderId"],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/providers/{provider_id}/suspend"): _route(
        "Organizer",
        "Suspend a provider",
        {200: _json(responses.Provider, "Suspended.")},
        parameters=["ProviderId"],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/providers/{provider_id}/credentials"): _route(
        "Organizer",
        "Issue OAuth2 client credentials to a provider",
        {201: _json(responses.ProviderCredentials, "Created; the secret is shown this once.")},
        parameters=["ProviderId"],
        errors={404: ["not_found"]},
    ),
    # The service catalog and offers.
    ("POST", "/v1/services"): _route(
        "Catalog",
        "Add a service to the catalog",
        {201: _json(responses.Service, "Created; its unit value is in force from today.")},
        body=_body(requests.NewService),
        errors={409: ["conflict"], 422: ["category_not_allowed"]},
        description="A service within a budget category: its unit and its unit value (the most the budget pays "
        "for one unit). Names in Finnish and Swedish, optionally English.",
    ),
    ("GET", "/v1/services"): _route(
        "Catalog",
        "The service catalog, newest first",
        {200: _json(responses.ServicePage, "A page.")},
        parameters=[*PAGE, {"name": "category", "in": "query", "schema": {"type": "string"}}],
    ),
    ("GET", "/v1/services/{service_id}"): _route(
        "Catalog",
        "One service, with its unit values",
        {200: _json(responses.Service, "The service.")},
        parameters=["ServiceId"],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/services/{service_id}/unit-values"): _route(
        "Catalog",
        "Change a service's unit value from a day on",
        {201: _json(responses.Service, "The service with its new unit value.")},
        body=_body(requests.NewUnitValue),
        parameters=["ServiceId"],
        errors={404: ["not_found"], 409: ["conflict"]},
        description="Never on a past day (422), and only after every value already set (409): the values in "
        "force on past days never change, so neither does what a charge on such a day used.",
    ),
    ("POST", "/v1/providers/{provider_id}/offers"): _route(
        "Catalog",
        "Offer a service at a price",
        {201: _json(responses.Offer, "Created.")},
        body=_body(requests.NewOffer),
        parameters=["ProviderId"],
        errors={403: ["provider_not_approved"], 404: ["not_found"], 409: ["conflict"]},
        description="The provider itself, or the organizer for it. Only services in the categories the provider "
        "is approved for, and not while suspended (403 `provider_not_approved`); a pending provider may "
        "prepare offers, shown once it is approved. One active offer per service (409: change it instead).",
    ),
    ("GET", "/v1/providers/{provider_id}/offers"): _route(
        "Catalog",
        "A provider's offers, active and withdrawn, newest first",
        {200: _json(responses.OfferPage, "A page.")},
        parameters=["ProviderId", *PAGE],
        errors={404: ["not_found"]},
    ),
    ("PATCH", "/v1/providers/{provider_id}/offers/{offer_id}"): _route(
        "Catalog",
        "Change an offer",
        {200: _json(responses.Offer, "The offer as it is now.")},
        body=_body(requests.OfferChange),
        parameters=["ProviderId", "OfferId"],
        errors={403: ["provider_not_approved"], 404: ["not_found"], 409: ["conflict"]},
        description="A new price joins `unit_prices` (the old ones are kept); a list sent replaces the list.",
    ),
    ("POST", "/v1/providers/{provider_id}/offers/{offer_id}/withdraw"): _route(
        "Catalog",
        "Withdraw an offer",
        {200: _json(responses.Offer, "Withdrawn (or already so).")},
        parameters=["ProviderId", "OfferId"],
        errors={404: ["not_found"]},
    ),
    ("GET", "/v1/offers"): _route(
        "Catalog",
        "Compare the offers of approved providers",
        {200: _json(responses.ComparedOfferPage, "A page, the smallest own share per unit first.")},
        parameters=[
            *PAGE,
            {"name": "service", "in": "query", "description": "A service's code.", "schema": {"type": "string"}},
            {
                "name": "municipality",
                "in": "query",
                "description": "A municipality code (Statistics Finland).",
                "schema": {"type": "string"},
            },
            {"name": "language", "in": "query", "description": "ISO 639-1.", "schema": {"type": "string"}},
        ],
        description="Active offers of approved providers approved for the service's category, never of a "
        "pending or suspended one; sorted by own share per unit, then unit price, then age.",
    ),
    ("GET", "/v1/municipalities"): _route(
        "Catalog",
        "The municipalities an offer may name, by name",
        {200: _json(responses.MunicipalityList, "Every one, in one page.")},
        description="Statistics Finland's codes with their Finnish names (the pilot regions'); the pages show "
        "the names where an offer has the codes.",
    ),
    ("POST", "/v1/credit-runs"): _route(
        "Organizer",
        "Credit every active budget line for a month",
        {
            201: _json(responses.CreditRun, "Credited something new."),
            200: _json(responses.CreditRun, "The month was already credited."),
        },
        body=_body(requests.CreditRunRequest),
        idempotent=True,
        description="Idempotent per month; for the current month or, ahead of time, the next. "
        "The service also runs it by itself at the start of each month.",
    ),
    # Providers.
    ("POST", "/v1/charges"): _route(
        "Providers",
        "Charge a client's wallet",
        {
            201: _json(
                responses.Charge,
                "`captured` (national id checked) or `pending` (an SMS code was sent, or the "
                "client was asked to approve in the app).",
            )
        },
        body=_body(requests.NewCharge),
        idempotent=True,
        errors={
            402: ["insufficient_funds"],
            403: ["provider_not_approved"],
            404: ["not_found"],
            422: ["identity_check_failed", "category_not_allowed"],
            429: ["rate_limited"],
        },
        description="Identity first, funds second: a failed identity check says nothing of the balance. "
        "Either `amount` and `category`, or `items` (all of one category): each item is priced at the "
        "provider's active offer, the budget paying `min(unit_price, unit_value) x quantity` (rounded half up "
        "to the cent per item) and the client the rest (`own_share`) to the provider directly.",
    ),
    ("GET", "/v1/charges"): _route(
        "Providers",
        "The provider's own charges, newest first",
        {200: _json(responses.ChargePage, "A page.")},
        parameters=[
            *PAGE,
            {"name": "status", "in": "query", "schema": enum_schema(ChargeStatus)},
        ],
    ),
    ("GET", "/v1/charges/{charge_id}"): _route(
        "Providers",
        "One of the provider's charges",
        {200: _json(responses.Charge, "The charge.")},
        parameters=["ChargeId"],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/charges/{charge_id}/confirm"): _route(
        "Providers",
        "Confirm a pending charge with the client's SMS code",
        {200: _json(responses.Charge, "Captured.")},
        body=_body(requests.ChargeConfirmation),
        parameters=["ChargeId"],
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"], 422: ["identity_check_failed"]},
        description="A wrong code: 422 with `attempts_left`; after the last attempt or past expiry the charge "
        "is voided and its hold released.",
    ),
    ("POST", "/v1/charges/{charge_id}/void"): _route(
        "Providers",
        "Void a pending charge (release its hold)",
        {201: _json(responses.Charge, "Voided.")},
        parameters=["ChargeId"],
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"]},
        description="A body, if any, is ignored. A captured charge is refunded instead (409).",
    ),
    ("POST", "/v1/charges/{charge_id}/refunds"): _route(
        "Providers",
        "Refund (part of) a captured charge",
        {201: _json(responses.Refund, "Refunded.")},
        body=_body(requests.NewRefund),
        parameters=["ChargeId"],
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"], 422: ["refund_exceeds_capture"]},
    ),
    # Settlements.
    ("POST", "/v1/settlements"): _route(
        "Settlements",
        "Settle the provider's unsettled captures and refunds into one batch",
        {201: _json(responses.NewSettlementResult, "A batch with a new invoicing reference.")},
        body=_body(requests.NewSettlement, required=False),
        idempotent=True,
        errors={404: ["not_found"], 422: ["nothing_to_settle"]},
        description="The body may be empty: everything up to now.",
    ),
    ("GET", "/v1/settlements"): _route(
        "Settlements",
        "Settlement batches, newest first (a provider sees its own)",
        {200: _json(responses.SettlementPage, "A page.")},
        parameters=[
            *PAGE,
            {
                "name": "status",
                "in": "query",
                "schema": enum_schema(SettlementStatus),
            },
            {
                "name": "provider_id",
                "in": "query",
                "schema": {"type": "string"},
                "description": "Finance and the organizer: one provider's batches. Ignored for a provider.",
            },
        ],
    ),
    ("GET", "/v1/settlements/{settlement_id}"): _route(
        "Settlements",
        "A batch with its status history and a page of its lines",
        {200: _json(responses.SettlementDetail, "The batch.")},
        parameters=["SettlementId", *PAGE],
        errors={404: ["not_found"]},
        description="`limit` and `cursor` page the lines.",
    ),
    ("POST", "/v1/settlements/{settlement_id}/paid"): _route(
        "Settlements",
        "Mark a batch paid",
        {200: _json(responses.Settlement, "Paid.")},
        body=_body(requests.SettlementPayment, required=False),
        parameters=["SettlementId"],
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"]},
    ),
    # Finance.
    ("GET", "/v1/exports/transactions"): _route(
        "Finance",
        "Every ledger transaction as a file",
        {
            200: {
                "description": "Streamed; one transfer a row, its totals reconcile with the ledger.",
                "content": {"text/csv": CSV_FILE, "application/x-ndjson": CSV_FILE},
            }
        },
        parameters=EXPORT,
    ),
    ("GET", "/v1/exports/settlements"): _route(
        "Finance",
        "Every settlement batch as a file",
        {200: {"description": "Streamed.", "content": {"text/csv": CSV_FILE, "application/x-ndjson": CSV_FILE}}},
        parameters=EXPORT,
    ),
    ("GET", "/v1/exports/items"): _route(
        "Finance",
        "Every item of the itemized charges captured in the period as a file",
        {
            200: {
                "description": "Streamed; one item a row, under its capture: the amounts sum to the itemized"
                " charges' captures in the transactions export of the same period.",
                "content": {"text/csv": CSV_FILE, "application/x-ndjson": CSV_FILE},
            }
        },
        parameters=EXPORT,
    ),
    ("POST", "/v1/reconciliations"): _route(
        "Finance",
        "Reconcile received invoices against the settlement batches",
        {201: _json(responses.Reconciliation, "Each invoice judged.")},
        body={
            "required": True,
            "content": {
                "application/xml": {"schema": {"type": "string", "description": FINVOICE_BODY}},
                "text/xml": {"schema": {"type": "string", "description": FINVOICE_BODY}},
                "text/csv": {
                    "schema": {"type": "string", "description": "reference;amount;business_id;invoice_number"}
                },
            },
        },
        idempotent=True,
        errors={400: ["unsafe_document"], 422: ["unreadable_document"]},
        description="A document with a DTD is refused (400 `unsafe_document`).",
    ),
    ("POST", "/v1/payment-batches"): _route(
        "Finance",
        "Pay settlements: a batch of credit transfers (pain.001.001.09) from the payer's account",
        {201: _json(responses.PaymentBatch, "The batch; its file at /v1/payment-batches/{id}/file.")},
        body=_body(requests.NewPaymentBatch, required=False),
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"]},
        description=(
            "One transfer per settlement, to the provider's IBAN, with the settlement's reference. A settlement"
            " is in one batch at most that is not cancelled; only positive open or invoiced ones are paid. 409"
            " without WALLET_PAYER_NAME, WALLET_PAYER_IBAN and WALLET_PAYER_BIC, or with nothing to pay."
        ),
    ),
    ("GET", "/v1/payment-batches/{batch_id}"): _route(
        "Finance",
        "A payment batch",
        {200: _json(responses.PaymentBatch, "The batch.")},
        parameters=["PaymentBatchId"],
        errors={404: ["not_found"]},
    ),
    ("GET", "/v1/payment-batches/{batch_id}/file"): _route(
        "Finance",
        "The batch's ISO 20022 pain.001.001.09 credit-transfer file",
        {200: {"description": "The file.", "content": {"application/xml": {"schema": {"type": "string"}}}}},
        parameters=["PaymentBatchId"],
        errors={404: ["not_found"]},
    ),
    ("POST", "/v1/payment-batches/{batch_id}/cancel"): _route(
        "Finance",
        "Cancel a payment batch before it is paid: its settlements are free for another",
        {200: _json(responses.PaymentBatch, "The cancelled batch.")},
        parameters=["PaymentBatchId"],
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"]},
    ),
    ("POST", "/v1/bank-statements"): _route(
        "Finance",
        "Apply a bank's camt.054 notification or camt.053 statement to the settlement batches",
        {201: _json(responses.BankStatement, "Each entry judged; paying debits made their batches paid.")},
        body={
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "description": "ISO 20022 camt.054 or camt.053."}}
                for media in ("application/xml", "text/xml")
            },
        },
        idempotent=True,
        errors={400: ["unsafe_document"], 409: ["conflict"], 422: ["unreadable_document"]},
        description=(
            "Each debit entry pays the batch its end-to-end id or creditor reference names, when the amount"
            " is the batch's; a credit entry naming a paid batch (money the bank returned) re-opens it. A"
            " statement or notification whose id was received before, or one about another account than"
            " WALLET_PAYER_IBAN (when set), is refused (409 `conflict`), nothing changed. A document with a"
            " DTD is refused (400 `unsafe_document`)."
        ),
    ),
    ("GET", "/v1/reports/usage"): _route(
        "Organizer",
        "The organizer's view of use: per client and line, per provider",
        {200: _json(responses.UsageReport, "The month's figures, read from the ledger in one snapshot.")},
        parameters=[
            {"name": "month", "in": "query", "schema": MONTH, "description": "Default: the current month (so far)."},
            {
                "name": "low_use",
                "in": "query",
                "schema": {"type": "string", "enum": ["true", "false"]},
                "description": "`true`: only the clients flagged `low_use` (the surplus early warning).",
            },
            *PAGE,
        ],
        description="Per client and category: monthly amount, credited, used (captures less refunds booked in the "
        "month), held and left at the close; per provider: captured, refunded, charged. From "
        "`WALLET_USAGE_LOW_USE_FROM_DAY` on (or for a past month) a client who used less than "
        "`WALLET_USAGE_LOW_USE_PERCENT` % of the month's amount is `low_use`. `limit` and `cursor` page the "
        "clients, newest first; `totals` and `providers` cover them all. A month not yet begun is 422.",
    ),
    # Clients.
    ("GET", "/v1/me/wallet"): _route(
        "Clients",
        "The client's own wallet",
        {200: _json(responses.Wallet, "Balances per category line.")},
    ),
    ("GET", "/v1/me/transactions"): _route(
        "Clients",
        "The client's own transactions, newest first",
        {200: _json(responses.WalletTransactionPage, "A page.")},
        parameters=PAGE,
    ),
    ("GET", "/v1/me/events"): _route(
        "Clients",
        "The client's wallet changes as Server-Sent Events",
        {
            200: {
                "description": "A `wallet` event first (without Last-Event-ID), then one event per change: "
                "`credit`, `expiry`, `hold`, `capture`, `void`, `refund`.",
                "content": {"text/event-stream": {"schema": schema_ref("WalletEvent")}},
            }
        },
        parameters=[
            {
                "name": "Last-Event-ID",
                "in": "header",
                "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                "description": "Resume after this event.",
            },
            {
                "name": "last_event_id",
                "in": "query",
                "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                "description": "The same, where a header cannot be set (EventSource).",
            },
        ],
        errors={429: ["rate_limited"]},
    ),
    ("GET", "/v1/me/charges"): _route(
        "Clients",
        "The client's own charges, newest first",
        {200: _json(responses.ClientChargePage, "A page.")},
        parameters=[
            *PAGE,
            {
                "name": "status",
                "in": "query",
                "schema": enum_schema(ChargeStatus),
                "description": "`pending`: the requests that wait for an answer.",
            },
        ],
    ),
    ("POST", "/v1/me/charges/{charge_id}/approve"): _route(
        "Clients",
        "Approve a charge that waits in the app",
        {200: _json(responses.ClientCharge, "Captured.")},
        parameters=["ChargeId"],
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"]},
        description="Only a pending charge made with identity method `app`, of the caller's own wallet. Past its "
        "`expires_at` the charge is voided instead (409).",
    ),
    ("POST", "/v1/me/charges/{charge_id}/decline"): _route(
        "Clients",
        "Decline a charge that waits in the app",
        {200: _json(responses.ClientCharge, "Voided; the hold released.")},
        parameters=["ChargeId"],
        idempotent=True,
        errors={404: ["not_found"], 409: ["conflict"]},
    ),
    ("GET", "/v1/me/mandates"): _route(
        "Clients",
        "The clients a representative may act for now",
        {200: _json(responses.MandateList, "Active mandates.")},
    ),
    ("GET", "/v1/me/statements/{month}"): _route(
        "Clients",
        "The client's monthly statement (saldotiliote)",
        {200: _json(responses.Statement, "The month's figures; they add up.")},
        parameters=[
            {
                "name": "month",
                "in": "path",
                "required": True,
                "schema": MONTH,
                "description": "YYYY-MM; the current month gives the figures so far.",
            }
        ],
        errors={422: ["validation_error"]},
        description="Month boundaries are midnights in the organizer's time zone. A month not yet begun is 422.",
    ),
    # The organizer's desk (wallet/api/handlers/desk.py).
    ("GET", "/v1/clients"): _route(
        "Organizer",
        "Find clients by name, phone or national id, newest first",
        {200: _json(responses.ClientPage, "A page.")},
        parameters=[*PAGE, "DeskQuery"],
        errors={422: ["validation_error"]},
        description="A national identity number or a phone number is matched exactly, by its keyed hash (never "
        "compared or logged in clear); anything else is a part of the name. No query: every client. Admin and finance.",
    ),
    ("GET", "/v1/providers"): _route(
        "Organizer",
        "Find providers by name or business id, newest first",
        {200: _json(responses.ProviderPage, "A page.")},
        parameters=[
            *PAGE,
            "DeskQuery",
            {
                "name": "status",
                "in": "query",
                "schema": enum_schema(ProviderStatus),
                "description": "Only providers in this status.",
            },
        ],
        errors={422: ["validation_error"]},
        description="A business id (Y-tunnus) is matched exactly; anything else is a part of the name. Admin and "
        "finance.",
    ),
}


# Decisions on budgets (wallet/api/handlers/documents.py).
PDF_FILE = {"schema": {"type": "string", "format": "binary"}}
DECISION_ID = {"name": "decision_id", "in": "path", "required": True, "schema": {"type": "string"}}
ROUTES.update(
    {
        ("POST", "/v1/clients/{client_id}/budgets/{budget_id}/decisions"): _route(
            "Organizer",
            "Change a budget from a month on: a new decision",
            {201: _json(responses.Budget, "The budget with its lines from that month on, and the decision.")},
            body=_body(requests.BudgetChange),
            parameters=["ClientId", "BudgetId"],
            errors={404: ["not_found"], 409: ["conflict"], 422: ["category_not_allowed"]},
            description="The new lines (by hand or from a plan) replace the budget's lines from `from_month` on. "
            "A month already credited or staged, or one that has passed, cannot change (409); earlier decisions "
            "and their documents stay as issued.",
        ),
        ("GET", "/v1/clients/{client_id}/budgets/{budget_id}/decision"): _route(
            "Organizer",
            "A budget's latest decision, as issued",
            {
                200: {
                    "description": "The PDF stored when the decision was made.",
                    "content": {"application/pdf": PDF_FILE},
                }
            },
            parameters=["ClientId", "BudgetId"],
            errors={404: ["not_found"]},
        ),
        ("GET", "/v1/me/decisions"): _route(
            "Clients",
            "The decisions on the client's budgets, newest first",
            {200: _json(responses.DecisionPage, "Every decision (one page).")},
        ),
        ("GET", "/v1/me/decisions/{decision_id}"): _route(
            "Clients",
            "One decision's document, as issued",
            {
                200: {
                    "description": "The PDF stored when the decision was made.",
                    "content": {"application/pdf": PDF_FILE},
                }
            },
            parameters=[DECISION_ID],
            errors={404: ["not_found"]},
        ),
    }
)
# The statement as a document too (wallet/api/handlers/documents.py).
_STATEMENT = ROUTES[("GET", "/v1/me/statements/{month}")]
_STATEMENT["responses"][200]["content"]["application/pdf"] = PDF_FILE
_STATEMENT["parameters"].append(
    {
        "name": "language",
        "in": "query",
        "description": "With `Accept: application/pdf`: the document's language, `fi` (default) or `sv`.",
        "schema": {"type": "string", "enum": ["fi", "sv"], "default": "fi"},
    }
)
_STATEMENT["description"] = (
    (_STATEMENT["description"] or "") + " With `Accept: application/pdf` the same statement as a PDF, each charge "
    "and refund listed with its provider and services."
).strip()

for (_method, _path_), _entry in ROUTES.items():
    if _path_.startswith("/v1/me/") and _path_ != "/v1/me/mandates":
        _entry["parameters"].append("ActingFor")
