"""Key rotation: tokens signed with an earlier key stay valid until they expire; unknown keys fail."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.conftest import START, RecordingSms
from wallet.api.app import create_app
from wallet.auth.keys import load_or_create_signing_key
from wallet.auth.tokens import Role, TokenService
from wallet.clock import FakeClock
from wallet.settings import Settings, SettingsError


def minted_with(path: Path, settings: Settings) -> str:
    service = TokenService(load_or_create_signing_key(path), settings.token_issuer, settings.token_audience, 10)
    return service.mint(Role.ADMIN, START, 600)


async def test_tokens_of_an_earlier_key_are_accepted_and_of_an_unknown_key_refused(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    old_key, stranger_key = tmp_path / "old.pem", tmp_path / "stranger.pem"
    old_token = minted_with(old_key, settings)
    stranger_token = minted_with(stranger_key, settings)
    rotated = replace(settings, verification_keys=str(old_key))
    client = await aiohttp_client(
        create_app(rotated, clock=FakeClock(START), sms=RecordingSms(), background_jobs=False)
    )
    response = await client.get("/v1/categories", headers={"Authorization": f"Bearer {old_token}"})
    assert response.status == 200
    response = await client.get("/v1/categories", headers={"Authorization": f"Bearer {stranger_token}"})
    assert response.status == 401 and (await response.json())["code"] == "unauthorized"


def test_a_missing_verification_key_file_stops_start_up(tmp_path: Path) -> None:
    try:
        Settings.from_env({"WALLET_VERIFICATION_KEYS": str(tmp_path / "nope.pem")})
    except SettingsError as error:
        assert "WALLET_VERIFICATION_KEYS" in str(error)
    else:
        raise AssertionError("a missing key file was accepted")
