"""Typed keys for the application and request state."""

from __future__ import annotations

from aiohttp import web

from wallet.auth.tokens import Principal
from wallet.service import WalletService
from wallet.service.signin import SignIn
from wallet.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", WalletService)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
SIGNIN = web.AppKey("signin", SignIn)  # page sessions and OpenID Connect sign-in
