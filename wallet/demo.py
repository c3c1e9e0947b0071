"""``wallet demo``: seed a small world and print how to use it. How a newcomer meets the service."""

from __future__ import annotations

from wallet.auth.tokens import Role
from wallet.bootstrap import open_service
from wallet.ledger.errors import Conflict
from wallet.ledger.parties import ProviderStatus
from wallet.settings import Settings
from wallet.shapes import requests

DEMO_PHONE = "+358401234567"
DEMO_NATIONAL_ID = "131052-308T"  # the Digital and Population Data Services Agency's test example


async def seed(settings: Settings) -> str:
    async with open_service(settings) as service:
        for code, name in (("home_care", "Kotihoito"), ("transport", "Kuljetus")):
            try:
                await service.create_category(requests.NewCategory(code, name))
            except Conflict:
                pass
        try:
            client = await service.create_client(requests.NewClient("Demo Asiakas", DEMO_PHONE, DEMO_NATIONAL_ID))
        except Conflict:
            return "The demo is already seeded in this database; use a fresh WALLET_DB to seed again."
        month = service.current_month()
        await service.create_budget(
            client["id"],
            requests.decode(
                requests.NewBudget,
                {
                    "start_month": month,
                    "end_month": f"{int(month[:4]) + 1}{month[4:]}",
                    "unused": "expire",
                    "lines": [
                        {"category": "home_care", "monthly_amount": 50000},
                        {"category": "transport", "monthly_amount": 12000},
                    ],
                },
            ),
        )
        provider = await service.create_provider(
            requests.NewProvider("Demo Kotihoito Oy", "2077474-0", "FI2112345600000785", ("home_care",))
        )
        await service.set_provider_status(provider["id"], ProviderStatus.APPROVED)
        credentials = await service.issue_credentials(provider["id"])
        run = (await service.credit_run(month)).value
        admin = service.mint(Role.ADMIN).access_token
        finance = service.mint(Role.FINANCE).access_token
        provider_token = service.mint(Role.PROVIDER, provider_id=provider["id"]).access_token
        client_token = service.mint(Role.CLIENT, client_id=client["id"]).access_token
    base = f"http://{settings.host}:{settings.port}"
    return f"""Seeded: client {client["id"]} ({DEMO_PHONE}), provider {provider["id"]} (approved for home_care),
credited {run["credited"]} lines for {month}: {run["amount"]} cents.

Start the service (`wallet serve`, or `make run`), then open the three pages in a browser:

  {base}/provider   Point of service. Sign in with the provider's client credentials (shown once):
                      client id:     {credentials["client_id"]}
                      client secret: {credentials["client_secret"]}
                    Charge phone {DEMO_PHONE} (type it as "040 123 4567"), e.g. 12,50 € of home care;
                    the client's ID card says {DEMO_NATIONAL_ID}. SMS codes are written to {settings.sms_outbox}.

  {base}/           The client's page (try a phone-sized window). Log in with {DEMO_PHONE};
                    the code arrives in {settings.sms_outbox} (the last line, a 6-digit number).

  {base}/admin      Organizer and finance. Staff sign in through the organizer's identity provider
                    (README, "Sign-in"); for development, start the service with
                    WALLET_ADMIN_TOKEN_FORM=true and paste these tokens (valid {settings.token_ttl_seconds // 60} min;
                    mint new ones with `wallet token --role admin` and `wallet token --role finance`):
                      admin:   {admin}
                      finance: {finance}
                    Open the demo client by its id, {client["id"]}, to see and end its budget.
                    Finance reconciles invoices: the provider page downloads a Finvoice 3.0
                    invoice for each settlement; upload it under "Laskujen täsmäytys".

The same, by HTTP:

export ADMIN_TOKEN={admin}
export FINANCE_TOKEN={finance}
export PROVIDER_TOKEN={provider_token}
export CLIENT_TOKEN={client_token}

# A charge of 12,50 € checked against the client's national id:
curl -s -X POST {base}/v1/charges -H "Authorization: Bearer $PROVIDER_TOKEN" \\
  -H 'Content-Type: application/json' -H "Idempotency-Key: $(uuidgen || date +%s%N)" \\
  -d '{{"phone": "040 123 4567", "amount": 1250, "category": "home_care",
       "identity": {{"method": "national_id", "national_id": "{DEMO_NATIONAL_ID}"}}}}'

# The client's wallet:
curl -s {base}/v1/me/wallet -H "Authorization: Bearer $CLIENT_TOKEN"
"""
