"""Sign-in for the pages: an OpenID Connect sign-in at the audience's identity provider becomes a
server-side session, and a session cookie becomes a ``Principal`` on each request.

- ``client``: the broker's national identity number, as its keyed hash, finds a client's own
  wallet or, failing that, a representative's active mandates; neither is ``NoAccess``, the same
  for every reason (nothing tells whether such a client exists).
- ``staff``: the groups claim maps to ``admin`` or ``finance`` (the configured groups); neither is
  ``NoAccess``.

What a begun sign-in must find on its return (``state``, ``nonce``, the PKCE verifier) travels
sealed (AES-GCM under a key derived from the server secret) in a cookie bound to that browser. The
session cookie holds a random secret; the database keeps only its keyed hash, and the CSRF token is
another keyed hash of it: never stored, and unknown to anyone without the cookie.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wallet import validation
from wallet.auth.hashing import Hasher, equal
from wallet.auth.oidc import AUDIENCES, Identity, PendingSignIn, ProviderConfig, RelyingParty, SignInRefused
from wallet.auth.tokens import Principal, Role
from wallet.clock import Clock, rfc3339
from wallet.ledger.errors import Forbidden, NotFound, Unauthorized, ValidationError
from wallet.service.core import NATIONAL_ID
from wallet.settings import Settings
from wallet.storage.port import NewSession, Storage

log = structlog.get_logger(__name__)

SESSION = "web_session"  # hash purposes
CSRF = "csrf"
_LOGIN_STATE_KEY = "oidc_login_state_key"
_NONCE_BYTES = 12
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
# A session's last use is written at most this often (a fraction of the idle lifetime): one write per
# page load would load the single writer for nothing.
TOUCH_FRACTION = 10
SESSION_PURGE_BATCH = 1_000  # ended sessions forgotten per write


class NoAccess(Exception):
    """The person signed in at the provider, but may open nothing here."""


@dataclass(frozen=True)
class SignedIn:
    secret: str  # the cookie's value
    landing: str  # the page to go to


class SignIn:
    def __init__(self, settings: Settings, storage: Storage, hasher: Hasher, clock: Clock) -> None:
        self.settings = settings
        self.storage = storage
        self.hasher = hasher
        self.clock = clock
        self._http: aiohttp.ClientSession | None = None
        self.parties: dict[str, RelyingParty] = {}
        for audience in AUDIENCES:
            config = ProviderConfig.from_settings(settings, audience)
            if config is not None:
                self.parties[audience] = RelyingParty(
                    config,
                    self._client_session,
                    lambda: self.clock.now().timestamp(),
                    timeout_seconds=settings.oidc_http_timeout_seconds,
                    response_max_bytes=settings.oidc_response_max_bytes,
                    metadata_ttl_seconds=settings.oidc_metadata_ttl_seconds,
                    keys_refresh_min_seconds=settings.oidc_keys_refresh_min_seconds,
                    clock_skew_seconds=settings.oidc_clock_skew_seconds,
                )
        self._sealer = AESGCM(bytes.fromhex(hasher.keyed(_LOGIN_STATE_KEY, "v1")))

    def _client_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def party(self, audience: str) -> RelyingParty:
        party = self.parties.get(audience)
        if party is None:
            raise NotFound(f"sign-in for {audience!r} is not configured here")
        return party

    @property
    def secure(self) -> bool:
        return self.settings.public_url.startswith("https://")

    # Beginning and finishing a sign-in.

    async def begin(self, audience: str) -> tuple[str, str]:
        """The provider's URL to send the browser to, and the sealed state for its cookie."""
        url, pending = await self.party(audience).begin()
        expires = int(self.clock.now().timestamp()) + self.settings.oidc_login_ttl_seconds
        plain = json.dumps([audience, pending.state, pending.nonce, pending.code_verifier, expires]).encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._sealer.encrypt(nonce, plain, audience.encode())
        return url, base64.urlsafe_b64encode(nonce + sealed).decode()

    def _unseal(self, audience: str, sealed: str | None) -> PendingSignIn:
        if not sealed:
            raise SignInRefused("no sign-in was begun in this browser (no state cookie)")
        try:
            raw = base64.urlsafe_b64decode(sealed)
            plain = self._sealer.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], audience.encode())
            sealed_audience, state, nonce, verifier, expires = json.loads(plain)
        except (ValueError, InvalidTag, TypeError):
            raise SignInRefused("the sign-in state cookie is not ours") from None
        if sealed_audience != audience or expires <= self.clock.now().timestamp():
            raise SignInRefused("the sign-in state cookie has expired")
        return PendingSignIn(state=state, nonce=nonce, code_verifier=verifier)

    async def finish(self, audience: str, query: dict[str, str], sealed: str | None) -> SignedIn:
        """The provider's answer (``code`` and ``state``, or ``error``) with this browser's state
        cookie: a new session, or ``SignInRefused`` / ``NoAccess``."""
        party = self.party(audience)
        pending = self._unseal(audience, sealed)
        returned_state = query.get("state")
        if returned_state is None or not equal(returned_state, pending.state):
            raise SignInRefused("the state returned is not the one this browser was sent with")
        if "error" in query:
            raise SignInRefused(f"the provider answered {query['error'][:64]!r}")
        code = query.get("code")
        if not code:
            raise SignInRefused("the provider returned no code")
        identity = await party.finish(code, pending)
        principal = await (self._client(identity) if audience == "client" else self._staff(identity))
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        await self.storage.open_session(
            NewSession(
                id_hash=self.hasher.keyed(SESSION, secret),
                audience=audience,
                role=principal.role.value,
                subject=principal.subject,
                name=principal.name,
                client_id=principal.client_id,
                representative_id=principal.representative_id,
                client_ids=principal.client_ids,
                created_at=rfc3339(now),
                expires_at=rfc3339(now + timedelta(seconds=self.settings.session_absolute_seconds)),
            ),
            now,
        )
        log.info("signed_in", audience=audience, role=principal.role.value)
        return SignedIn(secret=secret, landing="/admin" if audience == "staff" else "/")

    def _name(self, identity: Identity) -> str | None:
        parts = [
            identity.claims.get(self.settings.oidc_given_name_claim),
            identity.claims.get(self.settings.oidc_family_name_claim),
        ]
        named = " ".join(part for part in parts if isinstance(part, str) and part.strip())
        if not named and isinstance(identity.claims.get("name"), str):
            named = identity.claims["name"]
        return named[:200] or None

    async def _client(self, identity: Identity) -> Principal:
        raw = identity.claims.get(self.settings.oidc_client_national_id_claim)
        try:
            national_id = validation.national_id(raw)
        except ValidationError:
            raise SignInRefused("the ID token holds no valid national identity number") from None
        person = await self.storage.person_by_national_id(self.hasher.keyed(NATIONAL_ID, national_id))
        if person is None:
            raise NoAccess("no wallet and no mandate")
        name = self._name(identity)
        if person["role"] == Role.CLIENT.value:
            return Principal(role=Role.CLIENT, subject=person["client_id"], client_id=person["client_id"], name=name)
        client_ids = tuple(person["client_ids"])
        return Principal(
            role=Role.REPRESENTATIVE,
            subject=person["representative_id"],
            representative_id=person["representative_id"],
            client_ids=client_ids,
            client_id=client_ids[0] if len(client_ids) == 1 else None,
            name=name,
        )

    async def _staff(self, identity: Identity) -> Principal:
        groups = identity.claims.get(self.settings.oidc_staff_groups_claim)
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list):
            groups = []
        if self.settings.oidc_staff_admin_group in groups:
            role = Role.ADMIN
        elif self.settings.oidc_staff_finance_group in groups:
            role = Role.FINANCE
        else:
            raise NoAccess("in neither staff group")
        return Principal(role=role, subject=identity.subject, name=self._name(identity))

    # Sessions on each request.

    def csrf_token(self, secret: str) -> str:
        return self.hasher.keyed(CSRF, secret)

    async def session(self, secret: str) -> tuple[Principal, dict[str, object]]:
        """The session's principal and row; Unauthorized when there is none or it has ended."""
        row = await self.storage.find_session(self.hasher.keyed(SESSION, secret))
        now = self.clock.now()
        if row is None or row["ended_at"] is not None:
            raise Unauthorized("no session; sign in again")
        last_seen = datetime.fromisoformat(str(row["last_seen_at"]))
        idle = (now - last_seen).total_seconds()
        if idle >= self.settings.session_idle_seconds or now >= datetime.fromisoformat(str(row["expires_at"])):
            raise Unauthorized("the session has ended; sign in again")
        if idle >= self.settings.session_idle_seconds / TOUCH_FRACTION:
            await self.storage.touch_session(str(row["id_hash"]), now)
        client_ids = tuple(str(c) for c in row["client_ids"])
        principal = Principal(
            role=Role(row["role"]),
            subject=str(row["subject"]),
            client_id=row["client_id"] if row["role"] in (Role.CLIENT.value, Role.REPRESENTATIVE.value) else None,
            representative_id=row["representative_id"],
            client_ids=client_ids,
            name=row["name"],
        )
        return principal, row

    async def authenticate(self, secret: str, method: str, csrf_token: str | None) -> Principal:
        """A request made with the session cookie; a state-changing one must carry the CSRF token."""
        principal, _ = await self.session(secret)
        if method not in SAFE_METHODS and (csrf_token is None or not equal(csrf_token, self.csrf_token(secret))):
            raise Forbidden(f"a request that changes something needs the {CSRF_HEADER} header of this session")
        return principal

    async def purge_ended(self) -> int:
        """Forget the sessions that have ended, a bounded batch per write (a background job)."""
        now = self.clock.now()
        idle_cutoff = now - timedelta(seconds=self.settings.session_idle_seconds)
        total = 0
        while True:
            deleted = await self.storage.purge_sessions(idle_cutoff, SESSION_PURGE_BATCH, now)
            total += deleted
            if deleted < SESSION_PURGE_BATCH:
                return total

    async def end(self, secret: str) -> str | None:
        """End the session here; the provider's logout URL to send the browser to, if it has one."""
        _, row = await self.session(secret)
        await self.storage.end_session(self.hasher.keyed(SESSION, secret), self.clock.now())
        log.info("signed_out", audience=row["audience"])
        party = self.parties.get(str(row["audience"]))
        if party is None:
            return None
        try:
            return await party.logout_url(secrets.token_urlsafe(16))
        except SignInRefused:
            return None
