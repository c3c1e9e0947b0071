"""Request bodies, each declared once as a msgspec ``Struct``, in a module per role as
``wallet.service`` is split: decoded with strict types (``decoding``), then checked field by field in
``__post_init__`` with the validators of ``wallet.validation``. Every refusal is a
``ValidationError`` naming its field as the caller wrote it. The service takes these structs as its
commands; callers name them from here (``requests.NewCharge``).

- ``decoding``: ``decode``, a body as its shape;
- ``tokens``: client credentials, the SMS-code login;
- ``organizer``: categories, clients, representatives, budgets and their changes, providers, the
  catalog's services, credit runs;
- ``providers``: offers, charges, confirmations, refunds, settling;
- ``finance``: settlements paid, payment batches, the exports' query string.
"""

from __future__ import annotations

from msgspec import Struct

from wallet.shapes.requests.decoding import Shape, decode
from wallet.shapes.requests.finance import ExportQuery, NewPaymentBatch, SettlementPayment, export_query
from wallet.shapes.requests.organizer import (
    BudgetChange,
    BudgetEnd,
    BudgetLine,
    CreditRunRequest,
    DecisionLanguage,
    NewBudget,
    NewCategory,
    NewClient,
    NewProvider,
    NewRepresentation,
    NewService,
    NewUnitValue,
    PlanItem,
    ServiceName,
)
from wallet.shapes.requests.providers import (
    AppIdentity,
    ChargeConfirmation,
    ChargeItem,
    Identity,
    NationalIdIdentity,
    NewCharge,
    NewOffer,
    NewRefund,
    NewSettlement,
    OfferChange,
    OtpIdentity,
)
from wallet.shapes.requests.tokens import LoginRequest, LoginVerification, TokenRequest, client_credentials

__all__ = [
    "REQUESTS",
    "AppIdentity",
    "BudgetChange",
    "BudgetEnd",
    "BudgetLine",
    "ChargeConfirmation",
    "ChargeItem",
    "CreditRunRequest",
    "DecisionLanguage",
    "ExportQuery",
    "Identity",
    "LoginRequest",
    "LoginVerification",
    "NationalIdIdentity",
    "NewBudget",
    "NewCategory",
    "NewCharge",
    "NewClient",
    "NewOffer",
    "NewPaymentBatch",
    "NewProvider",
    "NewRefund",
    "NewRepresentation",
    "NewService",
    "NewSettlement",
    "NewUnitValue",
    "OfferChange",
    "OtpIdentity",
    "PlanItem",
    "ServiceName",
    "SettlementPayment",
    "Shape",
    "TokenRequest",
    "client_credentials",
    "decode",
    "export_query",
]

REQUESTS: tuple[type[Struct], ...] = (
    TokenRequest,
    LoginRequest,
    LoginVerification,
    NewCategory,
    NewClient,
    NewRepresentation,
    NewBudget,
    BudgetEnd,
    BudgetChange,
    NewProvider,
    CreditRunRequest,
    NewCharge,
    ChargeConfirmation,
    NewRefund,
    NewSettlement,
    SettlementPayment,
    NewPaymentBatch,
    NewService,
    NewUnitValue,
    NewOffer,
    OfferChange,
)
