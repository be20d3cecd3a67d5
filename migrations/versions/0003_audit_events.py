"""The audit trail: state-changing requests and provisioning steps, per tenant.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0001: final names in op.f(), frozen copies of the column types.
_ts = sa.DateTime(timezone=True)
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", _big_id, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=True),
        sa.Column("at", _ts, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", _json, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_tenant_id_id"), "audit_events", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_tenant_id_id"), table_name="audit_events")
    op.drop_table("audit_events")
