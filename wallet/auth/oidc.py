"""An OpenID Connect relying party: the authorization code flow with PKCE, ``state`` and ``nonce``.

The protocol's pieces come from authlib (the authorization URL, the token request, PKCE, client
authentication by ``private_key_jwt`` or ``client_secret_basic``) and the JOSE work from joserfc
(authlib's own JOSE library: ID token signatures, JWE decryption, key sets); this module only
wires them to aiohttp and to the settings, and names every check explicitly:

- the provider's discovery document and keys are fetched, cached for ``metadata_ttl_seconds``,
  and the keys fetched again when an ID token names a ``kid`` we do not hold (at most once per
  ``keys_refresh_min_seconds``: forged tokens cannot make us flood the provider);
- an ID token must be signed (``alg`` from the configured allow-list, never ``none``) by a key in
  the provider's JWKS, and its ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, ``sub`` and
  ``nonce`` must be what this sign-in expects, its ``acr`` one of the ``acr_values`` asked for (when
  some are); where an encryption key is configured, the ID token must also arrive encrypted to it
  (JWE), as the Finnish Trust Network's brokers send them.

Every refusal is a ``SignInRefused`` whose message is for the log only (no claim values in it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.common.urls import add_params_to_qs, add_params_to_uri  # type: ignore[import-untyped]
from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request  # type: ignore[import-untyped]
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import jwe, jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.registry import HeaderParameter

from wallet.settings import Settings

Audience = Literal["client", "staff"]
AUDIENCES: tuple[Audience, ...] = ("client", "staff")
# JWE key management and content encryption accepted for encrypted ID tokens.
ENCRYPTION_ALGORITHMS = ("RSA-OAEP-256", "RSA-OAEP", "A256GCM", "A128GCM", "A256CBC-HS512", "A128CBC-HS256")
# Claims a JWE header may replicate in the clear (RFC 7519 section 5.3), as oidc-provider does: admitted, not used.
_REPLICATED_CLAIMS = jwe.JWERegistry(
    header_registry={
        "iss": HeaderParameter("Issuer (replicated)", "str"),
        "aud": HeaderParameter("Audience (replicated)", lambda value: None),
        "sub": HeaderParameter("Subject (replicated)", "str"),
    },
    algorithms=list(ENCRYPTION_ALGORITHMS),
)


class SignInRefused(Exception):
    """The identity provider's answer failed a check; the message says which, for the log."""


@dataclass(frozen=True)
class ProviderConfig:
    """One identity provider as the settings name it (``WALLET_OIDC_{CLIENT|STAFF}_*``)."""

    audience: Audience
    issuer: str
    client_id: str
    client_secret: str
    private_key: RSAKey | ECKey | None
    encryption_key: RSAKey | None
    scopes: str
    acr_values: str
    algorithms: tuple[str, ...]
    redirect_uri: str
    post_logout_redirect_uri: str

    @staticmethod
    def from_settings(settings: Settings, audience: Audience) -> ProviderConfig | None:
        """The provider for ``audience``, or None when its issuer is not set (that sign-in is off)."""
        issuer = getattr(settings, f"oidc_{audience}_issuer")
        if not issuer:
            return None
        private_key_path = getattr(settings, f"oidc_{audience}_private_key")
        encryption_key_path = getattr(settings, f"oidc_{audience}_encryption_key")
        private_key = _load_signing_key(private_key_path) if private_key_path else None
        encryption_key = None
        if encryption_key_path:
            encryption_key = RSAKey.import_key(Path(encryption_key_path).read_bytes(), {"use": "enc"})
            encryption_key.ensure_kid()
        return ProviderConfig(
            audience=audience,
            issuer=issuer,
            client_id=getattr(settings, f"oidc_{audience}_client_id"),
            client_secret=getattr(settings, f"oidc_{audience}_client_secret"),
            private_key=private_key,
            encryption_key=encryption_key,
            scopes=getattr(settings, f"oidc_{audience}_scopes"),
            acr_values=getattr(settings, f"oidc_{audience}_acr_values"),
            algorithms=tuple(getattr(settings, f"oidc_{audience}_algorithms").split()),
            redirect_uri=f"{settings.public_url}/v1/auth/{audience}/callback",
            post_logout_redirect_uri=f"{settings.public_url}{'/admin' if audience == 'staff' else '/'}",
        )

    def public_jwks(self) -> dict[str, Any]:
        """Our public keys, for the provider: the assertion-signing key and the ID-token encryption key."""
        keys = [key.as_dict(private=False) for key in (self.private_key, self.encryption_key) if key is not None]
        return {"keys": keys}


def _load_signing_key(path: str) -> RSAKey | ECKey:
    """A PEM private key, named (``kid``) by its RFC 7638 thumbprint as published in our JWKS."""
    data = Path(path).read_bytes()
    key: RSAKey | ECKey
    try:
        key = RSAKey.import_key(data, {"use": "sig"})
    except (JoseError, ValueError, TypeError):
        key = ECKey.import_key(data, {"use": "sig"})
    key.ensure_kid()
    return key


def _signing_algorithm(key: RSAKey | ECKey) -> str:
    if isinstance(key, RSAKey):
        return "RS256"
    return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[key.curve_name]


@dataclass(frozen=True)
class PendingSignIn:
    """What one sign-in begun here must find on its return: kept (sealed) in the browser's cookie."""

    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Identity:
    """The verified ID token's claims."""

    subject: str
    claims: dict[str, Any]


class RelyingParty:
    """One identity provider's relying party; ``http`` is the shared aiohttp session, ``now`` the
    service's clock (seconds since the epoch)."""

    def __init__(
        self,
        config: ProviderConfig,
        http: Callable[[], aiohttp.ClientSession],
        now: Callable[[], float],
        *,
        timeout_seconds: int,
        response_max_bytes: int,
        metadata_ttl_seconds: int,
        keys_refresh_min_seconds: int,
        clock_skew_seconds: int,
    ) -> None:
        self.config = config
        self._http = http
        self._now = now
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_bytes = response_max_bytes  # a larger discovery document, key set or token answer is refused
        self._metadata_ttl = metadata_ttl_seconds
        self._keys_refresh_min = keys_refresh_min_seconds
        self._skew = clock_skew_seconds
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http().get(url, timeout=self._timeout, allow_redirects=False) as response:
                body = await response.content.read(self._max_bytes + 1)
                if response.status != 200 or len(body) > self._max_bytes:
                    raise SignInRefused(f"{url} answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SignInRefused(f"{url} could not be read: {type(error).__name__}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise SignInRefused(f"{url} is not JSON") from None
        if not isinstance(document, dict):
            raise SignInRefused(f"{url} is not a JSON object")
        return document

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, cached; its issuer must be the configured one (OIDC Discovery 4.3)."""
        if self._metadata is not None and self._now() - self._metadata_at < self._metadata_ttl:
            return self._metadata
        document = await self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
        if document.get("issuer") != self.config.issuer:
            raise SignInRefused("the discovery document names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise SignInRefused(f"the discovery document has no {name}")
        self._metadata, self._metadata_at = document, self._now()
        return document

    async def _key_set(self, kid: str | None) -> KeySet:
        """The provider's keys; fetched again when stale, or when ``kid`` is not among them and the
        last fetch is older than the refresh interval (a key rotated at the provider)."""
        age = self._now() - self._keys_at
        known = self._keys is not None and any(key.kid == kid for key in self._keys.keys)
        if self._keys is not None and age < self._metadata_ttl and (known or age < self._keys_refresh_min):
            return self._keys
        document = await self._get_json((await self.metadata())["jwks_uri"])
        try:
            self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise SignInRefused("the provider's JWKS is not a key set") from None
        self._keys_at = self._now()
        return self._keys

    async def begin(self) -> tuple[str, PendingSignIn]:
        """The URL to send the browser to, and what its return must match."""
        metadata = await self.metadata()
        pending = PendingSignIn(state=generate_token(32), nonce=generate_token(32), code_verifier=generate_token(64))
        extra = {
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        if self.config.acr_values:
            extra["acr_values"] = self.config.acr_values
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=self.config.redirect_uri,
            scope=self.config.scopes,
            state=pending.state,
            **extra,
        )
        return str(url), pending

    async def finish(self, code: str, pending: PendingSignIn) -> Identity:
        """Redeem ``code`` at the token endpoint and verify the ID token it brings."""
        metadata = await self.metadata()
        token_endpoint = metadata["token_endpoint"]
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.config.redirect_uri,
            code_verifier=pending.code_verifier,
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.config.private_key is not None:
            method = PrivateKeyJWT(
                token_endpoint,
                alg=_signing_algorithm(self.config.private_key),
                headers={"kid": self.config.private_key.kid},
            )
            auth = ClientAuth(self.config.client_id, self.config.private_key, method)
            body = add_params_to_qs(body, [("client_id", self.config.client_id)])
        else:
            auth = ClientAuth(self.config.client_id, self.config.client_secret, "client_secret_basic")
        _, headers, body = auth.prepare("POST", token_endpoint, headers, body)
        try:
            async with self._http().post(
                token_endpoint, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                raw = await response.content.read(self._max_bytes + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SignInRefused(f"the token endpoint could not be reached: {type(error).__name__}") from None
        if len(raw) > self._max_bytes:
            raise SignInRefused("the token response is larger than WALLET_OIDC_RESPONSE_MAX_BYTES")
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if status != 200 or not isinstance(answer, dict):
            error_code = answer.get("error") if isinstance(answer, dict) else None
            raise SignInRefused(f"the token endpoint refused the code: {status} {error_code}")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("the token response has no ID token")
        return await self.verify_id_token(id_token, pending.nonce)

    async def verify_id_token(self, id_token: str, nonce: str) -> Identity:
        signed = self._decrypt(id_token)
        try:
            header = jws.extract_compact(signed.encode()).protected
        except (JoseError, ValueError, TypeError):
            raise SignInRefused("the ID token is not a signed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.config.algorithms:
            raise SignInRefused(f"the ID token's algorithm {algorithm!r} is not allowed")
        kid = header.get("kid")
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        try:
            token = jwt.decode(signed, keys, algorithms=list(self.config.algorithms))
        except JoseError as error:
            raise SignInRefused(f"the ID token's signature does not verify: {error.error}") from None
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._now()),
            leeway=self._skew,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise SignInRefused(f"the ID token's claims are not ours: {error.error} {error.description}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise SignInRefused("the ID token names several audiences and another authorized party")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise SignInRefused("the ID token has no subject")
        asked = self.config.acr_values.split()
        if asked and claims.get("acr") not in asked:
            raise SignInRefused("the ID token's acr is not one of the acr_values asked for")
        return Identity(subject=claims["sub"], claims=claims)

    def _decrypt(self, id_token: str) -> str:
        """The signed ID token inside; where an encryption key is set, the token must be encrypted."""
        encrypted = id_token.count(".") == 4
        if self.config.encryption_key is None:
            if encrypted:
                raise SignInRefused("the ID token is encrypted, but no encryption key is configured")
            return id_token
        if not encrypted:
            raise SignInRefused("the ID token must be encrypted to our key")
        try:
            message = jwe.decrypt_compact(id_token, self.config.encryption_key, registry=_REPLICATED_CLAIMS)
        except (JoseError, ValueError, TypeError) as error:
            raise SignInRefused(f"the encrypted ID token does not decrypt with our key: {error}") from None
        if message.plaintext is None:
            raise SignInRefused("the encrypted ID token is empty")
        return message.plaintext.decode()

    async def logout_url(self, state: str) -> str | None:
        """RP-initiated logout at the provider, or None when it offers no ``end_session_endpoint``."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        parameters = [
            ("client_id", self.config.client_id),
            ("post_logout_redirect_uri", self.config.post_logout_redirect_uri),
            ("state", state),
        ]
        return str(add_params_to_uri(endpoint, parameters))
