"""Locust: a realistic mix against a local wallet, ending with a ledger check.

One command starts a fresh service in a temporary directory, runs this file headless and checks:

    python -m loadtests.locust_run                       # 60 s, 40 users; --help for options

Or against a service you started yourself, from the same directory and with the same ``WALLET_*``
environment (this file mints its admin and finance tokens with ``wallet token`` and reads login
and charge codes from ``WALLET_SMS_OUTBOX``):

    locust -f loadtests/locustfile.py --headless -u 40 -r 20 -t 60s --host http://127.0.0.1:8080

The mix:
- providers (weight 3) charge by national id, and by SMS code (hold, read the code from the
  outbox, confirm); now and then list their charges or fetch an invoicing reference;
- clients (weight 2), logged in by SMS code, read their wallet and their history;
- finance (weight 1, at most one user) exports today's transactions now and then.
A 402 ``insufficient_funds`` is an expected answer, not a failure.

At the start the file seeds, through the API as the organizer: a category, ``LOCUST_CLIENTS``
(default 200) clients with national ids and budgets from the current month, ``LOCUST_PROVIDERS``
(default 5) approved providers with client credentials, and the credit run. At the end it replays
every money-moving request still unanswered (same Idempotency-Key: the service answers what it
did), then compares each wallet's balance and held amount with what the answers say, so nothing
was lost or created; then, when ``WALLET_DB`` is a local file, it runs ``wallet check``. Any
difference sets a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import gevent.lock
import requests
from locust import HttpUser, between, events, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `locust -f` puts only loadtests/ on the path
from loadtests.bench import national_id

CATEGORY = "home_care"
MONTHLY_AMOUNT_CENTS = 1_000_000  # 10 000 € a month: a few 402s at most in a long run
CHARGE_AMOUNT_MIN_CENTS = 500
CHARGE_AMOUNT_MAX_CENTS = 5_000
CLIENTS = int(os.environ.get("LOCUST_CLIENTS", "200"))
PROVIDERS = int(os.environ.get("LOCUST_PROVIDERS", "5"))
REQUEST_TIMEOUT_SECONDS = 30
# A client holds its event stream this long (past one heartbeat, WALLET_EVENTS_HEARTBEAT_SECONDS = 15).
EVENT_STREAM_SECONDS = 20
CODE = re.compile(r"\b(\d{6})\b")
TIME_ZONE = ZoneInfo(os.environ.get("WALLET_TIMEZONE") or "Europe/Helsinki")


def wallet_token(*arguments: str) -> str:
    """A token from ``wallet token`` (its last line), with this process's ``WALLET_*`` environment."""
    finished = subprocess.run(
        [sys.executable, "-m", "wallet", "token", *arguments], capture_output=True, text=True, check=True
    )
    return finished.stdout.strip().splitlines()[-1]


class Outbox:
    """Reads the SMS outbox as it grows: the latest code sent to each number."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._offset = self._path.stat().st_size if self._path.exists() else 0
        self._latest: dict[str, str] = {}
        self._lock = gevent.lock.Semaphore()

    def latest_code(self, phone: str) -> str | None:
        with self._lock:
            if self._path.exists():
                with self._path.open("rb") as outbox:
                    outbox.seek(self._offset)
                    chunk = outbox.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]
                self._offset += len(complete)
                for line in complete.decode().splitlines():
                    message = json.loads(line)
                    match = CODE.search(message["text"])
                    if match:
                        self._latest[message["to"]] = match.group(1)
            return self._latest.get(phone)


@dataclass
class Wallet:
    """One seeded client, and what the service's answers say happened to its wallet."""

    client_id: str
    phone: str
    national_id: str
    token: str = ""
    captured_cents: int = 0
    pending: dict[str, int] = field(default_factory=dict)  # charge id → amount held
    lock: gevent.lock.Semaphore = field(default_factory=gevent.lock.Semaphore)  # one code at a time


@dataclass
class InFlight:
    """A money-moving request sent and not yet answered: replayed at the end with its key."""

    token: str
    path: str
    body: dict[str, Any]
    wallet: Wallet


@dataclass
class World:
    base_url: str = ""
    wallets: list[Wallet] = field(default_factory=list)
    provider_tokens: list[str] = field(default_factory=list)
    finance_token: str = ""
    outbox: Outbox | None = None
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    captures: int = 0
    seeded: bool = False


WORLD = World()


# Seeding, through the API as the organizer.


def _post(session: requests.Session, url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = session.post(
        url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT_SECONDS
    )
    if response.status_code >= 300:
        raise RuntimeError(f"seeding: POST {url} answered {response.status_code}: {response.text}")
    return dict(response.json())


def seed(base_url: str) -> None:
    WORLD.base_url = base_url.rstrip("/")
    WORLD.outbox = Outbox(os.environ.get("WALLET_SMS_OUTBOX") or "data/sms-outbox.jsonl")
    admin = wallet_token("--role", "admin")
    WORLD.finance_token = wallet_token("--role", "finance")
    session = requests.Session()
    url = WORLD.base_url
    response = session.post(
        f"{url}/v1/categories",
        json={"code": CATEGORY, "name": "Kotihoito"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=REQUEST_TIMEOUT_SECONDS,
    )
    if response.status_code not in (201, 409):
        raise RuntimeError(f"seeding: the category answered {response.status_code}: {response.text}")
    now = datetime.now(UTC).astimezone(TIME_ZONE)
    month = f"{now.year:04d}-{now.month:02d}"
    end_month = f"{now.year + 1:04d}-{now.month:02d}"
    first = random.randrange(2_000_000, 9_000_000 - CLIENTS)  # fresh numbers even on a used database
    for index in range(CLIENTS):
        phone, identity = f"+35840{first + index:07d}", national_id(first + index)
        client = _post(
            session, f"{url}/v1/clients", admin, {"name": f"Kuormitus {index}", "phone": phone, "national_id": identity}
        )
        _post(
            session,
            f"{url}/v1/clients/{client['id']}/budgets",
            admin,
            {
                "start_month": month,
                "end_month": end_month,
                "unused": "expire",
                "lines": [{"category": CATEGORY, "monthly_amount": MONTHLY_AMOUNT_CENTS}],
            },
        )
        WORLD.wallets.append(Wallet(client["id"], phone, identity))
    for index in range(PROVIDERS):
        provider = _post(
            session,
            f"{url}/v1/providers",
            admin,
            {
                "name": f"Kuormitus Hoiva {index} Oy",
                "business_id": "2077474-0",
                "iban": "FI2112345600000785",
                "categories": [CATEGORY],
            },
        )
        _post(session, f"{url}/v1/providers/{provider['id']}/approve", admin)
        credentials = _post(session, f"{url}/v1/providers/{provider['id']}/credentials", admin)
        issued = session.post(
            f"{url}/v1/token",
            timeout=REQUEST_TIMEOUT_SECONDS,
            data={
                "grant_type": "client_credentials",
                "client_id": credentials["client_id"],
                "client_secret": credentials["client_secret"],
            },
        )
        issued.raise_for_status()
        WORLD.provider_tokens.append(issued.json()["access_token"])
    _post(session, f"{url}/v1/credit-runs", admin, {"month": month})
    for wallet in WORLD.wallets:  # every client logs in by SMS code, as on a phone
        session.post(
            f"{url}/v1/login", json={"phone": wallet.phone}, timeout=REQUEST_TIMEOUT_SECONDS
        ).raise_for_status()
        code = WORLD.outbox.latest_code(wallet.phone)
        verified = session.post(
            f"{url}/v1/login/verify", json={"phone": wallet.phone, "code": code}, timeout=REQUEST_TIMEOUT_SECONDS
        )
        verified.raise_for_status()
        wallet.token = verified.json()["access_token"]
    WORLD.seeded = True


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    if environment.host is None:
        raise RuntimeError("give the service's address: --host http://127.0.0.1:8080")
    seed(environment.host)
    print(f"seeded {len(WORLD.wallets)} funded clients and {len(WORLD.provider_tokens)} providers", flush=True)


# Accounting: what each answer says happened.


def account(wallet: Wallet, path: str, body: dict[str, Any], status: int, answer: dict[str, Any]) -> None:
    if path == "/v1/charges" and status == 201:
        if answer["status"] == "captured":
            wallet.captured_cents += body["amount"]
            WORLD.captures += 1
        elif answer["status"] == "pending":
            wallet.pending[answer["id"]] = body["amount"]
    elif path.endswith("/confirm"):
        charge_id = path.split("/")[3]
        if status == 200 and answer.get("status") == "captured" and charge_id in wallet.pending:
            wallet.captured_cents += wallet.pending.pop(charge_id)
            WORLD.captures += 1
        elif answer.get("charge_status") == "voided":
            wallet.pending.pop(charge_id, None)
    elif path.endswith("/void") and status == 201 and answer.get("status") == "voided":
        wallet.pending.pop(path.split("/")[3], None)


def _answer(response: Any) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# The users.


class Provider(HttpUser):
    weight = 3
    wait_time = between(0.1, 1.0)

    def on_start(self) -> None:
        self.token = random.choice(WORLD.provider_tokens)
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def _money(self, path: str, body: dict[str, Any], wallet: Wallet, name: str) -> tuple[int, dict[str, Any]]:
        key = secrets.token_hex(12)
        WORLD.in_flight[key] = InFlight(self.token, path, body, wallet)
        with self.client.post(
            path, json=body, headers={**self.auth, "Idempotency-Key": key}, name=name, catch_response=True
        ) as response:
            answer = _answer(response)
            if response.status_code in (200, 201) or answer.get("code") == "insufficient_funds":
                response.success()
            else:
                response.failure(f"{response.status_code} {answer.get('code')}")
            if response.status_code:  # 0: no answer (connection failed): replayed at the end
                account(wallet, path, body, response.status_code, answer)
                del WORLD.in_flight[key]
            return response.status_code, answer

    @task(6)
    def charge_by_national_id(self) -> None:
        wallet = random.choice(WORLD.wallets)
        self._money(
            "/v1/charges",
            {
                "phone": wallet.phone,
                "amount": random.randint(CHARGE_AMOUNT_MIN_CENTS, CHARGE_AMOUNT_MAX_CENTS),
                "category": CATEGORY,
                "identity": {"method": "national_id", "national_id": wallet.national_id},
            },
            wallet,
            "POST /v1/charges (national id)",
        )

    @task(2)
    def charge_by_sms_code(self) -> None:
        wallet = random.choice(WORLD.wallets)
        assert WORLD.outbox is not None
        with wallet.lock:  # one code on the way to this phone at a time: the latest is ours
            status, answer = self._money(
                "/v1/charges",
                {
                    "phone": wallet.phone,
                    "amount": random.randint(CHARGE_AMOUNT_MIN_CENTS, CHARGE_AMOUNT_MAX_CENTS),
                    "category": CATEGORY,
                    "identity": {"method": "otp"},
                },
                wallet,
                "POST /v1/charges (sms code)",
            )
            if status != 201 or answer.get("status") != "pending":
                return
            code = WORLD.outbox.latest_code(wallet.phone)  # sent before the 201
            status, _ = self._money(
                f"/v1/charges/{answer['id']}/confirm", {"code": code}, wallet, "POST /v1/charges/{id}/confirm"
            )
            if status != 200 and answer["id"] in wallet.pending:  # release the hold rather than leave it
                self._money(f"/v1/charges/{answer['id']}/void", {}, wallet, "POST /v1/charges/{id}/void")

    @task(1)
    def list_charges(self) -> None:
        self.client.get("/v1/charges?limit=20", headers=self.auth, name="GET /v1/charges")

    @task(1)
    def invoicing_reference(self) -> None:
        with self.client.post(
            "/v1/settlements",
            json={},
            name="POST /v1/settlements",
            catch_response=True,
            headers={**self.auth, "Idempotency-Key": secrets.token_hex(12)},
        ) as response:
            if response.status_code == 201 or _answer(response).get("code") == "nothing_to_settle":
                response.success()
            else:
                response.failure(f"{response.status_code} {_answer(response).get('code')}")


class Client(HttpUser):
    weight = 2
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.wallet = random.choice(WORLD.wallets)
        self.auth = {"Authorization": f"Bearer {self.wallet.token}"}
        self.last_event_id = ""

    @task(3)
    def my_wallet(self) -> None:
        self.client.get("/v1/me/wallet", headers=self.auth, name="GET /v1/me/wallet")

    @task(2)
    def my_transactions(self) -> None:
        self.client.get("/v1/me/transactions?limit=20", headers=self.auth, name="GET /v1/me/transactions")

    @task(1)
    def hold_event_stream(self) -> None:
        """Keep the live stream open a while, as the phone app does, reading what arrives; then
        reconnect from the last id seen (the way a dropped connection resumes)."""
        headers = {**self.auth, "Accept": "text/event-stream"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        began = time.monotonic()
        with self.client.get(
            "/v1/me/events",
            headers=headers,
            name="GET /v1/me/events (stream)",
            stream=True,
            catch_response=True,
            timeout=EVENT_STREAM_SECONDS + REQUEST_TIMEOUT_SECONDS,
        ) as response:
            if response.status_code != 200 or not response.headers.get("Content-Type", "").startswith(
                "text/event-stream"
            ):
                response.failure(f"{response.status_code} {response.headers.get('Content-Type')}")
                return
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("id:"):
                    self.last_event_id = line[3:].strip()
                if time.monotonic() - began >= EVENT_STREAM_SECONDS:
                    break
            response.success()


class Finance(HttpUser):
    weight = 1
    fixed_count = 1
    wait_time = between(5.0, 10.0)

    @task
    def export_today(self) -> None:
        today = datetime.now(UTC).astimezone(TIME_ZONE).date().isoformat()
        self.client.get(
            f"/v1/exports/transactions?from={today}&format=jsonl",
            name="GET /v1/exports/transactions",
            headers={"Authorization": f"Bearer {WORLD.finance_token}"},
        )


# The ledger check at the end.


def replay_in_flight() -> int:
    """Send every unanswered money-moving request again with its key: the service answers what it did."""
    session = requests.Session()
    replayed = 0
    for key, sent in list(WORLD.in_flight.items()):
        response = session.post(
            f"{WORLD.base_url}{sent.path}",
            json=sent.body,
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"Authorization": f"Bearer {sent.token}", "Idempotency-Key": key},
        )
        account(sent.wallet, sent.path, sent.body, response.status_code, _answer(response))
        del WORLD.in_flight[key]
        replayed += 1
    return replayed


def check_wallets() -> list[str]:
    session = requests.Session()
    differences = []
    for wallet in WORLD.wallets:
        response = session.get(
            f"{WORLD.base_url}/v1/me/wallet",
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"Authorization": f"Bearer {wallet.token}"},
        )
        response.raise_for_status()
        seen = response.json()
        expected_balance = MONTHLY_AMOUNT_CENTS - wallet.captured_cents
        expected_held = sum(wallet.pending.values())
        if (seen["balance"], seen["held"]) != (expected_balance, expected_held):
            differences.append(
                f"{wallet.client_id}: balance {seen['balance']} held {seen['held']}, the answers say"
                f" balance {expected_balance} held {expected_held}"
            )
    return differences


@events.test_stop.add_listener
def on_test_stop(environment: Environment, **_: Any) -> None:
    if not WORLD.seeded:
        return
    replayed = replay_in_flight()
    differences = check_wallets()
    captured = sum(wallet.captured_cents for wallet in WORLD.wallets)
    held = sum(sum(wallet.pending.values()) for wallet in WORLD.wallets)
    print(
        f"ledger check: {len(WORLD.wallets)} wallets, {WORLD.captures} captures ({captured} cents), {held} cents"
        f" held; {replayed} unanswered requests replayed by key",
        flush=True,
    )
    for difference in differences:
        print(f"LOST OR CREATED: {difference}", flush=True)
    database = os.environ.get("WALLET_DB") or "data/wallet.db"
    check_ok = True
    if Path(database).is_file():
        finished = subprocess.run([sys.executable, "-m", "wallet", "check"], capture_output=True, text=True)
        check_ok = finished.returncode == 0
        print((finished.stdout + finished.stderr).strip(), flush=True)
    if differences or not check_ok:
        environment.process_exit_code = 1
    else:
        print("ledger check: every wallet matches the answers; nothing lost or created", flush=True)
