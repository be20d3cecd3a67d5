"""The registry schema, as SQLAlchemy Core tables.

Constraint names come from ``metadata.naming_convention`` so migrations, error translation and
the schema-drift test all see the same names on PostgreSQL and SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as UTC, read back as an aware UTC datetime on every backend.

    PostgreSQL keeps it in ``timestamptz``; SQLite has no time zones, so the value is stored as
    naive UTC text and the zone is put back on the way out. Naive input is refused rather than
    guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; the registry stores aware UTC datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets a bigint identity.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def _json() -> TypeEngine[Any]:
    # jsonb on PostgreSQL: comparable with =, indexable, and what alembic can compare defaults of.
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("tier", String(64), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("admin_email", String(320), nullable=True),
    Column("status", String(20), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("region", String(32), nullable=False),
    Column("last_error", _json(), nullable=True),
    Column("outputs", _json(), nullable=False, server_default=text("'{}'")),
    Column("completed_steps", _json(), nullable=False, server_default=text("'[]'")),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("version", Integer(), nullable=False, server_default=text("1")),
    # Per-tenant settings (domain/tenant_settings.py), never a secret: a provider's client secret
    # is in AWS Secrets Manager and only its ARN is here.
    Column("settings", _json(), nullable=False, server_default=text("'{}'")),
    Column("settings_status", String(20), nullable=False, server_default=text("'applied'")),
    CheckConstraint(
        "status IN ('provisioning', 'active', 'failed', 'deprovisioning', 'deleted')", name="status"
    ),
    CheckConstraint("settings_status IN ('applied', 'pending', 'failed')", name="settings_status"),
    # Filtered keyset pagination: WHERE status = ? AND tenant_id > ? ORDER BY tenant_id. The first
    # also serves every lookup by status alone, so status has no index of its own.
    Index(None, "status", "tenant_id"),
    Index(None, "tier", "tenant_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("attempts", Integer(), nullable=False, server_default=text("0")),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint("kind IN ('provision', 'deprovision', 'update')", name="kind"),
    CheckConstraint("state IN ('pending', 'running', 'done')", name="state"),
    Index(None, "state", "id"),
    # The last safety net behind enqueue's de-duplication: at most one pending job of a kind per
    # tenant, even when two enqueues race.
    Index(
        "uq_jobs_tenant_id_kind_pending",
        "tenant_id",
        "kind",
        unique=True,
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", _json(), nullable=False, server_default=text("'[]'")),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
)

# Idempotency-Key entries (draft-ietf-httpapi-idempotency-key-header), scoped to the API key that
# sent them. ``response_body`` is the exact text that was sent (not JSON: jsonb would reorder and
# re-space it, and a replay must be byte-for-byte); ``response_headers`` holds the few headers a
# replay repeats (Content-Type, Location, Preference-Applied).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", String(255), primary_key=True),  # a Principal id: API key id or "jwt:<iss>#<sub>"
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("response_status", Integer(), nullable=True),
    Column("response_headers", _json(), nullable=True),
    Column("response_body", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    CheckConstraint("state IN ('in_flight', 'done')", name="state"),
    CheckConstraint(
        "state = 'in_flight' OR (response_status IS NOT NULL AND response_body IS NOT NULL)", name="response"
    ),
)

# Keys the service generated for itself, one row per purpose, shared by every process on the
# registry: "idempotency_fingerprint" is the HMAC key of the Idempotency-Key fingerprint's hash of
# secrets while TENANTS_IDEMPOTENCY_HMAC_KEY is not set (service/idempotency.py).
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# The audit trail (domain/audit.py). No foreign key to tenants: events outlive anything done to
# a tenant row, and a refused request about an unknown id (tenant_id may then be NULL) is kept too.
# Pages of one tenant's events are read as WHERE tenant_id = ? AND id > ? ORDER BY id.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(40), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", Text(), nullable=False),
    Column("action", String(100), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("detail", _json(), nullable=False, server_default=text("'{}'")),
    Column("request_id", String(64), nullable=True),
    Index(None, "tenant_id", "id"),
)

# Lifecycle events on their way out (domain/lifecycle.py, adapters/registry/outbox.py): one row per
# (event, destination), written in the transaction of the state change the event describes, so
# each destination is delivered and retried on its own. ``destination`` is "eventbridge:<bus>" or
# "webhook:<hash of the URL>" (never the URL itself). A row is claimable when pending, due, not
# leased, and the oldest pending row of its tenant for its destination (in order per tenant).
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("tenant_id", String(40), nullable=False),
    Column("destination", String(300), nullable=False),
    Column("payload", _json(), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer(), nullable=False, server_default=text("0")),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="state"),
    UniqueConstraint("event_id", "destination"),
    Index(None, "state", "next_attempt_at"),
    Index(None, "destination", "tenant_id", "id"),
)
