"""The use cases: what organizers, providers, clients and finance can do. Handlers call these.

The service owns everything around a write that is not the write itself: hashing identities,
making and sending codes (only after the commit), minting tokens, and the background jobs.
Each role's rules are in a module of their own; ``WalletService`` is all of them on one object,
the one the handlers, the CLI and the background jobs use:

- ``core``: the state they share, token minting, the storage's guessing limits;
- ``organizer``: categories, clients, representatives, budgets, providers, credit runs;
- ``decisions``: budgets granted and changed as decisions, from lines or a plan, and their documents;
- ``providers``: provider tokens, charges and their identity checks, refunds, settling;
- ``clients``: login, the wallet, answering charges, mandates, statements, live events;
- ``finance``: the usage report, scheduled and paid settlements, exports, reconciliation;
- ``sweeps``: voiding expired holds, purging old idempotency keys;
- ``receipts``: sending the SMS receipts of captures, refunds and voids;
- ``desk``: the organizer's search of clients and providers.
"""

from __future__ import annotations

from wallet.service.clients import ClientService
from wallet.service.core import NATIONAL_ID, PHONE, IssuedToken, ServiceCore, storage_limits
from wallet.service.decisions import DecisionService
from wallet.service.desk import DeskService
from wallet.service.finance import FinanceService
from wallet.service.organizer import CREDIT_RUN_BATCH_BUDGETS, OrganizerService
from wallet.service.providers import ProviderService
from wallet.service.receipts import Receipts
from wallet.service.sweeps import IDEMPOTENCY_PURGE_INTERVAL_SECONDS, Sweeps

__all__ = [
    "CREDIT_RUN_BATCH_BUDGETS",
    "IDEMPOTENCY_PURGE_INTERVAL_SECONDS",
    "NATIONAL_ID",
    "PHONE",
    "IssuedToken",
    "ServiceCore",
    "WalletService",
    "storage_limits",
]


class WalletService(
    DecisionService, OrganizerService, ProviderService, ClientService, FinanceService, Sweeps, Receipts, DeskService
):
    """Every role's use cases over one shared ``ServiceCore``; no method is defined twice."""
