"""copy_candidates: the copy.candidates topic is folded into Postgres like every other topic

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    # an event projection like copy_decisions: envelope + Kafka coordinates, one row per candidate id.
    # Candidates produced before this revision appear after `horus replay projections`.
    op.create_table(
        "copy_candidates",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("produced_at", TZ, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("causation_id", sa.Text(), nullable=True),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("leader_fill_id", sa.Text(), nullable=False),
        sa.Column("follow_id", sa.Text(), nullable=False),
        sa.Column("follower", sa.Text(), nullable=False),
        sa.Column("leader", sa.Text(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("leader_shares_e6", sa.BigInteger(), nullable=False),
        sa.Column("leader_collateral_e6", sa.BigInteger(), nullable=False),
        sa.Column("leader_price", sa.Numeric(), nullable=False),
        sa.Column("condition_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_copy_candidates"),
        sa.CheckConstraint("side IN ('BUY', 'SELL')", name="ck_copy_candidates_side"),
    )
    op.create_index("ix_copy_candidates_follower_occurred_at", "copy_candidates", ["follower", "occurred_at"])
    op.create_index("ix_copy_candidates_leader_fill_id", "copy_candidates", ["leader_fill_id"])


def downgrade() -> None:
    op.drop_table("copy_candidates")  # a projection: rebuilt by replay after an upgrade
