"""Live wallet events (GET /v1/me/events): each change arrives after its commit, in order, once;
a reconnect with Last-Event-ID gets exactly what it missed; streams are per wallet and bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse

from tests.conftest import World
from tests.processes import Server, WalletFiles, charge_body, seed
from wallet.auth.tokens import Role
from wallet.events import EventHub
from wallet.ledger.errors import RateLimited
from wallet.settings import Settings

DEADLINE_SECONDS = 5.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, events_heartbeat_seconds=1, events_streams_per_client_max=3, provider_charges_burst=1000
    )


class EventStream:
    """Reads Server-Sent Events off a response, each read bounded by a deadline."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next(self, deadline_seconds: float = DEADLINE_SECONDS) -> dict[str, Any] | None:
        """The next event (``id``, ``event``, parsed ``data``), or None when the stream has ended."""
        return await asyncio.wait_for(self._read(), deadline_seconds)

    async def _read(self) -> dict[str, Any] | None:
        fields: dict[str, str] = {}
        while True:
            raw = await self.response.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    return {"id": fields.get("id"), "event": fields.get("event"), "data": json.loads(fields["data"])}
                fields = {}
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")

    async def next_change(self) -> dict[str, Any]:
        event = await self.next()
        assert event is not None, "the stream ended"
        return event


@asynccontextmanager
async def stream(world: World, token: str, **headers: str) -> AsyncIterator[EventStream]:
    response = await world.http.get("/v1/me/events", headers=world.auth(token, **headers))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    try:
        yield EventStream(response)
    finally:
        response.close()


async def charge_id(world: World, provider: dict[str, Any], client: dict[str, Any], amount: int, **kw: Any) -> str:
    status, body = await world.charge(provider, client, amount, **kw)
    assert status == 201, body
    return str(body["id"])


async def test_a_charge_arrives_on_the_stream_after_its_commit(world: World) -> None:
    client, provider = await world.funded(10_000)
    async with stream(world, client["token"]) as events:
        opening = await events.next_change()
        assert opening["event"] == "wallet"
        assert opening["data"]["balance"] == 10_000 and opening["data"]["available"] == 10_000
        assert opening["id"] == opening["data"]["last_event_id"]

        charge = await charge_id(world, provider, client, 3_000)
        event = await events.next_change()
        assert event["event"] == "capture" and int(event["id"]) > int(opening["id"])
        data = event["data"]
        assert data["id"] == event["id"] and data["type"] == "capture" and data["charge_id"] == charge
        assert data["amount"] == -3_000 and data["category"] == "home_care"
        assert data["balance"] == 7_000 and data["available"] == 7_000
        assert data["line"] == {"category": "home_care", "balance": 7_000, "available": 7_000}
        assert data["provider_name"] == "Hoiva Oy"
        # The event was read from committed state: the wallet says the same.
        assert (await world.wallet(client))["balance"] == 7_000


async def test_every_kind_of_change_arrives_once_in_commit_order(world: World) -> None:
    client, provider = await world.funded(10_000)
    token = provider["token"]
    async with stream(world, client["token"]) as events:
        assert (await events.next_change())["event"] == "wallet"

        voided = await charge_id(world, provider, client, 1_000, method="otp")
        await world.call("POST", f"/v1/charges/{voided}/void", token, expect=201)
        confirmed = await charge_id(world, provider, client, 2_000, method="otp")
        code = world.sms.last_code(client["phone"])
        await world.call("POST", f"/v1/charges/{confirmed}/confirm", token, {"code": code}, expect=200)
        await world.call("POST", f"/v1/charges/{confirmed}/refunds", token, {"amount": 500}, expect=201)
        status, _ = await world.charge(provider, client, 1_000_000)  # refused: writes nothing, sends nothing
        assert status == 402
        world.clock.advance(days=20)  # into February: January's rest expires, February's money comes
        world.admin = world.token(Role.ADMIN)  # the first one has expired
        await world.credit("2027-02")

        seen = [(await events.next_change())["data"] for _ in range(7)]
        assert [(e["type"], e["amount"], e.get("charge_id")) for e in seen] == [
            ("hold", -1_000, voided),
            ("void", 1_000, voided),
            ("hold", -2_000, confirmed),
            ("capture", -2_000, confirmed),
            ("refund", 500, confirmed),
            ("expiry", -8_500, None),
            ("credit", 10_000, None),
        ]
        assert [e["available"] for e in seen] == [9_000, 10_000, 8_000, 8_000, 8_500, 0, 10_000]
        assert [e["balance"] for e in seen] == [10_000, 10_000, 10_000, 8_000, 8_500, 0, 10_000]
        assert seen[0]["method"] == "otp" and "expires_at" in seen[0]
        assert seen[1]["reason"] == "voided_by_provider"
        ids = [int(e["id"]) for e in seen]
        assert ids == sorted(ids) and len(set(ids)) == 7


async def test_reconnecting_with_last_event_id_gets_exactly_the_missed_events(world: World) -> None:
    client, provider = await world.funded(10_000)
    async with stream(world, client["token"]) as events:
        await events.next_change()
        first = await charge_id(world, provider, client, 100)
        seen = await events.next_change()
        assert seen["data"]["charge_id"] == first
    missed = [await charge_id(world, provider, client, amount) for amount in (200, 300, 400)]

    async with stream(world, client["token"], **{"Last-Event-ID": seen["id"]}) as events:
        resent = [await events.next_change() for _ in missed]
        assert [event["data"]["charge_id"] for event in resent] == missed
        assert [event["data"]["amount"] for event in resent] == [-200, -300, -400]
        # Nothing after them but what happens next: no repeat, no snapshot in between.
        latest = await charge_id(world, provider, client, 500)
        assert (await events.next_change())["data"]["charge_id"] == latest

    # The same resume through the query string, for clients that cannot set headers.
    response = await world.http.get(
        f"/v1/me/events?last_event_id={resent[0]['id']}", headers=world.auth(client["token"])
    )
    try:
        events = EventStream(response)
        assert [(await events.next_change())["data"]["charge_id"] for _ in range(3)] == [missed[1], missed[2], latest]
    finally:
        response.close()


async def test_another_clients_stream_does_not_see_the_change(world: World) -> None:
    owner, provider = await world.funded(10_000)
    other = await world.client(phone="+358401112223")
    await world.budget(other["id"], {"home_care": 5_000})
    await world.credit()
    async with stream(world, other["token"]) as events:
        assert (await events.next_change())["data"]["balance"] == 5_000
        await charge_id(world, provider, owner, 1_000)
        mine = await charge_id(world, provider, other, 700)
        event = await events.next_change()
        assert event["data"]["charge_id"] == mine and event["data"]["balance"] == 4_300


async def test_a_quiet_stream_gets_heartbeats(world: World) -> None:
    client, _ = await world.funded(1_000)
    async with stream(world, client["token"]) as events:
        await events.next_change()
        with pytest.raises(TimeoutError):
            await events.next(deadline_seconds=2.5)  # no change: no event, only comments
        assert ": heartbeat" in events.comments


async def test_streams_per_wallet_are_bounded(world: World) -> None:
    client, _provider = await world.funded(1_000)
    other = await world.client(phone="+358401112224")
    opened = [await world.http.get("/v1/me/events", headers=world.auth(client["token"])) for _ in range(3)]
    try:
        assert [response.status for response in opened] == [200, 200, 200]
        refused = await world.http.get("/v1/me/events", headers=world.auth(client["token"]))
        body = await refused.json(content_type=None)
        assert refused.status == 429 and body["code"] == "rate_limited" and refused.headers["Retry-After"]
        # Another wallet is not affected.
        theirs = await world.http.get("/v1/me/events", headers=world.auth(other["token"]))
        assert theirs.status == 200
        theirs.close()
        # A closed stream frees its place as soon as the server notices the connection is gone.
        opened.pop().close()

        async def reopen() -> ClientResponse:
            while True:
                response = await world.http.get("/v1/me/events", headers=world.auth(client["token"]))
                if response.status == 200:
                    return response
                response.close()
                await asyncio.sleep(0.05)

        opened.append(await asyncio.wait_for(reopen(), DEADLINE_SECONDS))
    finally:
        for response in opened:
            response.close()


async def test_a_reader_that_does_not_read_does_not_slow_charges(world: World) -> None:
    client, provider = await world.funded(1_000_000)
    async with stream(world, client["token"]) as stalled:
        started = time.monotonic()
        ids = await asyncio.wait_for(
            asyncio.gather(*(charge_id(world, provider, client, 10, key=f"k{n}") for n in range(300))),
            DEADLINE_SECONDS * 4,
        )
        assert time.monotonic() - started < DEADLINE_SECONDS * 4
        # The stream fell behind but lost nothing: every charge, once, in commit order.
        events = [await stalled.next_change() for _ in range(301)][1:]
        assert sorted(event["data"]["charge_id"] for event in events) == sorted(ids)
        assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
        assert events[-1]["data"]["balance"] == 1_000_000 - 300 * 10


async def test_streams_end_when_the_service_shuts_down(world: World) -> None:
    client, _ = await world.funded(1_000)
    async with stream(world, client["token"]) as events:
        await events.next_change()
        world.service.events.close()  # what the app's on_shutdown does
        assert await events.next() is None
    refused = await world.http.get("/v1/me/events", headers=world.auth(client["token"]))
    assert refused.status == 503


async def test_only_a_client_may_open_a_stream_and_only_with_a_real_event_id(world: World) -> None:
    client, provider = await world.funded(1_000)
    await world.call("GET", "/v1/me/events", provider["token"], expect=403)
    await world.call("GET", "/v1/me/events", expect=401)
    status, body = await world.call("GET", "/v1/me/events", client["token"], **{"Last-Event-ID": "12abc"})
    assert status == 422 and body["code"] == "validation_error"


def test_the_hub_never_blocks_a_publisher_and_wakes_only_the_named_wallet() -> None:
    async def scenario() -> None:
        hub = EventHub(streams_per_client_max=2, streams_max=3)
        mine, theirs = hub.subscribe("cl_a"), hub.subscribe("cl_b")
        for n in range(100_000):  # a reader that never reads: the flag merges, nothing piles up
            hub.publish({"cl_a": n})
        assert await mine.wait(0.01) is True
        assert await mine.wait(0.01) is False  # one wake-up for all of them: the log has the rest
        assert await theirs.wait(0.01) is False
        hub.subscribe("cl_a")
        with pytest.raises(RateLimited):
            hub.subscribe("cl_a")
        with pytest.raises(RateLimited):
            hub.subscribe("cl_c")  # the limit in all
        mine.close()
        assert hub.open_streams == 2
        hub.close()
        assert await theirs.wait(10) is True and theirs.closed and hub.open_streams == 0

    asyncio.run(scenario())


# From outside: the real server ends its streams at SIGTERM instead of waiting them out.


@pytest.mark.slow
async def test_sigterm_ends_open_streams_and_the_server_exits_promptly(tmp_path: Path) -> None:
    files = WalletFiles(tmp_path)
    server = Server(files).start()
    try:
        seeded = seed(files, server, 10_000)
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{server.base_url}/v1/me/events", headers={"Authorization": f"Bearer {seeded.client_token}"}
            ) as response,
        ):
            assert response.status == 200
            events = EventStream(response)
            assert (await events.next_change())["event"] == "wallet"
            async with session.post(
                f"{server.base_url}/v1/charges",
                json=charge_body(seeded, 250),
                headers={"Authorization": f"Bearer {seeded.provider_token}"},
            ) as charged:
                assert charged.status == 201
            assert (await events.next_change())["data"]["amount"] == -250
            server.signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert await events.next() is None  # the server closed the stream
        assert await asyncio.to_thread(server.wait, 10) == 0
        assert time.monotonic() - signalled < 5, "the open stream held the shutdown"
    finally:
        if server.running():
            server.kill()
