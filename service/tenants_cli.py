"""`tenantctl tenants`: list, show, create, delete and retry tenants through a running service.

Unlike `tenantctl keys`, these talk to the HTTP API (API.md) only: ``--url`` and ``--api-key``
(``TENANTS_URL``, ``TENANTS_API_KEY``), never the registry or AWS directly.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
import httpx

from service import cli_output

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_AUTH = 5
EXIT_UNAVAILABLE = 6

EXIT_CODES_HELP = """\b
Exit status:
  0  success
  1  the operation ended badly (tenant failed, teardown failed, a bulk delete failed)
  2  usage error or invalid input (HTTP 400/422)
  3  not found (HTTP 404)
  4  conflict (HTTP 409)
  5  authentication or authorization (HTTP 401/403)
  6  service unreachable, HTTP 5xx/429, or --wait timed out"""

STATUSES = ("provisioning", "active", "failed", "deprovisioning", "deleted")
_POLL_S = 0.2
_REQUEST_TIMEOUT_S = 30.0


class CliError(click.ClickException):
    """An error with the exit status a script can branch on."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _exit_code_for(status: int) -> int:
    if status in (400, 422):
        return EXIT_USAGE
    if status == 404:
        return EXIT_NOT_FOUND
    if status == 409:
        return EXIT_CONFLICT
    if status in (401, 403):
        return EXIT_AUTH
    if status >= 500 or status == 429:
        return EXIT_UNAVAILABLE
    return EXIT_USAGE


class Api:
    """The HTTP API with one key; errors become :class:`CliError` with the problem's ``detail``."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url.rstrip("/")
        self._key = api_key
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=_REQUEST_TIMEOUT_S
        )

    def close(self) -> None:
        self._http.close()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def call(self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(
                f"the service at {self.url} did not answer in {_REQUEST_TIMEOUT_S:g} s", EXIT_UNAVAILABLE
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the service at {self.url} ({type(exc).__name__})", EXIT_UNAVAILABLE) from None
        if response.status_code >= 400 and response.status_code not in allow:
            raise CliError(self._scrub(_problem_text(response)), _exit_code_for(response.status_code))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


def _problem_text(response: httpx.Response) -> str:
    detail = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")  # a 422's detail already names each field
    return f"{detail or response.reason_phrase or 'request failed'} (HTTP {response.status_code})"


def _connection(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every subcommand takes: where the service is, the key, the output format."""
    command = click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="json prints the API's objects as they are.",
    )(command)
    command = click.option(
        "--api-key",
        envvar="TENANTS_API_KEY",
        required=True,
        show_envvar=True,
        help="API key (Bearer). Prefer the environment variable: a flag shows in the process list.",
    )(command)
    command = click.option(
        "--url",
        envvar="TENANTS_URL",
        default="http://127.0.0.1:8000",
        show_default=True,
        show_envvar=True,
        help="Base URL of the running service.",
    )(command)
    return command


@contextmanager
def _api(url: str, api_key: str) -> Iterator[Api]:
    api = Api(url, api_key)
    try:
        yield api
    finally:
        api.close()


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _tenants_table(tenants: list[dict[str, Any]], *, stderr: bool = False) -> None:
    table = cli_output.table("tenant_id", "tier", "status", "display_name", "updated_at", "last_error")
    for t in tenants:
        error = t.get("last_error") or {}
        table.add_row(
            t["tenant_id"],
            t["tier"],
            t["status"],
            t.get("display_name") or "",
            t.get("updated_at") or "",
            error.get("code") or "-",
        )
    cli_output.print_table(table, stderr=stderr)


def _tenant_table(tenant: dict[str, Any]) -> None:
    table = cli_output.table("field", "value", show_header=False)
    for key in ("tenant_id", "display_name", "tier", "status", "admin_email", "created_at", "updated_at"):
        table.add_row(key, str(tenant.get(key) or "-"))
    error = tenant.get("last_error")
    if error:
        table.add_row("last_error", f"{error.get('code')}: {error.get('message')}")
    for key, value in (tenant.get("resources") or {}).items():
        table.add_row(key, _cell(value))
    settings = tenant.get("settings") or {}
    for key, value in settings.items():
        if key == "identity_providers":
            value = sorted(value)  # names; their details are in --output json
        table.add_row(key, _cell(value))
    if tenant.get("settings_status"):
        table.add_row("settings_status", str(tenant["settings_status"]))
    cli_output.print_table(table)


def _cell(value: Any) -> str:
    """One table cell: maps as `key=value` lines, lists one item per line, nothing as "-"."""
    if value is None or value == {} or value == []:
        return "-"
    if isinstance(value, dict):
        return "\n".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def _show(tenant: dict[str, Any], output: str) -> None:
    if output == "json":
        _print_json(tenant)
    else:
        _tenant_table(tenant)


def _list_all(api: Api, *, status: str | None, tier: str | None, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if tier:
            params["tier"] = tier
        if cursor:
            params["cursor"] = cursor
        page = api.json("GET", "/v1/tenants", params=params)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


class _Events:
    """Reads a tenant's audit trail incrementally: only events newer than the ones already seen."""

    def __init__(self, api: Api, tenant_id: str) -> None:
        self._api, self._tenant_id = api, tenant_id
        self._cursor: str | None = None  # the cursor of the last page read; re-read, since it may grow
        self._last_id = -1

    def new(self) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"limit": 200}
            if self._cursor:
                params["cursor"] = self._cursor
            response = self._api.call("GET", f"/v1/tenants/{self._tenant_id}/events", params=params, allow=(404,))
            if response.status_code == 404:  # no tenant under this id (yet)
                return fresh
            page = response.json()
            for event in page["items"]:
                if event["id"] > self._last_id:
                    fresh.append(event)
                    self._last_id = event["id"]
            if not page.get("next_cursor"):
                return fresh
            self._cursor = page["next_cursor"]


def _event_line(event: dict[str, Any]) -> tuple[str, str, str] | None:
    """A step that ran (``done``, with its duration), one skipped because the tenant never had its
    resource (``skip``), or the failure that ended the run (``FAIL``)."""
    action, detail = event["action"], event.get("detail") or {}
    if action.startswith("step."):
        name = action.removeprefix("step.")
        if event.get("outcome") == "skipped":
            return "skip", name, ""
        duration = detail.get("duration_ms")
        return "done", name, f"{duration:.1f} ms" if isinstance(duration, int | float) else ""
    if action == "tenant.failed":
        return "FAIL", f"provisioning failed at step {detail.get('step')}: {detail.get('code')}", ""
    if action == "tenant.teardown_failed":
        return "FAIL", f"teardown failed at step {detail.get('step')}: {detail.get('code')}", ""
    return None


def _wait(
    api: Api,
    tenant_id: str,
    events: _Events,
    *,
    until: set[str],
    timeout: float,
    printer: cli_output.StepPrinter | None,
    teardown: bool = False,
) -> dict[str, Any]:
    """Poll until the tenant reaches a status in ``until``; print each step as it finishes.

    The tenant is read before its events: a status and the event of the run that reached it are
    committed together, so every step of the run is printed before the wait returns. A teardown
    that fails leaves the tenant in ``deprovisioning``; its ``tenant.teardown_failed`` event ends
    the wait.
    """
    deadline = time.monotonic() + timeout
    while True:
        response = api.call("GET", f"/v1/tenants/{tenant_id}", allow=(404,) if teardown else ())
        tenant = {"tenant_id": tenant_id, "status": "deleted"} if response.status_code == 404 else response.json()
        teardown_failed = False
        for event in events.new():
            teardown_failed = teardown_failed or event["action"] == "tenant.teardown_failed"
            line = _event_line(event)
            if printer is not None and line:
                printer.line(*line)
        if tenant["status"] in until or teardown_failed:
            return tenant
        if time.monotonic() > deadline:
            raise CliError(f"{tenant_id} is still {tenant['status']} after {timeout:g} s", EXIT_UNAVAILABLE)
        if printer is not None:
            printer.waiting(f"{tenant_id} is {tenant['status']}")
        time.sleep(_POLL_S)


def _finish(tenant: dict[str, Any], output: str, *, good: str) -> NoReturn:
    _show(tenant, output)
    if tenant["status"] == good:
        sys.exit(EXIT_OK)
    error = tenant.get("last_error") or {}
    message = f"{tenant['tenant_id']} is {tenant['status']}"
    if error:
        message += f": {error.get('code')}: {error.get('message')}"
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_FAILED)


@click.group(epilog=EXIT_CODES_HELP)
def tenants() -> None:
    """Tenants, through a running service's HTTP API (--url, --api-key)."""


@tenants.command("list", epilog=EXIT_CODES_HELP)
@click.option("--status", type=click.Choice(STATUSES), help="Only tenants in this status.")
@click.option("--tier", help="Only tenants of this tier.")
@click.option(
    "--limit", type=click.IntRange(1, 200), default=100, show_default=True, help="Page size; every page is read."
)
@_connection
def list_(status: str | None, tier: str | None, limit: int, url: str, api_key: str, output: str) -> None:
    """Every tenant matching the filters (all pages)."""
    with _api(url, api_key) as api:
        items = _list_all(api, status=status, tier=tier, limit=limit)
    if output == "json":
        _print_json(items)
    else:
        _tenants_table(items)
        click.echo(f"{len(items)} tenant(s)")


@tenants.command("show", epilog=EXIT_CODES_HELP)
@click.argument("tenant_id")
@_connection
def show(tenant_id: str, url: str, api_key: str, output: str) -> None:
    """One tenant, with its AWS resources."""
    with _api(url, api_key) as api:
        _show(api.json("GET", f"/v1/tenants/{tenant_id}"), output)


_wait_option = click.option("--wait", is_flag=True, help="Print each step as it finishes, until the run ends.")
_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds --wait waits (then exit 6).",
)


def _tag(value: str) -> tuple[str, str]:
    key, sep, tag_value = value.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{value!r}: expected KEY=VALUE")
    return key, tag_value


def _providers_file(path: str | None) -> Any:
    """A JSON file of identity providers keyed by name (client secrets included: the file, not the
    command line, carries them, so they stay out of shell history and process listings)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {type(exc).__name__}", param_hint="--identity-providers") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a JSON object keyed by provider name", param_hint="--identity-providers")
    return data


_url_options = [
    click.option("--callback-url", "callback_urls", multiple=True, help="A callback URL (repeat for more)."),
    click.option("--logout-url", "logout_urls", multiple=True, help="A sign-out URL (repeat for more)."),
    click.option("--tag", "tags", multiple=True, type=_tag, metavar="KEY=VALUE", help="An extra tag (repeat for more)."),
    click.option(
        "--identity-providers",
        "providers_file",
        type=click.Path(dir_okay=False),
        help="JSON file: the tenant's identity providers keyed by name (README, Per-tenant settings).",
    ),
]


def _settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_url_options):
        command = option(command)
    return command


@tenants.command("create", epilog=EXIT_CODES_HELP)
@click.argument("tenant_id")
@click.option("--tier", required=True, help="A tier from GET /v1/tiers.")
@click.option("--display-name", required=True)
@click.option("--admin-email", default=None, help="Invited as the pool's first administrator.")
@_settings_options
@_wait_option
@_timeout_option
@_connection
def create(
    tenant_id: str,
    tier: str,
    display_name: str,
    admin_email: str | None,
    callback_urls: tuple[str, ...],
    logout_urls: tuple[str, ...],
    tags: tuple[tuple[str, str], ...],
    providers_file: str | None,
    wait: bool,
    timeout: float,
    url: str,
    api_key: str,
    output: str,
) -> None:
    """Onboard a tenant. With --wait, exit 0 once it is active, 1 if it failed."""
    body: dict[str, Any] = {"tenant_id": tenant_id, "tier": tier, "display_name": display_name}
    if admin_email:
        body["admin_email"] = admin_email
    if callback_urls:
        body["callback_urls"] = list(callback_urls)
    if logout_urls:
        body["logout_urls"] = list(logout_urls)
    if tags:
        body["tags"] = dict(tags)
    providers = _providers_file(providers_file)
    if providers is not None:
        body["identity_providers"] = providers
    with _api(url, api_key) as api:
        _request_and_follow(api, "POST", "/v1/tenants", tenant_id, wait, timeout, output, body=body)


@tenants.command("update", epilog=EXIT_CODES_HELP)
@click.argument("tenant_id")
@click.option("--display-name", default=None)
@_settings_options
@click.option("--untag", "untags", multiple=True, metavar="KEY", help="Remove an extra tag (repeat for more).")
@click.option("--remove-provider", "removed", multiple=True, metavar="NAME", help="Remove an identity provider.")
@click.option("--clear-urls", is_flag=True, help="Remove the tenant's callback and logout URLs (back to the template's).")
@_wait_option
@_timeout_option
@_connection
def update(
    tenant_id: str,
    display_name: str | None,
    callback_urls: tuple[str, ...],
    logout_urls: tuple[str, ...],
    tags: tuple[tuple[str, str], ...],
    providers_file: str | None,
    untags: tuple[str, ...],
    removed: tuple[str, ...],
    clear_urls: bool,
    wait: bool,
    timeout: float,
    url: str,
    api_key: str,
    output: str,
) -> None:
    """Change a live tenant's settings in place (PATCH, a JSON merge patch). URL options replace
    the tenant's list; tags and providers merge (a provider in the file is added or changed
    field by field). With --wait, exit 0 once the change is applied, 1 if it failed."""
    patch: dict[str, Any] = {}
    if display_name is not None:
        patch["display_name"] = display_name
    if clear_urls:
        patch["callback_urls"] = patch["logout_urls"] = None
    if callback_urls:
        patch["callback_urls"] = list(callback_urls)
    if logout_urls:
        patch["logout_urls"] = list(logout_urls)
    if tags or untags:
        patch["tags"] = {**{key: None for key in untags}, **dict(tags)}
    providers = _providers_file(providers_file) or {}
    if providers or removed:
        patch["identity_providers"] = {**{name: None for name in removed}, **providers}
    headers = {"Content-Type": "application/merge-patch+json"}
    if wait:
        headers["Prefer"] = f"wait={int(min(timeout, _REQUEST_TIMEOUT_S - 5))}"
    with _api(url, api_key) as api:
        tenant = api.json("PATCH", f"/v1/tenants/{tenant_id}", content=json.dumps(patch), headers=headers)
    _show(tenant, output)
    if not wait:
        return
    if tenant.get("settings_status") == "applied":
        sys.exit(EXIT_OK)
    error = tenant.get("last_error") or {}
    state = tenant.get("settings_status")
    message = f"{tenant_id}: the change is {state}" + (f": {error.get('code')}: {error.get('message')}" if error else "")
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_FAILED if state == "failed" else EXIT_UNAVAILABLE)


@tenants.command("retry", epilog=EXIT_CODES_HELP)
@click.argument("tenant_id")
@_wait_option
@_timeout_option
@_connection
def retry(tenant_id: str, wait: bool, timeout: float, url: str, api_key: str, output: str) -> None:
    """Run a failed tenant's provisioning again (only from failed: else exit 4)."""
    with _api(url, api_key) as api:
        _request_and_follow(api, "POST", f"/v1/tenants/{tenant_id}/retry", tenant_id, wait, timeout, output)


@tenants.command("delete", epilog=EXIT_CODES_HELP)
@click.argument("tenant_id", required=False)
@click.option("--status", type=click.Choice(STATUSES), help="Bulk: every tenant in this status (no TENANT_ID).")
@click.option("--tier", help="Bulk: every tenant of this tier (no TENANT_ID).")
@click.option("--yes", "-y", is_flag=True, help="Bulk: do not ask for confirmation.")
@_wait_option
@_timeout_option
@_connection
def delete(
    tenant_id: str | None,
    status: str | None,
    tier: str | None,
    yes: bool,
    wait: bool,
    timeout: float,
    url: str,
    api_key: str,
    output: str,
) -> None:
    """Tear down one tenant, or in bulk every tenant matching --status and/or --tier.

    Bulk deletes list the tenants first and ask for confirmation (--yes skips it; answering no
    deletes nothing and exits 0). With --wait, one tenant's teardown steps are printed as they
    finish; exit 0 once it is deleted, 1 if the teardown failed.
    """
    if tenant_id and (status or tier):
        raise click.UsageError("give either TENANT_ID or --status/--tier, not both")
    if not tenant_id and not (status or tier):
        raise click.UsageError("give a TENANT_ID, or --status and/or --tier for a bulk delete")
    with _api(url, api_key) as api:
        if not tenant_id:
            _bulk_delete(api, status=status, tier=tier, yes=yes, wait=wait, timeout=timeout, output=output)
            return
        _request_and_follow(api, "DELETE", f"/v1/tenants/{tenant_id}", tenant_id, wait, timeout, output)


def _request_and_follow(
    api: Api,
    method: str,
    path: str,
    tenant_id: str,
    wait: bool,
    timeout: float,
    output: str,
    *,
    body: dict[str, Any] | None = None,
) -> None:
    """Send the request; with ``wait``, print each step as it finishes until the operation ends.

    DELETE ends at ``deleted``; create and retry at ``active`` or ``failed``.
    """
    teardown = method == "DELETE"
    events = _Events(api, tenant_id)
    if wait:
        events.new()  # the tenant may have history (a repeated create): only this run's steps are news
    tenant = api.json(method, path, json=body)  # httpx sends no body for json=None
    if not wait:
        _show(tenant, output)
        return
    until = {"deleted"} if teardown else {"active", "failed"}
    # With --output json, stdout carries only the JSON document.
    printer = cli_output.StepPrinter(stderr=output == "json")
    with printer.spinner(f"{tenant_id} is {tenant['status']}"):
        tenant = _wait(api, tenant_id, events, until=until, timeout=timeout, printer=printer, teardown=teardown)
    _finish(tenant, output, good="deleted" if teardown else "active")


def _bulk_delete(
    api: Api, *, status: str | None, tier: str | None, yes: bool, wait: bool, timeout: float, output: str
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    targets = [t for t in _list_all(api, status=status, tier=tier, limit=200) if t["status"] != "deleted"]
    if not targets:
        click.echo("No tenant matches; nothing to delete.", err=True)
        if output == "json":
            _print_json({"deleted": [], "failed": []})
        return
    _tenants_table(targets, stderr=output == "json")  # stdout carries only the JSON result
    if not yes and not click.confirm(f"Delete these {len(targets)} tenant(s)?", default=False, err=True):
        click.echo("Nothing deleted.", err=True)
        return
    done: list[str] = []
    failed: dict[str, str] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=cli_output.console(stderr=True), transient=False) as progress:
        task = progress.add_task("deleting", total=len(targets))
        for target in targets:
            tid = target["tenant_id"]
            progress.update(task, description=f"deleting {tid}")
            try:
                events = _Events(api, tid)
                if wait:
                    events.new()
                api.call("DELETE", f"/v1/tenants/{tid}")
                if wait:
                    final = _wait(api, tid, events, until={"deleted"}, timeout=timeout, printer=None, teardown=True)
                    if final["status"] != "deleted":
                        raise CliError("teardown failed", EXIT_FAILED)
                done.append(tid)
            except CliError as exc:
                if exc.exit_code == EXIT_AUTH:
                    raise
                failed[tid] = exc.message
            progress.advance(task)
        progress.update(task, description="deleted")
    for tid, reason in failed.items():
        click.echo(f"  failed  {tid}: {reason}", err=True)
    verb = "deleted" if wait else "deletion requested for"
    click.echo(f"{verb} {len(done)} of {len(targets)} tenant(s), {len(failed)} failed", err=output == "json")
    if output == "json":
        _print_json({"deleted": done, "failed": [{"tenant_id": k, "error": v} for k, v in failed.items()]})
    if failed:
        sys.exit(EXIT_FAILED)
