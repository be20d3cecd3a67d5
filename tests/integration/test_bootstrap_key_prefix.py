"""An operator's bootstrap key that does not start with `tpk_` is shown and stored with no
characters of it: not by `GET /v1/keys`, not by `tenantctl keys list`, not in the registry row;
also when a row written before this rule held its first 10 characters (the start-up rewrites it).
SQLite and PostgreSQL; the service started in-process on the registry, the CLI as a subprocess."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from adapters.registry.api_keys import ApiKeyRecord, ApiKeyStore, hash_key
from adapters.registry.engine import make_engine
from service.apikeys import ALL_SCOPES, BOOTSTRAP_KEY_ID, OPERATOR_KEY_PREFIX
from service.app import create_app
from tests.integration.test_cli import clean_env, free_port, run

SLICE = 8  # no run of this many characters of the key may show (the old prefix showed 10)


def slices(key: str) -> set[str]:
    return {key[i : i + SLICE] for i in range(len(key) - SLICE + 1)}


def leaked(text: str, key: str) -> set[str]:
    return {s for s in slices(key) if s in text}


async def stored_prefix(url: str) -> str:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            query = sa.text("SELECT prefix FROM api_keys WHERE id = :id")
            return str((await conn.execute(query, {"id": BOOTSTRAP_KEY_ID})).scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("old_row", [False, True], ids=["fresh", "row-with-leaked-prefix"])
async def test_a_non_tpk_bootstrap_key_shows_and_stores_none_of_its_characters(
    database_url: str, tmp_path: Path, emulator_endpoint: str, old_row: bool
) -> None:
    key = "op-" + secrets.token_hex(24)  # an operator's choice: >= 32 characters, no tpk_
    if old_row:  # as the previous version registered it: the key's first 10 characters
        engine = make_engine(database_url)
        try:
            await ApiKeyStore(engine).add(
                ApiKeyRecord(
                    id=BOOTSTRAP_KEY_ID,
                    name="bootstrap",
                    prefix=key[:10],
                    key_hash=hash_key(key),
                    scopes=ALL_SCOPES,
                    created_at=datetime.now(UTC),
                )
            )
        finally:
            await engine.dispose()
        assert leaked(await stored_prefix(database_url), key)

    app = create_app(
        database_url=database_url,
        aws_endpoint_url=emulator_endpoint,
        bootstrap_api_key=key,
        var_dir=tmp_path,
        worker_enabled=False,
    )
    async with AsyncTestClient(app) as client:
        response = await client.get("/v1/keys", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        [bootstrap] = [k for k in response.json()["items"] if k["id"] == BOOTSTRAP_KEY_ID]
        assert bootstrap["prefix"] == OPERATOR_KEY_PREFIX
        assert not leaked(response.text, key)
        one = await client.get(f"/v1/keys/{BOOTSTRAP_KEY_ID}", headers={"Authorization": f"Bearer {key}"})
        assert one.status_code == 200 and not leaked(one.text, key), one.text

    env = clean_env(
        TENANTS_DATABASE_URL=database_url,
        TENANTS_VAR_DIR=str(tmp_path / "var"),
        TENANTS_AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",  # the command needs no AWS
    )
    for output in ("json", "table"):
        code, out, err, _ = run(["keys", "list", "--output", output], tmp_path, env)
        assert code == 0, err
        assert BOOTSTRAP_KEY_ID in out and not leaked(out + err, key), out + err
    code, out, _, _ = run(["keys", "list", "--output", "json"], tmp_path, env)
    assert [k["prefix"] for k in json.loads(out) if k["id"] == BOOTSTRAP_KEY_ID] == [OPERATOR_KEY_PREFIX]

    prefix = await stored_prefix(database_url)
    assert prefix == OPERATOR_KEY_PREFIX and not leaked(prefix, key)
