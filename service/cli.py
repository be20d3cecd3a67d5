"""`tenantctl`: serve the API, run a worker, run the emulator, migrate the registry, sweep orphans."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from domain.errors import TemplateError
from service.keys_cli import keys
from service.settings import Settings, SettingsError, load_settings
from service.tenants_cli import tenants

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from adapters.registry.api_keys import ApiKeyRecord
    from adapters.registry.outbox import OutboxStore
    from domain.sweep import SweepReport


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Tenant identity provisioner."""


@main.command()
@click.option("--dev", is_flag=True, help="Readable console logs, a generated API key under var/, and a banner.")
def serve(dev: bool) -> None:
    """The API plus an in-process worker."""
    import uvicorn

    from service.apikeys import local_bootstrap_key
    from service.app import create_app
    from service.logs import configure_logging
    from service.wiring import Container

    settings = _settings()
    overrides: dict[str, object] = {}
    key_source = "TENANTS_BOOTSTRAP_API_KEY"
    if dev:
        overrides["log_format"] = "console"
        if settings.bootstrap_api_key is None:
            overrides["bootstrap_api_key"] = local_bootstrap_key(settings.var_dir)
            key_source = str(settings.var_dir / "bootstrap-api-key")
        settings = Settings(**{**settings.model_dump(), **overrides})
    configure_logging(settings.log_format, settings.log_level)
    try:
        container = Container.from_settings(settings)
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from None
    # Registered before the server starts, so that a key another key already has is a one-line
    # error rather than a failed lifespan, and the banner knows whether the key works.
    container.bootstrap_key = _register_bootstrap_key(settings, key_source)
    app = create_app(settings, container=container, freeze_heap=True)
    if dev:
        url = f"http://{settings.host}:{settings.port}"
        click.echo(
            f"\n  Tenant identity provisioner on {url} (AWS: {settings.aws_mode}, registry: "
            f"{settings.effective_database_url.split('://')[0]})\n"
            + _banner_key(settings, container.bootstrap_key, key_source, url),
            err=True,
        )
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on")


def _register_bootstrap_key(settings: Settings, key_source: str) -> ApiKeyRecord | None:
    from datetime import UTC, datetime

    from adapters.registry.api_keys import ApiKeyStore
    from adapters.registry.engine import make_engine
    from domain.errors import ApiKeyConflict, DomainError
    from service.wiring import register_bootstrap_key

    if settings.bootstrap_api_key is None:
        return None
    key = settings.bootstrap_api_key.get_secret_value()

    async def run() -> ApiKeyRecord:
        engine = make_engine(settings.effective_database_url)
        try:
            return await register_bootstrap_key(ApiKeyStore(engine), key, datetime.now(UTC))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except ApiKeyConflict as exc:
        raise click.ClickException(
            f"the bootstrap API key ({key_source}) cannot be registered: {exc.message}; "
            "give the bootstrap key a value of its own"
        ) from None
    except DomainError as exc:
        raise click.ClickException(f"{exc.message} (is the registry migrated? run `tenantctl db upgrade`)") from None


def _banner_key(settings: Settings, record: ApiKeyRecord | None, key_source: str, url: str) -> str:
    """The banner's key lines: the key and a first curl when the key works; else why not and how
    to get one that does (a revoked bootstrap key stays revoked: the operator meant it)."""
    from service.apikeys import ALL_SCOPES

    if record is not None and record.revoked_at is None and settings.bootstrap_api_key is not None:
        key = settings.bootstrap_api_key.get_secret_value()
        return (
            f"  API key ({key_source}): {key}\n"
            f"  Try:\n"
            f"    curl -s -X POST {url}/v1/tenants -H 'Authorization: Bearer {key}' \\\n"
            f"      -H 'Content-Type: application/json' -H 'Prefer: wait=30' \\\n"
            f"      -d '{{\"tenant_id\": \"acme\", \"tier\": \"standard\", \"display_name\": \"Acme Corp\"}}'\n"
        )
    when = f" at {record.revoked_at.isoformat(timespec='seconds')}" if record and record.revoked_at else ""
    renew = (
        f"set {key_source} to a new value"
        if key_source.startswith("TENANTS_")
        else f"delete {key_source} (a new key is generated)"
    )
    scopes = " ".join(f"--scope {scope}" for scope in ALL_SCOPES)
    return (
        f"  API key ({key_source}): revoked{when}; it stays revoked across restarts.\n"
        f"  For a working key, create one:\n"
        f"    tenantctl keys create --name me {scopes}\n"
        f"  or {renew} and start again: a new bootstrap value is a new key.\n"
    )


@main.command()
def worker() -> None:
    """A worker only: claims provisioning and teardown jobs from the registry, and delivers the
    lifecycle events of the outbox when any destination is configured."""
    from service.logs import configure_logging
    from service.runtime import freeze_startup_heap
    from service.wiring import Container

    settings = Settings(**{**_settings().model_dump(), "worker_enabled": False})
    configure_logging(settings.log_format, settings.log_level)

    async def run() -> None:
        container = Container.from_settings(settings)
        await container.start()
        freeze_startup_heap()  # service/runtime.py: collections then skip what start-up made
        worker = container.make_worker()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker.start()
        container.start_dispatcher()
        try:
            await stop.wait()
        finally:
            await worker.stop()
            await container.stop()

    from domain.errors import DomainError

    try:
        asyncio.run(run())
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from None
    except DomainError as exc:  # e.g. a bootstrap key value another key has: a line, no traceback
        raise click.ClickException(f"the worker could not start: {exc.code}: {exc.message}") from None


class SweepFailed(click.ClickException):
    exit_code = 2


@main.command()
@click.option("--apply", "apply_", is_flag=True, help="Delete the orphans found. Without it nothing is changed.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def sweep(apply_: bool, output: str) -> None:
    """Orphans: AWS resources with the ownership tag that the registry does not account for.

    Lists them (and with --apply deletes them) in this deployment's cell. Tenants still
    provisioning or deprovisioning are skipped. Exit status: 0 when no orphan remains (none found,
    or all deleted), 1 when orphans remain (a dry run found some, or a delete failed), 2 when the
    sweep could not run.
    """
    from domain.errors import DomainError
    from service.logs import configure_logging
    from service.wiring import Container

    settings = Settings(**{**_settings().model_dump(), "worker_enabled": False})
    configure_logging(settings.log_format, settings.log_level)

    async def run() -> SweepReport:
        container = Container.from_settings(settings)
        try:
            await container.start()
            assert container.sweep is not None
            return await container.sweep(apply=apply_)
        finally:
            await container.stop()

    try:
        report = asyncio.run(run())
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from None
    except DomainError as exc:
        raise SweepFailed(f"the sweep could not run: {exc.code}: {exc.message}") from None
    if output == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_sweep_table(report)
    sys.exit(1 if report.remaining else 0)


def _sweep_summary(report: SweepReport) -> str:
    where = f"account {report.cell.account_id}, {report.cell.region}"
    orphans, remaining, skipped = len(report.orphans), len(report.remaining), len(report.skipped)
    text = f"{orphans} orphan(s) in {where}"
    if report.applied:
        text += f"; {orphans - remaining} deleted, {remaining} remaining"
    elif orphans:
        text += "; dry run, nothing changed (run with --apply to delete them)"
    if skipped:
        text += f"; {skipped} resource(s) skipped"
    return text


def _print_sweep_table(report: SweepReport) -> None:
    from service import cli_output

    if report.entries:
        table = cli_output.table("kind", "id", "name", "tenant", "reason", "action")
        for e in report.entries:
            table.add_row(e.kind, e.id, e.name, e.tenant_id or "-", e.reason, e.action)
        cli_output.print_table(table)
    click.echo(_sweep_summary(report))


@main.command()
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Keep it on loopback.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Added to every call.")
@click.option(
    "--fault-rate",
    type=click.FloatRange(min=0, max=1),
    default=0.0,
    show_default=True,
    help="Share of AWS calls that fail: throttled, 5xx, or executed with the response lost.",
)
@click.option("--fault-seed", type=int, default=None, help="Seed for the fault draws, to reproduce a run.")
@click.option(
    "--quotas",
    type=click.Choice(["cognito"]),
    default=None,
    help="Enforce Cognito's request rates per category (TooManyRequestsException beyond them).",
)
def emulator(
    port: int, host: str, latency_ms: float, fault_rate: float, fault_seed: int | None, quotas: str | None
) -> None:
    """The local AWS emulator (moto plus what it lacks), standalone."""
    from adapters.aws.emulator.server import serve_forever

    serve_forever(host, port, latency_ms=latency_ms, fault_rate=fault_rate, fault_seed=fault_seed, quotas=quotas)


@main.group()
def db() -> None:
    """The registry's schema."""


@db.command()
def upgrade() -> None:
    """Alembic upgrade to head."""
    from adapters.registry.migrate import upgrade as run_upgrade

    settings = _settings()
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds the registry and keys
    asyncio.run(run_upgrade(url))
    click.echo("registry schema at head", err=True)


main.add_command(keys)
main.add_command(tenants)


@main.group()
def events() -> None:
    """The lifecycle event outbox: deliveries waiting, delivered and given up (dead)."""


def _outbox_store() -> tuple[AsyncEngine, OutboxStore]:
    from adapters.registry.engine import make_engine
    from adapters.registry.outbox import OutboxStore

    engine = make_engine(_settings().effective_database_url)
    return engine, OutboxStore(engine)


@events.command("list")
@click.option("--state", type=click.Choice(["pending", "delivered", "dead"]), default=None, help="Only this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def events_list(state: str | None, limit: int) -> None:
    """Outbox deliveries, newest first, one JSON object a line (destinations by name, no URL)."""

    async def run() -> list[dict[str, object]]:
        engine, store = _outbox_store()
        try:
            return await store.rows(state=state, limit=limit)
        finally:
            await engine.dispose()

    for row in asyncio.run(run()):
        click.echo(json.dumps(row, default=str, sort_keys=True))


@events.command("retry")
@click.option("--destination", default=None, help="Only this destination (e.g. eventbridge:<bus>, webhook:<hash>).")
@click.option("--event-id", default=None, help="Only this event.")
def events_retry(destination: str | None, event_id: str | None) -> None:
    """Send dead deliveries again: they become pending and due now, their attempts reset."""
    from datetime import UTC, datetime

    async def run() -> int:
        engine, store = _outbox_store()
        try:
            return await store.retry_dead(datetime.now(UTC), destination=destination, event_id=event_id)
        finally:
            await engine.dispose()

    click.echo(f"{asyncio.run(run())} dead deliveries queued again", err=True)


@main.group()
def openapi() -> None:
    """The OpenAPI document."""


@openapi.command("export")
@click.option("--out", type=click.Path(path_type=Path), default=Path("openapi/openapi.json"), show_default=True)
def export(out: Path) -> None:
    """Write the document the app serves at /schema/openapi.json, and a YAML copy beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    document = openapi_document()
    out.write_text(document + "\n")
    yaml_out = out.with_suffix(".yaml")
    yaml_out.write_text(openapi_yaml(document))
    click.echo(f"wrote {out} and {yaml_out}", err=True)


def openapi_document() -> str:
    from service.app import create_app

    app = create_app(Settings())
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True)


def openapi_yaml(document: str) -> str:
    """The same document (JSON text, as ``openapi_document`` returns it) as YAML."""
    import yaml

    return yaml.safe_dump(json.loads(document), sort_keys=True, allow_unicode=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
