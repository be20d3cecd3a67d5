"""`tenantctl keys`: create, list and revoke API keys, straight in the registry.

Like `tenantctl db upgrade`, these need only ``TENANTS_DATABASE_URL`` (or the SQLite file under
``TENANTS_VAR_DIR``): no AWS client, no emulator, no running service.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from service.apikeys import ALL_SCOPES, ExpiryError, key_out, parse_expiry
from service.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from adapters.registry.api_keys import ApiKeyStore

T = TypeVar("T")
_NAME_RE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_COLUMNS = ("id", "name", "prefix", "scopes", "status", "created_at", "expires_at", "revoked_at", "last_used_at")


class RegistryFailed(click.ClickException):
    exit_code = 2


def _with_store(work: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    from adapters.registry.api_keys import ApiKeyStore
    from adapters.registry.engine import make_engine
    from domain.errors import DomainError

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None

    async def run() -> T:
        engine = make_engine(settings.effective_database_url)
        try:
            return await work(ApiKeyStore(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        raise RegistryFailed(f"{exc.message} (is the registry migrated? run `tenantctl db upgrade`)") from None


def _name(_: click.Context, __: click.Parameter, value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise click.BadParameter("1-200 characters, no control characters")
    return value


def _view(record: Any) -> dict[str, Any]:
    return key_out(record, datetime.now(UTC))


@click.group()
def keys() -> None:
    """API keys: each with scopes, stored only as a hash and a short public prefix."""


@keys.command("create")
@click.option("--name", required=True, callback=_name, help="Who or what the key is for.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(ALL_SCOPES),
    help="A scope to grant; repeat for several.",
)
@click.option(
    "--expires",
    metavar="30d|12h|90m|2w|RFC3339",
    default=None,
    help="From now (30d, 12h, 90m, 2w) or a time such as 2027-01-31T00:00:00Z. Default: never.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def create(name: str, scopes: tuple[str, ...], expires: str | None, output: str) -> None:
    """Create a key and print it, once: only its SHA-256 is stored.

    With the text output, stdout is the key alone (KEY=$(tenantctl keys create ...)) and the
    details go to stderr; with --output json, stdout is one JSON object that includes `key`.
    """
    from service.apikeys import issue_key

    now = datetime.now(UTC)
    try:
        expires_at = parse_expiry(expires, now) if expires is not None else None
    except ExpiryError as exc:
        raise click.BadParameter(str(exc), param_hint="'--expires'") from None
    issued = issue_key(name, scopes, now, expires_at)

    async def work(store: ApiKeyStore) -> None:
        await store.add(issued.record)

    _with_store(work)
    view = _view(issued.record)
    if output == "json":
        click.echo(json.dumps({**view, "key": issued.key}, indent=2))
        return
    click.echo(issued.key)
    click.echo(
        f"created {view['id']} ({name}), prefix {view['prefix']}, scopes {' '.join(view['scopes'])}, "
        f"expires {view['expires_at'] or 'never'}.\nThe key is shown only this once: store it now.",
        err=True,
    )


@keys.command("list")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_(output: str) -> None:
    """Every key, revoked and expired ones too. Never a key or its hash."""

    async def work(store: ApiKeyStore) -> list[dict[str, Any]]:
        return [_view(r) for r in await store.list()]

    views = _with_store(work)
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    from service import cli_output

    table = cli_output.table(*_COLUMNS)
    for view in views:
        table.add_row(*(_cell(view[c]) for c in _COLUMNS))
    cli_output.print_table(table)
    click.echo(f"{len(views)} key(s)", err=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key: from now on it answers 401. Exit status 1 when no key has this id."""

    async def work(store: ApiKeyStore) -> tuple[bool, Any]:
        changed = await store.revoke(key_id, datetime.now(UTC))
        return changed, await store.get(key_id)

    changed, record = _with_store(work)
    if record is None:
        click.echo(f"Error: no API key with id {key_id!r} (see `tenantctl keys list`)", err=True)
        sys.exit(1)
    if changed:
        click.echo(f"revoked {record.id} ({record.name})", err=True)
    else:
        click.echo(f"{record.id} ({record.name}) was already revoked at {record.revoked_at.isoformat()}", err=True)
