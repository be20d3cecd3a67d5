"""Per-tenant settings (URLs, extra tags, identity providers) and the "update" job kind.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add a CHECK constraint or change one in place, so the
    # table is recreated there; on PostgreSQL these are plain ALTER TABLE statements.
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("settings", _json, nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column("settings_status", sa.String(20), nullable=False, server_default=sa.text("'applied'")))
        batch.create_check_constraint(op.f("ck_tenants_settings_status"), "settings_status IN ('applied', 'pending', 'failed')")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_jobs_kind"), "kind IN ('provision', 'deprovision', 'update')")


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE kind = 'update'")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_jobs_kind"), "kind IN ('provision', 'deprovision')")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_constraint(op.f("ck_tenants_settings_status"), type_="check")
        batch.drop_column("settings_status")
        batch.drop_column("settings")
