"""The JWT verifier without a network: scopes claims, token shapes, the JWKS cache's fetch rules, settings."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from litestar.exceptions import NotAuthorizedException

from service.apikeys import generate_key
from service.errors import TokenKeysUnavailable
from service.jwt_auth import FETCH_RETRY_S, JwksVerifier, looks_like_jwt, parse_scopes
from service.settings import SettingsError, load_settings

ISSUER, AUDIENCE = "https://idp.example.test/", "tenant-provisioner"
PRIVATE = ec.generate_private_key(ec.SECP256R1())
JWK = {**jwt.algorithms.ECAlgorithm.to_jwk(PRIVATE.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}


def token(kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc", "iat": now, "exp": now + 60, **claims}
    return jwt.encode(payload, PRIVATE, algorithm="ES256", headers={"kid": kid})


@pytest.mark.parametrize(
    ("claim", "scopes"),
    [
        ("tenants:read tenants:write", {"tenants:read", "tenants:write"}),  # RFC 9068: space-separated
        ("  tenants:read\ttenants:read ", {"tenants:read"}),
        (["tenants:read", "keys:admin"], {"tenants:read", "keys:admin"}),  # scp as a JSON list (Okta)
        ("", set()),
        ([], set()),
        (None, set()),  # no claim: a valid caller with no scope, so 403 on every route
    ],
)
def test_scopes_claim_shapes(claim: Any, scopes: set[str]) -> None:
    assert parse_scopes(claim) == frozenset(scopes)


@pytest.mark.parametrize("claim", [42, {"tenants:read": True}, ["tenants:read", 7], True])
def test_unreadable_scopes_claim_is_refused(claim: Any) -> None:
    with pytest.raises(ValueError):
        parse_scopes(claim)


def test_only_jwt_shaped_tokens_go_to_the_verifier() -> None:
    assert looks_like_jwt(token())
    assert looks_like_jwt(jwt.encode({"sub": "x"}, None, algorithm="none"))  # empty signature: still a JWT, refused later
    assert not looks_like_jwt(generate_key())
    assert not looks_like_jwt("tpk_abc.def.ghi")  # three segments, but no JOSE header
    assert not looks_like_jwt("a.b")


class FakeIssuer:
    """An httpx transport serving one JWKS, counting requests; ``fail`` simulates an outage."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = [JWK]
        self.fail = False
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.fail:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=json.dumps({"keys": self.keys}))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def verifier(issuer: FakeIssuer, clock: Clock, **overrides: Any) -> JwksVerifier:
    options: dict[str, Any] = {
        "jwks_url": "https://idp.example.test/jwks",
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "algorithms": ("RS256", "ES256"),
        "http": httpx.AsyncClient(transport=httpx.MockTransport(issuer)),
        "monotonic": clock,
        **overrides,
    }
    return JwksVerifier(**options)


async def test_principal_from_a_scp_list_claim() -> None:
    v = verifier(FakeIssuer(), Clock(), scopes_claim="scp")
    principal = await v.verify(token(scp=["tenants:read", "tenants:delete"], sub="ci-runner"))
    assert principal.id == f"jwt:{ISSUER}#ci-runner"
    assert principal.kind == "jwt" and principal.name == "ci-runner"
    assert principal.scopes == {"tenants:read", "tenants:delete"}


async def test_made_up_kids_cause_at_most_one_refetch_per_interval() -> None:
    issuer, clock = FakeIssuer(), Clock()
    v = verifier(issuer, clock)
    await v.verify(token())
    for i in range(20):
        with pytest.raises(NotAuthorizedException):
            await v.verify(token(kid=f"made-up-{i}"))
    assert issuer.requests == 2  # the first fetch and one refetch, not 21
    clock.now += 10
    with pytest.raises(NotAuthorizedException):
        await v.verify(token(kid="made-up-again"))
    assert issuer.requests == 3


async def test_concurrent_requests_on_a_cold_cache_share_one_fetch() -> None:
    issuer = FakeIssuer()
    v = verifier(issuer, Clock())
    principals = await asyncio.gather(*(v.verify(token(scope="tenants:read")) for _ in range(25)))
    assert {p.scopes for p in principals} == {frozenset({"tenants:read"})}
    assert issuer.requests == 1


async def test_issuer_outage_is_unavailable_and_not_retried_at_once() -> None:
    issuer, clock = FakeIssuer(), Clock()
    issuer.fail = True
    v = verifier(issuer, clock)
    for _ in range(3):
        with pytest.raises(TokenKeysUnavailable):
            await v.verify(token())
    assert issuer.requests == 1
    issuer.fail = False
    clock.now += FETCH_RETRY_S
    assert (await v.verify(token())).name == "svc"


async def test_keys_outside_the_allowed_algorithms_are_never_used() -> None:
    issuer = FakeIssuer()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    issuer.keys = [{**jwt.algorithms.ECAlgorithm.to_jwk(p384, as_dict=True), "kid": "k1"}]  # an ES384 key
    with pytest.raises(TokenKeysUnavailable):  # no ES256 key in the JWKS: a configuration fault, logged
        await verifier(issuer, Clock(), algorithms=("ES256",)).verify(token())
    # An "oct" (shared-secret) key published by mistake under the same kid is skipped: HS256
    # tokens stay refused, and the real ES256 key behind it is the one used.
    secret = b"s" * 32
    malformed = {"kty": "RSA", "kid": "k0", "n": "!!", "e": "AQAB"}  # skipped too, not fatal to the set
    issuer.keys = [{"kty": "oct", "k": jwt.utils.base64url_encode(secret).decode(), "kid": "k1"}, malformed, JWK]
    v = verifier(issuer, Clock(), algorithms=("ES256",))
    forged = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}, secret, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(NotAuthorizedException):
        await v.verify(forged)
    assert (await v.verify(token())).name == "svc"


def test_settings_need_issuer_and_audience_with_a_jwks_url() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(jwt_jwks_url="https://idp.example.test/jwks")
    assert "TENANTS_JWT_ISSUER" in str(error.value) and "TENANTS_JWT_AUDIENCE" in str(error.value)
    s = load_settings(jwt_jwks_url="https://idp.example.test/jwks", jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    assert s.jwt_algorithms == ("RS256", "ES256") and s.jwt_scopes_claim == "scope"
    assert s.jwt_jwks_cache_s == 300 and s.jwt_leeway_s == 30
    assert load_settings().jwt_jwks_url is None  # JWT off by default


@pytest.mark.parametrize("algorithms", ["none", "RS256,HS256", "HS512", ""])
def test_settings_refuse_shared_secret_and_none_algorithms(algorithms: str) -> None:
    with pytest.raises(SettingsError, match="TENANTS_JWT_ALGORITHMS"):
        load_settings(jwt_algorithms=algorithms)


def test_settings_read_algorithms_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTS_JWT_ALGORITHMS", "PS256, ES256")
    assert load_settings().jwt_algorithms == ("PS256", "ES256")


@pytest.mark.parametrize("url", ["http://idp.example.test/jwks", "ftp://idp.example.test/jwks", "jwks.json"])
def test_settings_refuse_a_jwks_url_an_attacker_could_answer(url: str) -> None:
    with pytest.raises(SettingsError, match="TENANTS_JWT_JWKS_URL"):
        load_settings(jwt_jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
