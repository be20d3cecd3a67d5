"""The registry: tenants, jobs and API keys.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names are wrapped in op.f(): they are final, and the naming convention of the target metadata
# must not be applied to them again.
# Frozen copies of the column types in adapters/registry/tables.py: a migration must keep
# meaning what it meant when it was written. UtcDateTime is DateTime(timezone=True) underneath.
_ts = sa.DateTime(timezone=True)
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("admin_email", sa.String(320), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("last_error", _json, nullable=True),
        sa.Column("outputs", _json, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("completed_steps", _json, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenants")),
        sa.CheckConstraint(
            "status IN ('provisioning', 'active', 'failed', 'deprovisioning', 'deleted')",
            name=op.f("ck_tenants_status"),
        ),
    )
    op.create_index(op.f("ix_tenants_status_tenant_id"), "tenants", ["status", "tenant_id"])
    op.create_index(op.f("ix_tenants_tier_tenant_id"), "tenants", ["tier", "tenant_id"])

    op.create_table(
        "jobs",
        sa.Column("id", _big_id, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _ts, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_jobs_tenant_id_tenants")),
        sa.CheckConstraint("kind IN ('provision', 'deprovision')", name=op.f("ck_jobs_kind")),
        sa.CheckConstraint("state IN ('pending', 'running', 'done')", name=op.f("ck_jobs_state")),
    )
    op.create_index(op.f("ix_jobs_tenant_id"), "jobs", ["tenant_id"])
    op.create_index(op.f("ix_jobs_state_id"), "jobs", ["state", "id"])
    op.create_index(
        op.f("uq_jobs_tenant_id_kind_pending"),
        "jobs",
        ["tenant_id", "kind"],
        unique=True,
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", _json, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("expires_at", _ts, nullable=True),
        sa.Column("revoked_at", _ts, nullable=True),
        sa.Column("last_used_at", _ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("jobs")
    op.drop_table("tenants")
