"""decide snapshots: a partition's decide state at a consistent moment, so a rebuild folds only what followed

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decide_snapshots",
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("decisions_offset", sa.BigInteger(), nullable=False),
        sa.Column("results_offset", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "partition", name="pk_decide_snapshots"),
        sa.CheckConstraint("decisions_offset >= 0 AND results_offset >= 0",
                           name="ck_decide_snapshots_offsets_nonneg"),
    )


def downgrade() -> None:
    op.drop_table("decide_snapshots")
