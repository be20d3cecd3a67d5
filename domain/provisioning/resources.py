"""The tenant's AWS resources, one entry per kind: the one description every operation derives from.

Each entry says when a tenant's plan holds it (``needed``), what it comes after, how to find what
an earlier run or a lost response made (``adopt``) and how to make it (``create``), how a settings
change converges it (``update``, ``prune``), how teardown deletes it (``delete``, or ``part_of``:
it goes with that resource), which outputs it records, and which tagged AWS resources it makes
(``tagged``, for tag updates). plans.py turns the table into the provisioning, teardown and
update plans; runner.py runs them. Adding a resource kind is one entry here and its tests.

An entry's functions take the tenant's run (context.py) and return the outputs they set; they are
level-triggered: run again after a crash or a lost response, they end in the same state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import domain.provisioning.cloud as cloud
from domain.errors import CloudAlreadyExists, CloudError, CloudNotFound
from domain.policies import render_role_policy, trust_policy
from domain.ports import CloudResource
from domain.provisioning.cloud import IAM_ROLE, IDENTITY_POOL, ROLE_KINDS, SECRET, USER_POOL
from domain.provisioning.context import Scope, TenantRun
from domain.provisioning.outputs import TenantOutputs
from domain.tiers import TENANT_ID_ATTRIBUTE, TierTemplate

Handler = Callable[[TenantRun], Awaitable[TenantOutputs]]
Adopter = Callable[[TenantRun], Awaitable[TenantOutputs | None]]
# A tagged AWS resource a step makes: (cloud.AWS_KINDS key, the ARN, id or name to find it by).
TagTarget = tuple[str, str]


def _always(scope: Scope) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Resource:
    name: str  # the provisioning step's name, in the registry and in audit events
    create: Handler
    needed: Callable[[Scope], bool] = _always
    # Every entry it may come after; ``after_in`` picks those a scope needs (a subset), else all
    # of them. Those not in a tenant's plan are dropped. Teardown and update read ``after``.
    after: tuple[str, ...] = ()
    after_in: Callable[[Scope], tuple[str, ...]] | None = None
    # Finds what exists (by recorded id, deterministic name, ownership tags); None: not there.
    # An entry without one has an idempotent create (a put, or an ensure of its own parts).
    adopt: Adopter | None = None
    # Look even on a fresh tenant's first try (runner.py), e.g. names unique across accounts.
    always_adopt: bool = False
    # Settings change (PATCH): converge in place; prune: remove what the settings dropped, once
    # the updates of everything that comes after this entry are done.
    update: Handler | None = None
    update_step: str | None = None
    prune: Handler | None = None
    prune_step: str | None = None
    # Teardown; None with part_of: deleted with that entry's resource, which clears these outputs.
    delete: Handler | None = None
    delete_step: str | None = None
    part_of: str | None = None
    outputs: tuple[str, ...] = ()
    tagged: Callable[[TenantRun], list[TagTarget]] | None = None

    def deps(self, scope: Scope) -> tuple[str, ...]:
        if self.after_in is None:
            return self.after
        chosen = self.after_in(scope)
        assert set(chosen) <= set(self.after), f"{self.name}: {chosen} not within {self.after}"
        return chosen

    @property
    def teardown_step(self) -> str:
        return self.delete_step or f"delete_{self.name}"

    @property
    def update_name(self) -> str:
        return self.update_step or f"update_{self.name}"

    @property
    def prune_name(self) -> str:
        return self.prune_step or f"prune_{self.name}"


# -- teardown helpers --------------------------------------------------------------------------


def skip_if_never_had(run: TenantRun, step: str, made_by: str, *recorded: str) -> None:
    """Called by a teardown step that found nothing of the tenant's to delete: the step is
    recorded ``skipped`` when the tenant's tier never makes that resource (the provisioning step
    ``made_by`` is not in its plan) and no run completed that step or recorded one of its
    outputs. Never when the tier is no longer defined. The look-ups have run all the same: a
    resource of the tenant's name and tags (a run under an older template, cut short) is
    deleted, and the step is then done, not skipped."""
    if run.template is None or made_by in run.tenant.completed_steps:
        return
    if any(run.outputs.get(key) for key in recorded):
        return
    if not BY_NAME[made_by].needed(run.scope()):
        run.skipped.add(step)


async def _gone_is_fine(call: Awaitable[None]) -> None:
    try:
        await call
    except CloudNotFound:
        pass


# -- user pool ---------------------------------------------------------------------------------


def _pool_outputs(run: TenantRun, pool: CloudResource) -> TenantOutputs:
    outputs: TenantOutputs = {
        "user_pool_id": pool.id,
        "user_pool_arn": pool.arn,
        "issuer_url": f"https://cognito-idp.{run.cell.region}.amazonaws.com/{pool.id}",
    }
    if not pool.extra.get("tenant_id_attribute", True):
        # A pool made before every pool had custom:tenant_id (adopted on a retry) cannot take it.
        outputs["tenant_id_attribute"] = False
    return outputs


async def adopt_user_pool(run: TenantRun) -> TenantOutputs | None:
    pool = await run.find_user_pool()
    if pool is None:
        return None
    run.check_owned(pool, "user pool")
    return _pool_outputs(run, pool)


async def create_user_pool(run: TenantRun) -> TenantOutputs:
    pool = await run.gw.user_pools.create_user_pool(
        run.cell,
        name=run.names.user_pool,
        template=run.tpl,
        tags=run.tags,
        display_name=run.spec.display_name,
        tenant_id=run.spec.tenant_id,
    )
    return _pool_outputs(run, pool)


async def update_user_pool(run: TenantRun) -> TenantOutputs:
    """The display name is in the pool's message templates: UpdateUserPool renders them again.
    Skipped when the pool's messages already carry this name (UpdateUserPool shares the 15/s
    UserPoolUpdate quota with CreateUserPool)."""
    if run.outputs.get("messages_display_name") == run.spec.display_name:
        return {}
    await run.gw.user_pools.update_user_pool(
        run.cell,
        pool_id=run.out("user_pool_id"),
        template=run.tpl,
        tags=run.tags,
        display_name=run.spec.display_name,
        tenant_id=run.spec.tenant_id,
    )
    return {"messages_display_name": run.spec.display_name}


async def delete_user_pool(run: TenantRun) -> TenantOutputs:
    pool = await run.find_user_pool()
    if pool is not None and run.owned(pool):
        await _gone_is_fine(cloud.delete_user_pool(run.gw, run.cell, pool))
    return {}  # the runner clears the outputs of the pool and of everything part of it


def _user_pool_tags(run: TenantRun) -> list[TagTarget]:
    arn = run.outputs.get("user_pool_arn")
    return [(USER_POOL, arn)] if arn else []


async def configure_mfa(run: TenantRun) -> TenantOutputs:
    await run.gw.user_pools.configure_mfa(
        run.cell,
        pool_id=run.out("user_pool_id"),
        template=run.tpl,
        display_name=run.spec.display_name,
        tenant_id=run.spec.tenant_id,
    )
    return {}


async def create_resource_servers(run: TenantRun) -> TenantOutputs:
    pool_id, servers = run.out("user_pool_id"), run.tpl.resource_servers
    await asyncio.gather(
        *(run.gw.user_pools.ensure_resource_server(run.cell, pool_id=pool_id, server=server) for server in servers)
    )
    return {"resource_servers": [server.identifier for server in servers]}


# -- the tenant's own identity providers ---------------------------------------------------------


async def put_identity_providers(run: TenantRun) -> TenantOutputs:
    """Adopt-or-create every provider of the settings: Describe first; Update one that is there
    (it may come from a lost response, or an earlier PATCH), Create one that is not."""
    pool_id = run.out("user_pool_id")
    for provider in run.spec.settings.identity_providers:
        found = await run.gw.user_pools.describe_identity_provider(run.cell, pool_id=pool_id, name=provider.name)
        if found is not None and found["type"] != provider.type:
            raise CloudError(
                "ProviderTypeMismatch",
                f"the user pool already has a provider named {provider.name!r} of type {found['type']}, not {provider.type}",
            )
        await run.gw.user_pools.put_identity_provider(
            run.cell,
            pool_id=pool_id,
            provider=provider,
            client_secret=await run.provider_secret(provider.name),
            exists=found is not None,
        )
    return {"identity_providers": list(run.spec.settings.provider_names)}


async def _delete_found_secret(run: TenantRun, found: CloudResource) -> bool:
    await _gone_is_fine(cloud.delete_secret(run.gw, run.cell, found))
    return True


async def _delete_provider_secret(run: TenantRun, name: str, recorded: str | None) -> bool:
    """True when a secret of the tenant's was there (and is now gone). Looked up by name too: a
    secret stored just before a crash may never have been recorded."""
    store = run.secrets
    found = await store.find_secret(run.cell, name=recorded) if recorded else None
    found = found or await store.find_secret(run.cell, name=run.names.identity_provider_secret(name))
    if found is None or not run.owned(found):
        return False
    return await _delete_found_secret(run, found)


async def prune_identity_providers(run: TenantRun) -> TenantOutputs:
    """Providers no longer in the settings go once no client lists them any more; so do their
    client secrets."""
    pool_id = run.out("user_pool_id")
    wanted = set(run.spec.settings.provider_names)
    present = set(await run.gw.user_pools.list_identity_providers(run.cell, pool_id=pool_id))
    # The PATCH recorded which providers it removed: their secrets go even when a crash came
    # after the provider itself was deleted.
    removed = set(run.outputs.get("removed_identity_providers") or [])
    for name in sorted((present | removed) - wanted):
        if name in present:
            await _gone_is_fine(run.gw.user_pools.delete_identity_provider(run.cell, pool_id=pool_id, name=name))
        if run.gw.secrets is not None:
            await _delete_provider_secret(run, name, None)
    return {"removed_identity_providers": None}


async def delete_identity_provider_secrets(run: TenantRun) -> TenantOutputs:
    """The providers themselves go with the pool; their client secrets are separate resources:
    those of the settings' providers and of those a PATCH removed (by recorded ARN, else by
    name), then every other secret under the tenant's own ``.../idp/`` names that carries its
    ownership tags (a PATCH whose prune failed, or a request that crashed after storing a
    secret, leaves one no setting names). The named look-ups stay because ListSecrets may lag
    minutes behind a CreateSecret in AWS; DescribeSecret does not."""
    in_settings = {p.name: p.client_secret_arn for p in run.spec.settings.identity_providers if p.has_secret}
    step = "delete_identity_provider_secrets"
    if run.gw.secrets is None:
        if not in_settings:
            run.skipped.add(step)
        return {}
    removed = run.outputs.get("removed_identity_providers") or []
    named = in_settings | {n: None for n in removed if n not in in_settings}
    deleted = [await _delete_provider_secret(run, name, arn) for name, arn in named.items()]
    handled = {run.names.identity_provider_secret(name) for name in named}
    prefix = run.names.identity_provider_secrets_prefix
    for found in await run.secrets.list_secrets_with_prefix(run.cell, prefix=prefix):
        # Again by name: only this tenant's prefix, and never a secret without its tags.
        if found.name.startswith(prefix) and found.name not in handled and run.owned(found):
            deleted.append(await _delete_found_secret(run, found))
    if not any(deleted) and not in_settings:
        run.skipped.add(step)  # nothing found, and the settings hold no provider with a secret
    return {}


def _provider_secret_tags(run: TenantRun) -> list[TagTarget]:
    # Stored by the API (OnboardTenant, UpdateTenant) with the tags, for put_identity_providers to read.
    return [
        (SECRET, p.client_secret_arn or run.names.identity_provider_secret(p.name))
        for p in run.spec.settings.identity_providers
        if p.has_secret
    ]


# -- app clients -------------------------------------------------------------------------------


def _client_name(run: TenantRun, client: str) -> str:
    return run.names.named_app_client(client, primary=client == run.tpl.primary_client)


def _client_urls(run: TenantRun) -> dict[str, Any]:
    """The tenant's own callback and logout URLs, when it has any: they replace the template's
    defaults on clients with the code or implicit flow; and its own identity providers, allowed
    next to COGNITO (machine clients: COGNITO only)."""
    settings = run.spec.settings
    return {
        "callback_urls": tuple(settings.callback_urls) or None,
        "logout_urls": tuple(settings.logout_urls) or None,
        "identity_providers": tuple(settings.provider_names) or None,
    }


async def _find_client(run: TenantRun, client: str) -> str | None:
    return await run.gw.user_pools.find_app_client(run.cell, pool_id=run.out("user_pool_id"), name=_client_name(run, client))


async def _create_client(run: TenantRun, client: str) -> str:
    return await run.gw.user_pools.create_app_client(
        run.cell,
        pool_id=run.out("user_pool_id"),
        name=_client_name(run, client),
        template=run.tpl,
        client=client,
        **_client_urls(run),
    )


async def adopt_app_client(run: TenantRun) -> TenantOutputs | None:
    primary = run.tpl.primary_client
    client_id = await _find_client(run, primary)
    return None if client_id is None else {"app_client_id": client_id, "primary_app_client": primary}


async def create_app_client(run: TenantRun) -> TenantOutputs:
    primary = run.tpl.primary_client
    return {"app_client_id": await _create_client(run, primary), "primary_app_client": primary}


async def ensure_extra_app_clients(run: TenantRun) -> TenantOutputs:
    """Every further client, concurrently, each adopt-or-create as the primary one."""

    async def ensure(client: str) -> str:
        found = None if run.may_skip_lookup() else await _find_client(run, client)
        return found or await _create_client(run, client)

    names = [name for name in run.tpl.clients if name != run.tpl.primary_client]
    ids = await asyncio.gather(*(ensure(name) for name in names))
    return {"extra_app_client_ids": dict(zip(names, ids, strict=True))}


async def update_app_clients(run: TenantRun) -> TenantOutputs:
    pool_id = run.out("user_pool_id")
    for client, client_id in run.client_ids().items():
        await run.gw.user_pools.update_app_client(
            run.cell,
            pool_id=pool_id,
            client_id=client_id,
            name=_client_name(run, client),
            template=run.tpl,
            client=client,
            **_client_urls(run),
        )
    return {}


def _client_deps(scope: Scope, uses_scopes: bool) -> tuple[str, ...]:
    # Cognito refuses a client with an unknown scope; a client may list only providers the pool has.
    deps = ("user_pool", "resource_servers") if uses_scopes and scope.template.resource_servers else ("user_pool",)
    return (*deps, "identity_providers") if scope.has_identity_providers else deps


def _extras(template: TierTemplate) -> dict[str, Any]:
    return {name: c for name, c in template.clients.items() if name != template.primary_client}


async def store_client_secrets(run: TenantRun) -> TenantOutputs:
    """One secret per client that has one, named per client. The secret lives only in this
    frame, between DescribeUserPoolClient and CreateSecret (or PutSecretValue); the registry gets
    the ARN. Storing it again after a lost response is harmless: put_client_secret adopts our
    own secret and writes the same value."""
    store, ids, primary = run.secrets, run.client_ids(), run.tpl.primary_client

    async def keep(client: str) -> str:
        client_id = ids[client]
        secret = await run.gw.user_pools.client_secret(run.cell, pool_id=run.out("user_pool_id"), client_id=client_id)
        stored = await store.put_client_secret(
            run.cell,
            name=run.names.named_client_secret(client, primary=client == primary),
            secret_value=secret,
            tags=run.tags,
            description=f"Secret of app client {client_id} of tenant {run.spec.tenant_id}",
        )
        return stored.arn or stored.id

    names = [name for name, client in run.tpl.clients.items() if client.generate_secret]
    arns = dict(zip(names, await asyncio.gather(*(keep(name) for name in names)), strict=True))
    outputs: TenantOutputs = {"app_client_secret_arns": arns}
    if primary in arns:
        outputs["app_client_secret_arn"] = arns[primary]
    return outputs


async def delete_client_secrets(run: TenantRun) -> TenantOutputs:
    """Every app client secret: the recorded ones, and by name those of the template's clients."""
    secret_keys = ("app_client_secret_arn", "app_client_secret_arns")
    recorded = {name: arn for name, arn in run.client_secrets().items() if arn}
    if run.gw.secrets is None and not recorded:
        skip_if_never_had(run, "delete_client_secret", "client_secret", *secret_keys)
        return {}  # no store and nothing stored: nothing to do
    store = run.secrets
    lookups = {run.names.client_secret: None} | run.client_secrets()

    async def delete(arn: str | None, name: str) -> bool:
        found = await store.find_secret(run.cell, name=arn) if arn else None
        found = found or await store.find_secret(run.cell, name=name)
        if found is None or not run.owned(found):
            return False
        return await _delete_found_secret(run, found)

    if not any(await asyncio.gather(*(delete(arn, name) for name, arn in lookups.items()))):
        skip_if_never_had(run, "delete_client_secret", "client_secret", *secret_keys)
    return {}


def _client_secret_tags(run: TenantRun) -> list[TagTarget]:
    return [(SECRET, arn or name) for name, arn in run.client_secrets().items()]


def _secret_deps(scope: Scope) -> tuple[str, ...]:
    template = scope.template
    return (("app_client",) if template.clients[template.primary_client].generate_secret else ()) + (
        ("app_clients",) if any(c.generate_secret for c in _extras(template).values()) else ()
    )


# -- groups, domain, admin user ----------------------------------------------------------------


async def create_groups(run: TenantRun) -> TenantOutputs:
    for group in run.tpl.groups:
        try:
            await run.gw.user_pools.create_group(run.cell, pool_id=run.out("user_pool_id"), group=group)
        except CloudAlreadyExists:
            pass  # adopted: groups live inside the tenant's own pool
    return {"groups": [group.name for group in run.tpl.groups]}


def _domain_outputs(run: TenantRun) -> TenantOutputs:
    domain = run.names.hosted_ui_domain
    return {"hosted_ui_domain_prefix": domain, "hosted_ui_domain": f"{domain}.auth.{run.cell.region}.amazoncognito.com"}


async def adopt_domain(run: TenantRun) -> TenantOutputs | None:
    domain = run.names.hosted_ui_domain
    owner = await run.gw.user_pools.domain_owner(run.cell, domain=domain)
    if owner is None:
        return None
    if owner != run.out("user_pool_id"):
        raise CloudError(
            "DomainTaken",
            f"the hosted-UI prefix domain {domain!r} is held by another user pool; prefix domains are "
            "unique per Region across all AWS accounts. Change the resource prefix or remove that domain.",
        )
    return _domain_outputs(run)


async def create_domain(run: TenantRun) -> TenantOutputs:
    await run.gw.user_pools.create_domain(run.cell, pool_id=run.out("user_pool_id"), domain=run.names.hosted_ui_domain)
    return _domain_outputs(run)


async def delete_domain(run: TenantRun) -> TenantOutputs:
    pool = await run.find_user_pool()
    domain = pool.extra.get("domain") if pool is not None and run.owned(pool) else None
    if pool is not None and domain:
        await _gone_is_fine(run.gw.user_pools.delete_domain(run.cell, pool_id=pool.id, domain=domain))
    else:
        skip_if_never_had(run, "delete_hosted_ui_domain", "hosted_ui_domain", "hosted_ui_domain", "hosted_ui_domain_prefix")
    return {}


def admin_username(template: TierTemplate, email: str) -> str:
    return email if "email" in template.username_attributes else "admin"


async def _admin_in_group(run: TenantRun) -> TenantOutputs:
    assert run.spec.admin_email is not None and run.tpl.admin_group is not None
    username = admin_username(run.tpl, run.spec.admin_email)
    await run.gw.user_pools.add_user_to_group(
        run.cell, pool_id=run.out("user_pool_id"), username=username, group=run.tpl.admin_group
    )
    return {"admin_username": username}


async def adopt_admin_user(run: TenantRun) -> TenantOutputs | None:
    assert run.spec.admin_email is not None
    username = admin_username(run.tpl, run.spec.admin_email)
    if not await run.gw.user_pools.user_exists(run.cell, pool_id=run.out("user_pool_id"), username=username):
        return None
    return await _admin_in_group(run)


async def create_admin_user(run: TenantRun) -> TenantOutputs:
    assert run.spec.admin_email is not None
    try:
        await run.gw.user_pools.create_user(
            run.cell,
            pool_id=run.out("user_pool_id"),
            username=admin_username(run.tpl, run.spec.admin_email),
            email=run.spec.admin_email,
            attributes=(
                {f"custom:{TENANT_ID_ATTRIBUTE}": run.spec.tenant_id}
                if run.outputs.get("tenant_id_attribute", True)
                else {}
            ),
        )
    except CloudAlreadyExists:
        pass  # created by an earlier attempt whose response was lost
    return await _admin_in_group(run)


# -- identity pool -------------------------------------------------------------------------------


async def adopt_identity_pool(run: TenantRun) -> TenantOutputs | None:
    pool = await run.find_identity_pool()
    if pool is None:
        return None
    run.check_owned(pool, "identity pool")
    return {"identity_pool_id": pool.id}


async def create_identity_pool(run: TenantRun) -> TenantOutputs:
    pool = await run.gw.identity_pools.create_identity_pool(
        run.cell,
        name=run.names.identity_pool,
        provider_name=run.provider_name,
        client_id=run.out("app_client_id"),
        allow_unauthenticated=run.tpl.allow_guest_identities,
        tags=run.tags,
        client_ids=run.trusted_client_ids(),
        login_providers=run.tpl.identity_pool.login_providers,
        server_side_token_check=run.tpl.identity_pool.server_side_token_check,
    )
    return {"identity_pool_id": pool.id}


async def delete_identity_pool(run: TenantRun) -> TenantOutputs:
    pool = await run.find_identity_pool()
    if pool is not None and run.owned(pool):
        await _gone_is_fine(cloud.delete_identity_pool(run.gw, run.cell, pool))
    return {}


def _identity_pool_tags(run: TenantRun) -> list[TagTarget]:
    pool_id = run.outputs.get("identity_pool_id")
    return [(IDENTITY_POOL, pool_id)] if pool_id else []


def _identity_pool_deps(scope: Scope) -> tuple[str, ...]:
    trusts_extras = any(c.trusted_by_identity_pool for c in _extras(scope.template).values())
    return ("app_client",) + (("app_clients",) if trusts_extras else ())


def _role_mappings(run: TenantRun) -> dict[str, Any] | None:
    mapping = run.tpl.identity_pool.role_mapping
    if mapping is None:
        return None
    body: dict[str, Any] = {"Type": mapping.type, "AmbiguousRoleResolution": mapping.ambiguous_role_resolution}
    if mapping.type == "Rules":
        arns = {"authenticated": run.out("authenticated_role_arn"), **(run.outputs.get("extra_role_arns") or {})}
        body["RulesConfiguration"] = {
            "Rules": [
                {"Claim": rule.claim, "MatchType": rule.match_type, "Value": rule.value, "RoleARN": arns[rule.role]}
                for rule in mapping.rules
            ]
        }
    # One mapping per trusted app client: the key is "<provider name>:<client id>".
    return {f"{run.provider_name}:{client_id}": body for client_id in run.trusted_client_ids()}


async def set_identity_pool_roles(run: TenantRun) -> TenantOutputs:
    roles = {"authenticated": run.out("authenticated_role_arn")}
    if run.tpl.allow_guest_identities:
        roles["unauthenticated"] = run.out("unauthenticated_role_arn")
    await run.gw.identity_pools.set_roles(
        run.cell, identity_pool_id=run.out("identity_pool_id"), roles=roles, role_mappings=_role_mappings(run)
    )
    return {}


# -- IAM roles -----------------------------------------------------------------------------------


async def _rebind_role(run: TenantRun, role: CloudResource, trust: dict[str, Any]) -> CloudResource:
    """Re-bind an adopted role (it may come from an earlier attempt, or an earlier setting) to
    this identity pool and to the configured permissions boundary. A boundary is never removed:
    with none configured, a role keeps the one it has."""
    run.check_owned(role, "IAM role")
    await run.gw.iam.update_trust_policy(run.cell, name=role.name, trust_policy=trust)
    boundary = run.settings.permissions_boundary
    if boundary is not None and role.extra.get("permissions_boundary") != boundary:
        await run.gw.iam.set_permissions_boundary(run.cell, name=role.name, boundary_arn=boundary)
    return role


async def _create_role(run: TenantRun, name: str, trust: dict[str, Any], description: str) -> CloudResource:
    return await run.gw.iam.create_role(
        run.cell,
        name=name,
        path=run.settings.role_path,
        trust_policy=trust,
        tags=run.tags,
        description=description,
        permissions_boundary=run.settings.permissions_boundary,
    )


async def ensure_role(run: TenantRun, name: str, trust: dict[str, Any], description: str) -> CloudResource:
    """Adopt-or-create one of several roles of a step (the extra roles), as the runner does for
    a single-resource entry."""
    role = None if run.may_skip_lookup() else await run.gw.iam.get_role(run.cell, name=name)
    if role is not None:
        return await _rebind_role(run, role, trust)
    try:
        return await _create_role(run, name, trust, description)
    except CloudAlreadyExists:
        role = await run.gw.iam.get_role(run.cell, name=name)
        if role is None:
            raise
        return await _rebind_role(run, role, trust)


async def _delete_role_named(run: TenantRun, name: str) -> bool:
    """Whether a role of the tenant's was there to delete."""
    role = await run.gw.iam.get_role(run.cell, name=name)
    if role is None or not run.owned(role):
        return False
    await _gone_is_fine(cloud.delete_role(run.gw, run.cell, role))
    return True


@dataclass(frozen=True, slots=True)
class _RoleEntry:
    """The authenticated ("auth") or unauthenticated ("unauth") role and its inline policy."""

    kind: str

    @property
    def key(self) -> str:
        return ROLE_KINDS[self.kind]

    def _trust(self, run: TenantRun) -> dict[str, Any]:
        return trust_policy(run.out("identity_pool_id"), authenticated=self.kind == "auth")

    def _outputs(self, role: CloudResource, name: str) -> TenantOutputs:
        return {f"{self.key}_role_arn": role.arn, f"{self.key}_role_name": name}  # type: ignore[misc]

    async def adopt(self, run: TenantRun) -> TenantOutputs | None:
        name = run.names.role(self.kind)
        role = await run.gw.iam.get_role(run.cell, name=name)
        return None if role is None else self._outputs(await _rebind_role(run, role, self._trust(run)), name)

    async def create(self, run: TenantRun) -> TenantOutputs:
        # Names are unique per account: a role already there answers EntityAlreadyExists, and the
        # runner adopts it then (ownership checked), so a fresh first try may skip the look-up.
        name = run.names.role(self.kind)
        role = await _create_role(run, name, self._trust(run), f"{self.key} identities of tenant {run.spec.tenant_id}")
        return self._outputs(role, name)

    async def policy(self, run: TenantRun) -> TenantOutputs:
        statements = run.tpl.authenticated_policy if self.kind == "auth" else run.tpl.unauthenticated_policy
        await run.gw.iam.put_role_policy(
            run.cell,
            role_name=run.names.role(self.kind),
            policy_name=run.names.role_policy(self.kind),
            document=render_role_policy(statements, run.placeholder_values()),
        )
        return {}

    async def delete(self, run: TenantRun) -> TenantOutputs:
        if not await _delete_role_named(run, run.names.role(self.kind)):
            kind, key = self.kind, self.key
            skip_if_never_had(run, f"delete_{kind}_role", f"{kind}_role", f"{key}_role_arn", f"{key}_role_name")
        return {}

    def tagged(self, run: TenantRun) -> list[TagTarget]:
        return [(IAM_ROLE, run.names.role(self.kind))]


_auth, _unauth = _RoleEntry("auth"), _RoleEntry("unauth")


def _extra_role_names(run: TenantRun) -> list[str]:
    # By the template's names too: a role created just before a crash was never recorded.
    return sorted(set(run.outputs.get("extra_role_arns") or {}) | set(run.template.roles if run.template else {}))


async def ensure_extra_roles(run: TenantRun) -> TenantOutputs:
    """The tier's [roles]: tenant-scoped like the authenticated role (same trust, their own
    tenant-scoped policy), for role-mapping rules and groups."""
    trust = trust_policy(run.out("identity_pool_id"), authenticated=True)
    values = run.placeholder_values()

    async def ensure(role: str) -> str:
        spec = run.tpl.roles[role]
        name = run.names.extra_role(role)
        found = await ensure_role(run, name, trust, spec.description or f"{role} identities of tenant {run.spec.tenant_id}")
        await run.gw.iam.put_role_policy(
            run.cell,
            role_name=name,
            policy_name=run.names.extra_role_policy(role),
            document=render_role_policy(spec.policy, values),
        )
        assert found.arn is not None
        return found.arn

    names = list(run.tpl.roles)
    arns = await asyncio.gather(*(ensure(role) for role in names))
    return {"extra_role_arns": dict(zip(names, arns, strict=True))}


async def delete_extra_roles(run: TenantRun) -> TenantOutputs:
    names = _extra_role_names(run)
    deleted = await asyncio.gather(*(_delete_role_named(run, run.names.extra_role(role)) for role in names))
    if not any(deleted):
        skip_if_never_had(run, "delete_extra_roles", "extra_roles", "extra_role_arns")
    return {}


async def set_group_roles(run: TenantRun) -> TenantOutputs:
    arns = run.out("extra_role_arns")
    for group in run.tpl.groups:
        if group.role is not None:
            await run.gw.user_pools.set_group_role(
                run.cell, pool_id=run.out("user_pool_id"), group=group.name, role_arn=arns[group.role]
            )
    return {}


# -- the table -----------------------------------------------------------------------------------

RESOURCES: tuple[Resource, ...] = (
    Resource(
        "user_pool",
        create=create_user_pool,
        adopt=adopt_user_pool,
        update=update_user_pool,
        update_step="update_user_pool",
        delete=delete_user_pool,
        outputs=("user_pool_id", "tenant_id_attribute", "user_pool_arn", "issuer_url"),
        tagged=_user_pool_tags,
    ),
    Resource(
        "identity_providers",
        create=put_identity_providers,
        needed=lambda s: s.has_identity_providers,
        after=("user_pool",),
        update=put_identity_providers,
        update_step="update_identity_providers",
        prune=prune_identity_providers,
        prune_step="prune_identity_providers",
        # The providers go with the pool; their client secrets are separate resources.
        delete=delete_identity_provider_secrets,
        delete_step="delete_identity_provider_secrets",
        tagged=_provider_secret_tags,
    ),
    Resource(
        "resource_servers",
        create=create_resource_servers,
        needed=lambda s: bool(s.template.resource_servers),
        after=("user_pool",),
        part_of="user_pool",
        outputs=("resource_servers",),
    ),
    Resource(
        "app_client",
        create=create_app_client,
        adopt=adopt_app_client,
        after=("user_pool", "resource_servers", "identity_providers"),
        after_in=lambda s: _client_deps(s, bool(s.template.clients[s.template.primary_client].custom_scopes())),
        # One step updates every client, the primary and the further ones.
        update=update_app_clients,
        update_step="update_app_clients",
        part_of="user_pool",
        outputs=("app_client_id", "primary_app_client"),
    ),
    Resource(
        "app_clients",
        create=ensure_extra_app_clients,
        needed=lambda s: bool(_extras(s.template)),
        after=("user_pool", "resource_servers", "identity_providers"),
        after_in=lambda s: _client_deps(s, any(c.custom_scopes() for c in _extras(s.template).values())),
        part_of="user_pool",
        outputs=("extra_app_client_ids",),
    ),
    Resource(
        "client_secret",
        create=store_client_secrets,
        needed=lambda s: any(c.generate_secret for c in s.template.clients.values()),
        after=("app_client", "app_clients"),
        after_in=_secret_deps,
        # A copy of the app client's secret, in Secrets Manager: a resource of its own.
        delete=delete_client_secrets,
        outputs=("app_client_secret_arn", "app_client_secret_arns"),
        tagged=_client_secret_tags,
    ),
    Resource(
        "user_pool_mfa",
        create=configure_mfa,
        needed=lambda s: s.template.mfa != "OFF",
        after=("user_pool",),
        part_of="user_pool",
    ),
    Resource(
        "groups",
        create=create_groups,
        needed=lambda s: bool(s.template.groups),
        after=("user_pool",),
        part_of="user_pool",
        outputs=("groups",),
    ),
    Resource(
        "hosted_ui_domain",
        create=create_domain,
        # Prefix domains are unique across all AWS accounts: the look-up explains one held by someone else.
        adopt=adopt_domain,
        always_adopt=True,
        needed=lambda s: s.template.hosted_ui_domain,
        after=("user_pool",),
        delete=delete_domain,
        outputs=("hosted_ui_domain", "hosted_ui_domain_prefix"),
    ),
    Resource(
        "admin_user",
        create=create_admin_user,
        adopt=adopt_admin_user,
        needed=lambda s: s.with_admin,
        after=("groups",),
        part_of="user_pool",
        outputs=("admin_username",),
    ),
    Resource(
        "identity_pool",
        create=create_identity_pool,
        adopt=adopt_identity_pool,
        after=("app_client", "app_clients"),
        after_in=_identity_pool_deps,
        delete=delete_identity_pool,
        outputs=("identity_pool_id",),
        tagged=_identity_pool_tags,
    ),
    Resource(
        "auth_role",
        create=_auth.create,
        adopt=_auth.adopt,
        after=("identity_pool",),
        delete=_auth.delete,
        outputs=("authenticated_role_arn", "authenticated_role_name"),
        tagged=_auth.tagged,
    ),
    Resource("auth_role_policy", create=_auth.policy, after=("auth_role",), part_of="auth_role"),
    Resource(
        "unauth_role",
        create=_unauth.create,
        adopt=_unauth.adopt,
        needed=lambda s: s.template.allow_guest_identities,
        after=("identity_pool",),
        delete=_unauth.delete,
        outputs=("unauthenticated_role_arn", "unauthenticated_role_name"),
        tagged=_unauth.tagged,
    ),
    Resource(
        "unauth_role_policy",
        create=_unauth.policy,
        needed=lambda s: s.template.allow_guest_identities,
        after=("unauth_role",),
        part_of="unauth_role",
    ),
    Resource(
        "extra_roles",
        create=ensure_extra_roles,
        needed=lambda s: bool(s.template.roles),
        after=("identity_pool",),
        delete=delete_extra_roles,
        outputs=("extra_role_arns",),
        tagged=lambda run: [(IAM_ROLE, run.names.extra_role(role)) for role in _extra_role_names(run)],
    ),
    Resource(
        "group_roles",
        create=set_group_roles,
        needed=lambda s: bool(s.template.roles) and any(group.role for group in s.template.groups),
        after=("groups", "extra_roles"),
        part_of="groups",
    ),
    Resource(
        "identity_pool_roles",
        create=set_identity_pool_roles,
        after=("auth_role_policy", "unauth_role_policy", "extra_roles"),
        part_of="identity_pool",
    ),
)

BY_NAME: dict[str, Resource] = {entry.name: entry for entry in RESOURCES}
