"""Running the real ``wallet`` process for black-box tests: the CLI, the server, and plain HTTP.

Only the standard library talks HTTP here (``http.client``); the tests add aiohttp's client where
they need many requests at once. Nothing waits by sleeping a fixed time: every wait polls a
condition until a deadline and fails naming what it waited for.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from wallet.clock import month_of

T = TypeVar("T")

START_DEADLINE_SECONDS = 20.0
CLI_TIMEOUT_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.02
HTTP_TIMEOUT_SECONDS = 10.0

# Test data: valid, and not anybody's (the national id is the authority's published example).
PHONE_E164 = "+358401234567"
PHONE_AS_TYPED = "040 123 4567"
NATIONAL_ID = "131052-308T"
BUSINESS_ID = "2077474-0"
IBAN = "FI2112345600000785"
CODE = re.compile(r"\b(\d{6})\b")


def current_month() -> str:
    """The budget month the service will decide on: the real clock, in Helsinki."""
    return month_of(datetime.now(UTC), ZoneInfo("Europe/Helsinki"))


def organizer_today() -> date:
    """The day the service counts as today: the real clock, in Helsinki (from 22:00 UTC in winter,
    a day ahead of UTC's)."""
    return datetime.now(ZoneInfo("Europe/Helsinki")).date()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def poll(condition: Callable[[], T | None], deadline_seconds: float, what: str) -> T:
    """Call ``condition`` until it returns something other than None/False, or fail after the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {deadline_seconds} s waiting for {what}")
        time.sleep(POLL_INTERVAL_SECONDS)


@dataclass
class WalletFiles:
    """A fresh set of files for one wallet installation: database, keys, SMS outbox, logs."""

    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.root / "wallet.db"

    @property
    def signing_key(self) -> Path:
        return self.root / "keys" / "signing-key.pem"

    @property
    def sms_outbox(self) -> Path:
        return self.root / "sms-outbox.jsonl"

    @property
    def server_log(self) -> Path:
        return self.root / "server.stderr.log"

    @property
    def cli_log(self) -> Path:
        return self.root / "cli.stderr.log"

    def env(self, **overrides: str) -> dict[str, str]:
        environ = {key: value for key, value in os.environ.items() if not key.startswith("WALLET_")}
        environ.update(
            WALLET_DB=str(self.db),
            WALLET_SIGNING_KEY=str(self.signing_key),
            WALLET_SMS_OUTBOX=str(self.sms_outbox),
            PYTHONUNBUFFERED="1",
        )
        environ.update(self.extra_env)
        environ.update(overrides)
        return environ

    # The command line.

    def cli(self, *arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``wallet ARGUMENTS`` to completion; its stderr is also kept in ``cli_log``."""
        completed = subprocess.run(
            [sys.executable, "-m", "wallet", *arguments],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
        with self.cli_log.open("a", encoding="utf-8") as log:
            log.write(completed.stderr)
        return completed

    def token(self, role: str, **ids: str) -> str:
        arguments = ["token", "--role", role]
        for name, value in ids.items():
            arguments += [f"--{name.replace('_', '-')}", value]
        completed = self.cli(*arguments)
        assert completed.returncode == 0, completed.stderr
        return completed.stdout.strip().splitlines()[-1]

    def check(self) -> subprocess.CompletedProcess[str]:
        return self.cli("check")

    # The SMS outbox.

    def sms(self) -> list[dict[str, str]]:
        if not self.sms_outbox.exists():
            return []
        return [json.loads(line) for line in self.sms_outbox.read_text(encoding="utf-8").splitlines() if line]

    def code_sent_to(self, phone: str, nth: int = 1) -> str:
        """The 6-digit code in the ``nth`` SMS sent to ``phone``, or in the first after it that has one:
        receipts of earlier charges (which carry no code) may arrive in between (waits for it)."""

        def found() -> str | None:
            texts = [message["text"] for message in self.sms() if message["to"] == phone]
            for text in texts[nth - 1 :]:
                match = CODE.search(text)
                if match:
                    return match.group(1)
            return None

        return poll(found, 5.0, f"SMS number {nth} to the client's phone")


class Server:
    """``python -m wallet serve`` as a child process, its stderr appended to a log file."""

    def __init__(self, files: WalletFiles, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.files = files
        self.port = port or free_port()
        self.env = files.env(**(env or {}))
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with self.files.server_log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wallet", "serve", "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.started_at = time.monotonic()
        poll(self._healthy, START_DEADLINE_SECONDS, f"GET /healthz on port {self.port}")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"wallet serve exited with {self.process.returncode} before it answered:\n{self.log_tail()}"
            )
        try:
            status, _, _ = request(self.port, "GET", "/healthz", timeout=1.0)
        except OSError:
            return False
        return status == 200

    def log_tail(self, characters: int = 4000) -> str:
        return self.files.server_log.read_text(encoding="utf-8", errors="replace")[-characters:]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; SIGKILL only if it does not exit in time (and then fail)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"wallet serve ignored SIGTERM for {timeout} s:\n{self.log_tail()}") from None
        return self.process.returncode

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def api(self, token: str | None = None) -> Api:
        return Api(self.port, token)


def request(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    key: str | None = None,
    timeout: float = HTTP_TIMEOUT_SECONDS,
) -> tuple[int, Any, dict[str, str]]:
    """One request on a fresh connection: status, decoded JSON body (or None), headers."""
    headers = {"Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["Idempotency-Key"] = key
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        decoded = json.loads(raw) if raw else None
        return response.status, decoded, {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()


@dataclass
class Api:
    """Sequential calls as one principal; ``call`` asserts the expected status."""

    port: int
    token: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: int | None = None,
        key: str | None = None,
        token: str | None = None,
    ) -> Any:
        status, decoded, headers = request(self.port, method, path, token=token or self.token, body=body, key=key)
        if expect is not None:
            assert status == expect, (method, path, status, decoded)
        if status >= 400:
            assert headers.get("content-type", "").startswith("application/problem+json"), headers
        return decoded if expect is not None else (status, decoded)

    def pages(self, path: str) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following ``next_cursor``."""
        cursor: str | None = None
        while True:
            separator = "&" if "?" in path else "?"
            page = self.call("GET", f"{path}{separator}limit=200" + (f"&cursor={cursor}" if cursor else ""), expect=200)
            yield from page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return


@dataclass
class Seeded:
    client_id: str
    provider_id: str
    provider_token: str
    client_token: str
    category: str
    monthly_amount: int
    phone: str = PHONE_E164
    national_id: str = NATIONAL_ID
    secrets: list[str] = field(default_factory=list)  # every credential and token handed out


def seed(
    files: WalletFiles, server: Server, monthly_amount: int, *, category: str = "home_care", credit: str = "api"
) -> Seeded:
    """Category, client with a national id, a budget from this month, an approved provider with
    credentials exchanged for a token, and (``credit``: "api", "cli" or "none") this month credited."""
    admin_token = files.token("admin")
    admin = server.api(admin_token)
    month = current_month()
    admin.call("POST", "/v1/categories", {"code": category, "name": "Kotihoito"}, expect=201)
    client = admin.call(
        "POST", "/v1/clients", {"name": "Aino Asiakas", "phone": PHONE_AS_TYPED, "national_id": NATIONAL_ID}, expect=201
    )
    assert client["phone"] == PHONE_E164, client
    year, month_number = int(month[:4]), int(month[5:])
    end = f"{year + 1:04d}-{month_number:02d}" if month_number > 1 else f"{year:04d}-12"
    admin.call(
        "POST",
        f"/v1/clients/{client['id']}/budgets",
        {
            "start_month": month,
            "end_month": end,
            "unused": "expire",
            "lines": [{"category": category, "monthly_amount": monthly_amount}],
        },
        expect=201,
    )
    provider = admin.call(
        "POST",
        "/v1/providers",
        {"name": "Hoiva Oy", "business_id": BUSINESS_ID, "iban": IBAN, "categories": [category]},
        expect=201,
    )
    assert provider["status"] == "pending", provider
    approved = admin.call("POST", f"/v1/providers/{provider['id']}/approve", expect=200)
    assert approved["status"] == "approved", approved
    credentials = admin.call("POST", f"/v1/providers/{provider['id']}/credentials", expect=201)
    issued = server.api().call(
        "POST",
        "/v1/token",
        {
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
        expect=200,
    )
    assert issued["token_type"] == "Bearer" and issued["expires_in"] > 0, issued
    if credit == "api":
        run = admin.call("POST", "/v1/credit-runs", {"month": month}, key=f"credit-{month}")
        assert run[0] in (200, 201) and run[1]["amount"] >= monthly_amount, run
    elif credit == "cli":
        completed = files.cli("credit-run", "--month", month)
        assert completed.returncode == 0, completed.stderr
    client_token = files.token("client", client_id=client["id"])
    return Seeded(
        client_id=client["id"],
        provider_id=provider["id"],
        provider_token=issued["access_token"],
        client_token=client_token,
        category=category,
        monthly_amount=monthly_amount,
        secrets=[admin_token, credentials["client_secret"], issued["access_token"], client_token],
    )


def charge_body(
    seeded: Seeded, amount: int, *, method: str = "national_id", description: str | None = None
) -> dict[str, Any]:
    identity: dict[str, Any] = {"method": method}
    if method == "national_id":
        identity["national_id"] = seeded.national_id
    body: dict[str, Any] = {"phone": seeded.phone, "amount": amount, "category": seeded.category, "identity": identity}
    if description is not None:
        body["description"] = description
    return body
