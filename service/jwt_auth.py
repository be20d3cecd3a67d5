"""JWT bearer tokens from an OAuth2 authorization server (client credentials), checked against its JWKS.

A token is accepted when it is signed by a key of the configured JWKS with an allowed public-key
algorithm, and its ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` hold (with leeway); ``sub`` and
``exp`` are required. Its scopes come from one claim (RFC 9068 ``scope``: a space-separated
string; ``scp`` lists are accepted too) and become a :class:`Principal` like an API key's.

Keys are cached for ``TENANTS_JWT_JWKS_CACHE_S`` and never trusted longer: a key the issuer
removes stops working within that time. A ``kid`` missing from a fresh cache makes the verifier
fetch the JWKS again at once (the issuer may have rotated), at most once per
``REFETCH_INTERVAL_S``, so tokens with made-up ``kid`` values cannot turn it into a load
generator against the issuer.

Statuses: any check failing is 401 with one generic message (it never echoes the token). When the
JWKS cannot be fetched while a token that passes every check but the signature needs it, the answer
is 503 with ``Retry-After`` (service/errors.py): the outage is the service's, and a 401 would tell
a correctly configured client to throw away a good token or page the wrong team.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import structlog
from litestar.exceptions import NotAuthorizedException

from service.bodies import decode_json
from service.errors import BodyRejected, TokenKeysUnavailable
from service.principal import Principal
from service.settings import Settings

log = structlog.get_logger("tenants.auth")

REFETCH_INTERVAL_S = 10.0
# After a failed fetch, requests that need the JWKS get 503 without another attempt for this long
# (the same as the Retry-After of a 503), so an issuer outage does not stack up time-outs.
FETCH_RETRY_S = 5.0
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 512 * 1024
REJECTED = "the bearer token is invalid, expired or not meant for this service"

# Three base64url segments (padding tolerated, as some issuers send it); the signature of an
# "alg": "none" token is empty, and such a token must still be handled, and refused, as a JWT.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*")
_REQUIRED = ["exp", "sub", "iss", "aud"]
_CLAIM_CHECKS: dict[str, Any] = {
    "verify_exp": True,
    "verify_nbf": True,
    "verify_iat": True,
    "verify_iss": True,
    "verify_aud": True,
    "verify_sub": True,
    "require": _REQUIRED,
}


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated base64url segments whose first is a JSON object (a JOSE header).

    API keys (``tpk_`` + base64url) have no dots, so they never match.
    """
    if not _JWT_SHAPE.fullmatch(token):
        return False
    segment = token.split(".", 1)[0].rstrip("=")
    try:
        # decode_json: a header of nested brackets is refused before it reaches Python's recursion limit
        header = decode_json(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (BodyRejected, binascii.Error):
        return False
    return isinstance(header, dict)


def parse_scopes(value: object) -> frozenset[str]:
    """The scopes of a ``scope``/``scp`` claim: a space-separated string (RFC 8693 section 4.2,
    RFC 9068 section 2.2.3) or a JSON list of strings. No claim means no scopes. Any other shape
    raises ``ValueError``: a token whose grant cannot be read is refused, not read as empty."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(scope for item in value for scope in item.split())
    raise ValueError("scopes claim is neither a string nor a list of strings")


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class JwksVerifier:
    """Verifies JWT access tokens against one issuer's JWKS, fetched with its own HTTP client."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...],
        scopes_claim: str = "scope",
        cache_s: float = 300.0,
        leeway_s: float = 30.0,
        refetch_interval_s: float = REFETCH_INTERVAL_S,
        http: httpx.AsyncClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.scopes_claim = scopes_claim
        self.cache_s = cache_s
        self.leeway_s = leeway_s
        self.refetch_interval_s = refetch_interval_s
        # Replaceable so that tests can move time on instead of sleeping.
        self.monotonic = monotonic
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._refetched_at: float | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> JwksVerifier | None:
        if not settings.jwt_jwks_url:
            return None
        assert settings.jwt_issuer and settings.jwt_audience  # Settings requires both with a URL
        return cls(
            jwks_url=settings.jwt_jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=settings.jwt_algorithms,
            scopes_claim=settings.jwt_scopes_claim,
            cache_s=settings.jwt_jwks_cache_s,
            leeway_s=settings.jwt_leeway_s,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def verify(self, token: str) -> Principal:
        """The caller, or ``NotAuthorizedException`` (401), or ``TokenKeysUnavailable`` (503)."""
        try:
            return await self._verify(token)
        except _Rejected as rejected:
            log.info("jwt_rejected", reason=rejected.reason)
            raise NotAuthorizedException(REJECTED) from None

    async def _verify(self, token: str) -> Principal:
        # Every check but the signature first: a token that fails them is refused without a
        # JWKS fetch, and so stays a 401 even while the issuer is down.
        unverified = self._decode(token, key=None)
        header = unverified["header"]
        if header.get("alg") not in self.algorithms:
            raise _Rejected("algorithm_not_allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _Rejected("no_kid")
        key = await self._key(kid)
        if key is None:
            raise _Rejected("unknown_kid")
        if key.algorithm_name != header["alg"]:
            raise _Rejected("algorithm_not_the_keys")  # an RS256 key never checks a PS256 or ES256 token
        claims: dict[str, Any] = self._decode(token, key=key)["payload"]
        subject = claims["sub"]
        if not subject.strip():
            raise _Rejected("empty_sub")
        try:
            scopes = parse_scopes(claims.get(self.scopes_claim))
        except ValueError:
            raise _Rejected("malformed_scopes") from None
        return Principal(id=principal_id(str(claims["iss"]), subject), kind="jwt", scopes=scopes, name=subject)

    def _decode(self, token: str, *, key: jwt.PyJWK | None) -> dict[str, Any]:
        try:
            return jwt.decode_complete(
                token,
                key=key if key is not None else "",
                algorithms=list(self.algorithms),
                options={**_CLAIM_CHECKS, "verify_signature": key is not None},
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
            )
        except jwt.PyJWTError as exc:
            raise _Rejected(type(exc).__name__) from None

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self.monotonic() - self._fetched_at < self.cache_s

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        if self._fresh() and kid in self._keys:
            return self._keys[kid]
        async with self._lock:  # one fetch at a time; the others use its result
            now = self.monotonic()
            if self._fresh():
                if kid in self._keys:
                    return self._keys[kid]
                # Unknown kid on a fresh set: the issuer may have rotated. Look again, rate-limited.
                if self._refetched_at is not None and now - self._refetched_at < self.refetch_interval_s:
                    return None
                self._refetched_at = now
            elif self._failed_at is not None and now - self._failed_at < FETCH_RETRY_S:
                raise _unavailable()
            await self._refresh()
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            document = await self._fetch()
            keys = self._signing_keys(document)
        except (httpx.HTTPError, ValueError) as exc:
            self._failed_at = self.monotonic()
            log.warning("jwks_fetch_failed", error=type(exc).__name__, detail=_safe_detail(exc))
            raise _unavailable() from None
        self._keys, self._fetched_at, self._failed_at = keys, self.monotonic(), None
        log.info("jwks_fetched", kids=sorted(keys))

    async def _fetch(self) -> Any:
        async with self._http.stream("GET", self.jwks_url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)

    def _signing_keys(self, document: Any) -> dict[str, jwt.PyJWK]:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set")
        keys: dict[str, jwt.PyJWK] = {}
        for data in document["keys"]:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig" or not isinstance(data.get("kid"), str):
                continue
            try:
                key = jwt.PyJWK(data)
            except jwt.PyJWTError:
                continue  # a key type or curve this service does not use
            # A key bound to an algorithm outside the allow-list (an "oct" key means HS256) is
            # never used, whatever a token's header asks for.
            if key.algorithm_name in self.algorithms:
                keys.setdefault(data["kid"], key)
        if not keys:
            raise ValueError(f"no signing key for {', '.join(self.algorithms)}")
        return keys


def _unavailable() -> TokenKeysUnavailable:
    return TokenKeysUnavailable("the token issuer's signing keys cannot be fetched; retry later")


def _safe_detail(exc: Exception) -> str:
    # Our own ValueErrors are short and safe; a JSON error names only a position; httpx errors
    # can carry the URL, which may hold credentials, so they are named by type only.
    return str(exc)[:200] if isinstance(exc, ValueError) else ""


MAX_PRINCIPAL_ID = 255  # the registry's column for principal ids (Idempotency-Key scope, audit)


def principal_id(issuer: str, subject: str) -> str:
    """``jwt:<iss>#<sub>``, or a digest of it when that would not fit the registry's columns."""
    plain = f"jwt:{issuer}#{subject}"
    if len(plain) <= MAX_PRINCIPAL_ID:
        return plain
    return "jwt:sha256:" + hashlib.sha256(plain.encode()).hexdigest()
