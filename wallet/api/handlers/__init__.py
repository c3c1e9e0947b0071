"""The HTTP handlers, one module per role as ``wallet.service`` is split. Each decodes the request into
its shape (``wallet.shapes.requests``), calls the service and renders; what they share in reading
bodies, idempotency keys and pages and in writing answers is ``wallet.api.http``, and
``wallet.api.app.routes`` maps each route to its handler.

- ``operations``: liveness, readiness, metrics, the OpenAPI document;
- ``tokens``: a provider's client credentials, a client's or representative's SMS-code login;
- ``organizer``: categories, clients, representatives, budgets, providers, the catalog, credit runs;
- ``documents``: decisions on budgets and their documents, the statement as a PDF;
- ``desk``: the organizer's search of clients and providers;
- ``providers``: offers, charges, refunds, settling;
- ``clients``: the wallet, its history and live events, statements, approving charges, mandates,
  the comparison of offers;
- ``finance``: settlements read and paid, exports, the usage report, reconciliation, payment
  batches, bank statements.
"""
