"""The lifecycle event outbox: one row per (event, destination), delivered by the dispatcher.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0001: final names in op.f(), frozen copies of the column types.
_ts = sa.DateTime(timezone=True)
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", _big_id, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("destination", sa.String(300), nullable=False),
        sa.Column("payload", _json, nullable=False),
        sa.Column("occurred_at", _ts, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", _ts, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", _ts, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", _ts, nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')", name=op.f("ck_outbox_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", "destination", name=op.f("uq_outbox_event_id_destination")),
    )
    op.create_index(op.f("ix_outbox_state_next_attempt_at"), "outbox", ["state", "next_attempt_at"])
    op.create_index(op.f("ix_outbox_destination_tenant_id_id"), "outbox", ["destination", "tenant_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_destination_tenant_id_id"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_state_next_attempt_at"), table_name="outbox")
    op.drop_table("outbox")
