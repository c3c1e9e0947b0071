"""The objects the API answers with, declared as msgspec ``Struct``s for the OpenAPI document, in a
module per role as ``wallet.service`` is split: the service renders plain dicts, these say what those
dicts hold (``tests/test_openapi.py`` checks real responses against the generated schemas, every
object closed). Names are the schemas' names; ``RESPONSES`` are those the routes answer with
(``wallet/api/routes.py``), the structs they hold follow.

- ``operations``: liveness, readiness;
- ``tokens``: a token, a login begun;
- ``organizer``: categories, the catalog's services, municipalities, clients, representatives,
  budgets and their decisions, providers, credit runs, the desk's search;
- ``providers``: offers, charges, refunds;
- ``clients``: the wallet, its transactions, the client's charges, mandates, statements, the
  comparison of offers;
- ``finance``: settlements, reconciliations, bank statements, payment batches, the usage report.
"""

from __future__ import annotations

from msgspec import Struct

from wallet.shapes.responses.clients import (
    ClientCharge,
    ClientChargePage,
    ComparedOfferPage,
    Mandate,
    MandateList,
    Statement,
    Wallet,
    WalletTransactionPage,
)
from wallet.shapes.responses.finance import (
    BankStatement,
    NewSettlementResult,
    PaymentBatch,
    Reconciliation,
    Settlement,
    SettlementDetail,
    SettlementPage,
    UsageReport,
)
from wallet.shapes.responses.operations import Health, Readiness
from wallet.shapes.responses.organizer import (
    Budget,
    BudgetPage,
    Category,
    CategoryList,
    Client,
    ClientDetail,
    ClientPage,
    CreditRun,
    DecisionPage,
    MunicipalityList,
    Provider,
    ProviderCredentials,
    ProviderDetail,
    ProviderPage,
    Representation,
    RepresentationPage,
    Service,
    ServicePage,
)
from wallet.shapes.responses.providers import Charge, ChargePage, Offer, OfferPage, Refund
from wallet.shapes.responses.tokens import LoginStarted, Token

__all__ = [
    "RESPONSES",
    "BankStatement",
    "Budget",
    "BudgetPage",
    "Category",
    "CategoryList",
    "Charge",
    "ChargePage",
    "Client",
    "ClientCharge",
    "ClientChargePage",
    "ClientDetail",
    "ClientPage",
    "ComparedOfferPage",
    "CreditRun",
    "DecisionPage",
    "Health",
    "LoginStarted",
    "Mandate",
    "MandateList",
    "MunicipalityList",
    "NewSettlementResult",
    "Offer",
    "OfferPage",
    "PaymentBatch",
    "Provider",
    "ProviderCredentials",
    "ProviderDetail",
    "ProviderPage",
    "Readiness",
    "Reconciliation",
    "Refund",
    "Representation",
    "RepresentationPage",
    "Service",
    "ServicePage",
    "Settlement",
    "SettlementDetail",
    "SettlementPage",
    "Statement",
    "Token",
    "UsageReport",
    "Wallet",
    "WalletTransactionPage",
]

RESPONSES: tuple[type[Struct], ...] = (
    Health,
    Readiness,
    Token,
    LoginStarted,
    Category,
    CategoryList,
    Client,
    ClientDetail,
    Representation,
    RepresentationPage,
    Mandate,
    MandateList,
    Budget,
    BudgetPage,
    Provider,
    ProviderDetail,
    ProviderCredentials,
    Service,
    ServicePage,
    Offer,
    OfferPage,
    ComparedOfferPage,
    MunicipalityList,
    CreditRun,
    Charge,
    ChargePage,
    ClientCharge,
    ClientChargePage,
    Refund,
    Settlement,
    NewSettlementResult,
    SettlementDetail,
    SettlementPage,
    Reconciliation,
    BankStatement,
    PaymentBatch,
    UsageReport,
    Wallet,
    WalletTransactionPage,
    Statement,
    ClientPage,
    ProviderPage,
    DecisionPage,
)
