"""JWT bearer tokens end to end: keys generated here, a JWKS served on loopback, the app in-process.

The JWKS server's key set can be swapped (rotation) or made to fail (issuer outage); the
verifier's monotonic clock is replaced by one the tests move on, so cache expiry needs no sleep.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import AsyncTestClient

from adapters.registry.migrate import upgrade
from service.apikeys import ALL_SCOPES
from service.jwt_auth import FETCH_RETRY_S
from service.logs import configure_logging
from tests.helpers import API_KEY, unique_id
from tests.integration.test_api import make_app
from tests.integration.test_auth_matrix import BODIES, OPERATIONS, REQUIRED_SCOPE

ISSUER = "https://idp.example.test/realms/platform"
AUDIENCE = "tenant-provisioner"
CACHE_S = 60.0
GENERIC_401 = "the bearer token is invalid, expired or not meant for this service"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        data = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def token(self, scope: str | None = "tenants:read", *, drop: tuple[str, ...] = (), **claims: Any) -> str:
        now = int(time.time())
        # A subject per token: each is its own caller, so per-credential rate limits stay out of the way.
        sub = f"platform-{uuid.uuid4().hex[:8]}"
        payload: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300}
        if scope is not None:
            payload["scope"] = scope
        payload.update(claims)
        for name in drop:
            payload.pop(name)
        return jwt.encode(payload, self.private, algorithm=self.alg, headers={"kid": self.kid})


@dataclass
class JwksServer:
    """Serves ``{"keys": [...]}`` on 127.0.0.1; ``status`` other than 200 simulates an outage."""

    keys: list[SigningKey] = field(default_factory=list)
    status: int = 200
    fetches: int = 0

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                owner.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in owner.keys]}).encode()
                if owner.status != 200:
                    body = b'{"error": "down"}'
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # keep stderr for the service's own log lines
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Keys:
    rsa: SigningKey
    ec: SigningKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(rsa=SigningKey.rsa("rsa-1"), ec=SigningKey.ec("ec-1"))


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture(scope="module")
async def client(
    jwks: JwksServer, clock: FakeMonotonic, tmp_path_factory: pytest.TempPathFactory, emulator_endpoint: str
) -> AsyncIterator[Any]:
    tmp = tmp_path_factory.mktemp("jwt")
    url = f"sqlite+aiosqlite:///{tmp / 'registry.db'}"
    await upgrade(url)
    app = make_app(
        tmp,
        emulator_endpoint,
        url,
        worker_enabled=False,
        jwt_jwks_url=jwks.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_cache_s=CACHE_S,
    )
    async with AsyncTestClient(app) as c:
        c.app.state.container.jwt.monotonic = clock
        yield c


@pytest.fixture(autouse=True)
def fresh_start(jwks: JwksServer, keys: Keys, clock: FakeMonotonic) -> None:
    """Each test starts with the usual key set served and the verifier's cache long expired."""
    jwks.keys = [keys.rsa, keys.ec]
    jwks.status = 200
    clock.advance(3600)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body(tenant_id: str) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "tier": "basic", "display_name": f"Tenant {tenant_id}"}


def assert_refused(response: Any, token: str, detail: str = GENERIC_401) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == detail
    assert token not in response.text


@pytest.mark.parametrize("kind", ["rsa", "ec"])
async def test_read_scope_reads_but_may_not_write(client: Any, keys: Keys, kind: str) -> None:
    token = getattr(keys, kind).token("tenants:read")
    tiers = await client.get("/v1/tiers", headers=bearer(token))
    assert tiers.status_code == 200, tiers.text
    assert "basic" in [t["name"] for t in tiers.json()]
    response = await client.post("/v1/tenants", json=body(unique_id("jwt")), headers=bearer(token))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "tenants:write" in response.json()["detail"]


async def test_write_scope_onboards_and_read_scope_sees_the_tenant(client: Any, keys: Keys) -> None:
    tenant_id = unique_id("jwt")
    response = await client.post("/v1/tenants", json=body(tenant_id), headers=bearer(keys.rsa.token("tenants:write")))
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/tenants/{tenant_id}"
    seen = await client.get(f"/v1/tenants/{tenant_id}", headers=bearer(keys.ec.token("tenants:read")))
    assert seen.status_code == 200 and seen.json()["status"] == "provisioning"


@pytest.mark.parametrize("route", [(m, p) for m, p, _ in OPERATIONS], ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
async def test_token_scopes_open_exactly_their_routes(client: Any, keys: Keys, route: tuple[str, str]) -> None:
    method, path = route
    required = REQUIRED_SCOPE[route]
    url = path.replace("{tenant_id}", "jwt-matrix").replace("{key_id}", "key_jwtmatrix")
    for scopes in [*([scope] for scope in ALL_SCOPES), list(ALL_SCOPES)]:
        token = keys.ec.token(" ".join(scopes))
        response = await client.request(method, url, json=BODIES.get(route, {}), headers=bearer(token))
        if required in scopes:
            assert response.status_code not in (401, 403), (scopes, response.text)
        else:
            assert response.status_code == 403, (scopes, response.text)


async def test_api_keys_still_work_next_to_jwts(client: Any) -> None:
    response = await client.get("/v1/tiers", headers=bearer(API_KEY))
    assert response.status_code == 200
    unknown = "tpk_" + "x" * 43
    assert_refused(await client.get("/v1/tiers", headers=bearer(unknown)), unknown, "unknown, revoked or expired API key")


async def test_an_expiry_within_the_leeway_is_accepted(client: Any, keys: Keys) -> None:
    token = keys.rsa.token(exp=int(time.time()) - 10)  # leeway is 30 s by default
    assert (await client.get("/v1/tiers", headers=bearer(token))).status_code == 200


def _unsigned(claims: dict[str, Any], kid: str) -> str:
    return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})


def _refused_tokens(keys: Keys) -> dict[str, str]:
    now = int(time.time())
    impostor = SigningKey(keys.rsa.kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "platform-ci", "exp": now + 300, "scope": "tenants:read"}
    return {
        "expired": keys.rsa.token(iat=now - 600, exp=now - 120),
        "wrong issuer": keys.rsa.token(iss="https://evil.example.test/"),
        "wrong audience": keys.rsa.token(aud="some-other-api"),
        "another key, same kid": impostor.token(),
        "alg none": _unsigned(claims, keys.rsa.kid),
        # HS256 keyed with a value anyone can read from the JWKS (the algorithm-confusion attack).
        "HS256": jwt.encode(claims, keys.rsa.jwk()["n"], algorithm="HS256", headers={"kid": keys.rsa.kid}),
        "missing sub": keys.rsa.token(drop=("sub",)),
        "blank sub": keys.rsa.token(sub=" "),
        "missing exp": keys.rsa.token(drop=("exp",)),
        "not yet valid": keys.rsa.token(nbf=now + 600),
        "issued in the future": keys.rsa.token(iat=now + 600),
        "unknown kid": SigningKey("kid-nobody-published", "RS256", impostor.private).token(),
        "scope claim of the wrong type": keys.rsa.token(scope=42),
    }


async def test_every_bad_token_is_401_without_echoing_it(client: Any, keys: Keys) -> None:
    for case, token in _refused_tokens(keys).items():
        for method, path in (("GET", "/v1/tiers"), ("POST", "/v1/tenants")):
            response = await client.request(method, path, json=body(unique_id("jwt")), headers=bearer(token))
            assert response.status_code == 401, (case, method, response.text)
            assert_refused(response, token)


async def test_rotated_key_is_picked_up_at_once_and_the_old_one_refused(
    client: Any, keys: Keys, jwks: JwksServer
) -> None:
    assert (await client.get("/v1/tiers", headers=bearer(keys.rsa.token()))).status_code == 200
    rotated = SigningKey.ec(f"ec-{uuid.uuid4().hex[:8]}")
    jwks.keys = [rotated]
    before = jwks.fetches
    # Unknown kid on a fresh cache: the verifier fetches the JWKS again instead of refusing.
    assert (await client.get("/v1/tiers", headers=bearer(rotated.token()))).status_code == 200
    assert jwks.fetches == before + 1
    # That fetch no longer listed the old key.
    assert_refused(await client.get("/v1/tiers", headers=bearer(old := keys.rsa.token())), old)


async def test_a_withdrawn_key_is_trusted_until_the_cache_expires(
    client: Any, keys: Keys, jwks: JwksServer, clock: FakeMonotonic
) -> None:
    old, new = keys.rsa, SigningKey.ec(f"ec-{uuid.uuid4().hex[:8]}")
    jwks.keys = [old, new]
    assert (await client.get("/v1/tiers", headers=bearer(old.token()))).status_code == 200
    jwks.keys = [new]
    clock.advance(CACHE_S - 1)
    assert (await client.get("/v1/tiers", headers=bearer(old.token()))).status_code == 200
    clock.advance(2)
    token = old.token()
    assert_refused(await client.get("/v1/tiers", headers=bearer(token)), token)
    assert (await client.get("/v1/tiers", headers=bearer(new.token()))).status_code == 200


async def test_jwks_outage_is_503_with_retry_after_then_recovers(
    client: Any, keys: Keys, jwks: JwksServer, clock: FakeMonotonic
) -> None:
    jwks.status = 500
    token = keys.rsa.token()
    response = await client.get("/v1/tiers", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == "token_keys_unavailable"
    assert token not in response.text
    # A token that fails its own checks is still a 401: the outage does not hide a bad credential.
    expired = keys.rsa.token(exp=int(time.time()) - 600)
    assert_refused(await client.get("/v1/tiers", headers=bearer(expired)), expired)
    # Within the retry delay the issuer is not asked again.
    fetches = jwks.fetches
    assert (await client.get("/v1/tiers", headers=bearer(token))).status_code == 503
    assert jwks.fetches == fetches
    jwks.status = 200
    clock.advance(FETCH_RETRY_S)
    assert (await client.get("/v1/tiers", headers=bearer(token))).status_code == 200


async def test_tokens_never_reach_the_logs(
    client: Any, keys: Keys, jwks: JwksServer, clock: FakeMonotonic, capfd: pytest.CaptureFixture[str]
) -> None:
    saved_structlog, saved_handlers = structlog.get_config(), logging.getLogger().handlers[:]
    configure_logging("json", "DEBUG")
    try:
        good = keys.rsa.token("tenants:write")
        sent = [good, *_refused_tokens(keys).values()]
        assert (await client.post("/v1/tenants", json=body(unique_id("jwt")), headers=bearer(good))).status_code == 202
        for token in sent[1:]:
            assert (await client.get("/v1/tiers", headers=bearer(token))).status_code == 401
        jwks.status = 500
        clock.advance(3600)
        down = keys.ec.token()
        sent.append(down)
        assert (await client.get("/v1/tiers", headers=bearer(down))).status_code == 503
        captured = capfd.readouterr()
    finally:
        structlog.configure(**saved_structlog)
        logging.getLogger().handlers[:] = saved_handlers
    logs = captured.out + captured.err
    assert '"event": "jwt_rejected"' in logs and '"event": "jwks_fetch_failed"' in logs  # the capture works
    for token in sent:
        signature = token.split(".")[2]
        assert token not in logs
        assert not signature or signature not in logs
