"""Composition root: builds every adapter and use case from the settings.

Nothing here runs at import time; ``Container.start()`` opens the registry engine, the AWS
clients (and the embedded emulator when no endpoint is given) and the in-process worker, and
``stop()`` closes them in reverse order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from adapters.aws.clients import AwsClients, EventHook
from adapters.aws.gateways import CognitoIdentityPoolGateway, CognitoUserPoolGateway, IamRoleGateway, SecretsManagerGateway
from adapters.aws.param_check import HOOK as STRICT_PARAMS_HOOK
from adapters.aws.ratelimit import CognitoRateLimiter, parse_quotas
from adapters.registry.api_keys import BootstrapChange
from adapters.registry.batched_reads import BatchedGetTenant
from adapters.registry.engine import normalize_url
from adapters.registry.idempotency import IdempotencyStore
from adapters.registry.outbox import OutboxStore
from adapters.registry.server_keys import ServerKeyStore
from adapters.registry.sql import ApiKeyRecord, ApiKeyStore, SqlUnitOfWorkFactory, make_engine
from domain.lifecycle import LifecycleEvent, RetryPolicy
from domain.provisioning import DeprovisionTenant, Gateways, ProvisioningSettings, ProvisionTenant, UpdateTenantSettings
from domain.sweep import SweepOrphans
from domain.tenant import Cell, JobKind
from domain.tiers import TierTemplate
from domain.usecases import (
    DeleteTenant,
    GetTenant,
    ListTenantEvents,
    ListTenants,
    OnboardTenant,
    RecordAuditEvent,
    RetryTenant,
    UpdateTenant,
)
from service import crash
from service.apikeys import bootstrap_record
from service.events import EventDispatcher
from service.idempotency import ExpiredKeyPurger, FingerprintKey
from service.jwt_auth import JwksVerifier
from service.key_cache import VerifiedKeyCache
from service.logs import LogStepObserver
from service.metrics import Metrics, MetricsStepObserver
from service.settings import Settings
from service.tiers_file import load_tiers
from service.waiters import TenantWaiters
from service.worker import Worker

log = structlog.get_logger("tenants.app")


async def register_bootstrap_key(store: ApiKeyStore, key: str, now: datetime) -> ApiKeyRecord:
    """Register the bootstrap key at start-up (the rules: ``ApiKeyStore.put_bootstrap``): a
    changed value replaces the old key, a revoked key stays revoked. One log line says which,
    with the key's id; never the key or its hash. ``ApiKeyConflict`` when another key has this value."""
    record, change = await store.put_bootstrap(bootstrap_record(key, now))
    if change is BootstrapChange.ROTATED:
        log.warning(
            "bootstrap_key_rotated", key_id=record.id, detail="the previous bootstrap key was replaced, it no longer works"
        )
    elif change is BootstrapChange.CREATED:
        log.info("bootstrap_key_registered", key_id=record.id)
    if record.revoked_at is not None:
        log.warning(
            "bootstrap_key_revoked",
            key_id=record.id,
            revoked_at=record.revoked_at.isoformat(),
            hint="it stays revoked; a new bootstrap value registers a new key, or use `tenantctl keys create`",
        )
    return record


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Container:
    settings: Settings
    tiers: dict[str, TierTemplate]
    clock: SystemClock = field(default_factory=SystemClock)
    # Extra botocore event hooks for every AWS client, e.g. tests recording the calls made.
    aws_event_hooks: list[EventHook] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)  # this app's own Prometheus registry
    engine: Any = None
    uow: SqlUnitOfWorkFactory | None = None
    api_keys: ApiKeyStore | None = None
    idempotency: IdempotencyStore | None = None
    idempotency_purger: ExpiredKeyPurger | None = None
    fingerprint_key: FingerprintKey | None = None  # hashes secrets in Idempotency-Key fingerprints
    aws: AwsClients | None = None
    # Cognito calls wait for their quota category's token (TENANTS_AWS_RATE_LIMIT, TENANTS_COGNITO_QUOTAS).
    rate_limiter: CognitoRateLimiter | None = None
    # Wakes requests waiting (Prefer: wait) on a tenant when this process's worker ends a run.
    waiters: TenantWaiters = field(default_factory=TenantWaiters)
    emulator: Any = None
    # Set at start-up when the embedded emulator lacks user pools the registry records
    # (its state file was removed): /health/ready then says so instead of reporting ok.
    emulator_mismatch: str | None = None
    cell: Cell | None = None
    worker: Worker | None = None
    onboard: OnboardTenant | None = None
    get_tenant: GetTenant | None = None
    list_tenants: ListTenants | None = None
    delete_tenant: DeleteTenant | None = None
    retry_tenant: RetryTenant | None = None
    update_tenant: UpdateTenant | None = None  # PATCH
    apply_settings: UpdateTenantSettings | None = None  # the worker's side of a PATCH
    record_event: RecordAuditEvent | None = None
    tenant_events: ListTenantEvents | None = None
    provision: ProvisionTenant | None = None
    deprovision: DeprovisionTenant | None = None
    sweep: SweepOrphans | None = None
    jwt: JwksVerifier | None = None  # set when TENANTS_JWT_JWKS_URL is
    key_cache: VerifiedKeyCache | None = None  # API keys verified within TENANTS_API_KEY_CACHE_S
    bootstrap_key: ApiKeyRecord | None = None  # as registered at start-up (revoked, maybe)
    # Lifecycle events: the outbox, its destinations ("eventbridge:<bus>", "webhook:<hash>") and
    # the dispatcher delivering them (running under serve and worker when any destination is set).
    outbox: OutboxStore | None = None
    event_publishers: dict[str, Any] = field(default_factory=dict)
    dispatcher: EventDispatcher | None = None
    _webhook_client: Any = None
    _crash_on_outbox: Any = None  # test-only crash point event:<type> (service/crash.py)

    @classmethod
    def from_settings(cls, settings: Settings) -> Container:
        # Templates are validated here, before anything starts: a bad file stops start-up.
        return cls(settings=settings, tiers=load_tiers(settings.tiers_file))

    async def start(self) -> None:
        s = self.settings
        url = normalize_url(s.effective_database_url)
        pool = {"pool_size": s.db_pool_size, "max_overflow": s.db_max_overflow} if url.get_backend_name() == "postgresql" else {}
        self.engine = make_engine(url, **pool)
        self.key_cache = VerifiedKeyCache(s.api_key_cache_s)
        self.uow = SqlUnitOfWorkFactory(self.engine)
        self.api_keys = ApiKeyStore(self.engine)
        self.idempotency = IdempotencyStore(self.engine)
        self.fingerprint_key = FingerprintKey(s.idempotency_hmac_key, ServerKeyStore(self.engine), self.clock)
        endpoint = s.aws_endpoint_url
        credentials: dict[str, str] = {}
        if s.aws_mode == "emulated":
            if endpoint is None:
                from adapters.aws.emulator.server import EmulatorServer

                state_file = s.var_dir / "emulator-state.pickle" if s.emulator_persist else None
                self.emulator = EmulatorServer(port=s.emulator_port, state_file=state_file)
                self.emulator.start()
                endpoint = self.emulator.endpoint_url
                log.info("emulator_started", endpoint=endpoint)
            credentials = {
                "access_key_id": s.emulator_access_key_id,
                "secret_access_key": s.emulator_secret_access_key.get_secret_value(),
            }
        self.aws = AwsClients(
            region=s.aws_region,
            endpoint_url=endpoint,
            max_attempts=s.aws_max_attempts,
            retry_mode=s.aws_retry_mode,
            connect_timeout=s.aws_connect_timeout_s,
            read_timeout=s.aws_read_timeout_s,
            event_hooks=([STRICT_PARAMS_HOOK] if s.aws_strict_params else [])
            + crash.aws_hooks(s.test_crash_at)
            + self.metrics.aws_hooks()
            + (self._rate_limit_hooks() if s.aws_rate_limit else [])
            + list(self.aws_event_hooks),
            **credentials,
        )
        await self.aws.start()
        self._crash_on_outbox = crash.outbox_hook(s.test_crash_at)
        self._setup_events()
        self.cell = Cell(account_id=await self.aws.caller_identity(), region=s.aws_region)
        await self._register_bootstrap_key()

        gateways = Gateways(
            user_pools=CognitoUserPoolGateway(self.aws),
            identity_pools=CognitoIdentityPoolGateway(self.aws),
            iam=IamRoleGateway(self.aws),
            secrets=SecretsManagerGateway(self.aws),
        )
        prov = ProvisioningSettings(
            resource_prefix=s.resource_prefix,
            role_path=s.role_path,
            permissions_boundary=s.role_permissions_boundary,
            plan_concurrency=s.plan_concurrency,
            # One budget per AWS call: botocore's attempts, or a step's tries for a create sent once.
            step_attempts=s.aws_max_attempts,
        )
        observer = crash.CrashingObserver(MetricsStepObserver(LogStepObserver(), self.metrics), s.test_crash_at)
        self.onboard = OnboardTenant(
            self.uow, self.tiers, self.clock, self.cell, secrets=gateways.secrets, resource_prefix=s.resource_prefix
        )
        self.update_tenant = UpdateTenant(
            self.uow, self.tiers, self.clock, secrets=gateways.secrets, resource_prefix=s.resource_prefix
        )
        self.apply_settings = UpdateTenantSettings(self.uow, gateways, self.tiers, self.clock, prov, observer)
        self.get_tenant = BatchedGetTenant(self.uow)  # concurrent lookups share a query
        self.list_tenants = ListTenants(self.uow)
        self.delete_tenant = DeleteTenant(self.uow, self.clock)
        self.retry_tenant = RetryTenant(self.uow, self.tiers, self.clock)
        self.record_event = RecordAuditEvent(self.uow)
        self.tenant_events = ListTenantEvents(self.uow)
        self.provision = ProvisionTenant(self.uow, gateways, self.tiers, self.clock, prov, observer)
        self.deprovision = DeprovisionTenant(self.uow, gateways, self.tiers, self.clock, prov, observer)
        self.sweep = SweepOrphans(gateways, self.uow, self.cell, prov)
        self.jwt = JwksVerifier.from_settings(s)
        if s.worker_enabled:
            self.worker = self.make_worker()
            self.worker.start()
            self.start_dispatcher()
        self.idempotency_purger = ExpiredKeyPurger(self.idempotency, self.clock)
        self.idempotency_purger.start()
        if self.emulator is not None:
            await self._check_emulator_state()

    async def _check_emulator_state(self) -> None:
        """The embedded emulator must never let the registry lie: tenants whose user pool it
        does not hold (the state file was deleted, or persistence is off) are named in a log line
        and in /health/ready, which then answers 503."""
        assert self.aws is not None and self.list_tenants is not None
        pools: set[str] = set()
        paginator = self.aws.client("cognito-idp").get_paginator("list_user_pools")
        async for page in paginator.paginate(MaxResults=60):
            pools.update(p["Id"] for p in page.get("UserPools", []))
        missing: list[str] = []
        after: str | None = None
        while True:
            page = await self.list_tenants(status=None, tier=None, limit=200, after=after)
            for tenant in page.items:
                pool_id = tenant.outputs.get("user_pool_id")
                if pool_id and tenant.status.value != "deleted" and pool_id not in pools:
                    missing.append(tenant.spec.tenant_id)
            if page.next_after is None:
                break
            after = page.next_after
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            self.emulator_mismatch = (
                f"the embedded emulator does not hold the user pools of {len(missing)} tenant(s) the registry "
                f"records ({shown}); its state ({self.settings.var_dir / 'emulator-state.pickle'}) was lost: "
                "remove the registry too (make clean, or delete var/) to start afresh"
            )
            log.error("emulator_state_mismatch", tenants=len(missing), examples=missing[:5])

    def _setup_events(self) -> None:
        """The outbox's destinations from the settings; every unit of work writes one row per
        destination for each lifecycle event, and wakes the dispatcher when it commits some."""
        import httpx

        from adapters.events.eventbridge import EventBridgePublisher
        from adapters.events.signing import parse_secrets
        from adapters.events.webhooks import WebhookPublisher

        s = self.settings
        assert self.uow is not None and self.aws is not None
        self.outbox = OutboxStore(self.engine)
        publishers: dict[str, Any] = {}
        if s.event_bus_name:
            bus = EventBridgePublisher(self.aws, s.event_bus_name, source=s.event_source)
            publishers[bus.destination] = bus
        if s.webhook_urls:
            assert s.webhook_secret is not None  # settings refuse URLs without a secret
            keys = parse_secrets(s.webhook_secret.get_secret_value())
            if any(key.plain for key in keys):
                log.warning(
                    "webhook_secret_not_whsec",
                    secrets=sum(key.plain for key in keys),
                    hint="deprecated: set TENANTS_WEBHOOK_SECRET to whsec_ + base64 of the secret's bytes (the same key)",
                )
            self._webhook_client = httpx.AsyncClient()
            for url in s.webhook_urls:
                hook = WebhookPublisher(url, keys, self._webhook_client, timeout_s=s.webhook_timeout_s)
                publishers[hook.destination] = hook
        self.event_publishers = publishers
        self.uow.outbox_destinations = tuple(publishers)
        self.uow.on_outbox_commit = self._on_outbox_commit

    def _on_outbox_commit(self, events: list[LifecycleEvent]) -> None:
        if self._crash_on_outbox is not None:
            self._crash_on_outbox(events)
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def start_dispatcher(self) -> EventDispatcher | None:
        """Start delivering the outbox (None when no destination is configured)."""
        if not self.event_publishers or self.dispatcher is not None:
            return self.dispatcher
        assert self.outbox is not None
        s = self.settings
        self.dispatcher = EventDispatcher(
            self.outbox,
            self.event_publishers,
            self.clock,
            RetryPolicy(max_attempts=s.events_max_attempts, base_s=s.events_backoff_s, cap_s=s.events_backoff_max_s),
            self.metrics,
            batch_size=s.events_batch_size,
            lease_seconds=s.events_lease_seconds,
            poll_interval_s=s.events_poll_interval_s,
            shutdown_grace_s=s.shutdown_grace_s,
        )
        self.dispatcher.start()
        return self.dispatcher

    def _rate_limit_hooks(self) -> list[EventHook]:
        self.rate_limiter = CognitoRateLimiter(parse_quotas(self.settings.cognito_quotas))
        return self.rate_limiter.hooks()

    def make_worker(self) -> Worker:
        assert self.uow is not None and self.provision is not None and self.deprovision is not None
        s = self.settings
        return Worker(
            self.uow,
            {
                JobKind.PROVISION: self.metrics.timed_job(
                    JobKind.PROVISION, self.waiters.notifying(self.provision), self.uow
                ),
                JobKind.DEPROVISION: self.metrics.timed_job(
                    JobKind.DEPROVISION, self.waiters.notifying(self.deprovision), self.uow
                ),
                **(
                    {JobKind.UPDATE: self.waiters.notifying(self.apply_settings)}
                    if self.apply_settings is not None
                    else {}
                ),
            },
            self.clock,
            concurrency=s.worker_concurrency,
            lease_seconds=s.lease_seconds,
            poll_interval_s=s.poll_interval_s,
            shutdown_grace_s=s.shutdown_grace_s,
        )

    async def _register_bootstrap_key(self) -> None:
        key = self.settings.bootstrap_api_key
        if key is None or self.api_keys is None or self.bootstrap_key is not None:
            return  # none configured, or `serve` registered it before the server started
        self.bootstrap_key = await register_bootstrap_key(self.api_keys, key.get_secret_value(), self.clock.now())

    async def stop(self) -> None:
        if self.idempotency_purger is not None:
            await self.idempotency_purger.stop()
        if self.worker is not None:
            await self.worker.stop()
        if self.dispatcher is not None:  # after the worker: its last commits may add events
            await self.dispatcher.stop()
        if self._webhook_client is not None:
            await self._webhook_client.aclose()
        if self.aws is not None:
            await self.aws.close()
        if self.emulator is not None:
            self.emulator.stop()
        if self.jwt is not None:
            await self.jwt.aclose()
        if self.engine is not None:
            await self.engine.dispose()

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()
