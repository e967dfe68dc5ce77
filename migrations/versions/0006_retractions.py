"""retractions: LeaderFillRetracted events on leader.fills get a projection of their own

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    # an event projection like leader_fills: envelope + Kafka coordinates, one row per event id.
    # Retractions folded before this revision sit in dead_letters; `horus replay projections` moves them here.
    op.create_table(
        "leader_fill_retractions",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("produced_at", TZ, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("causation_id", sa.Text(), nullable=True),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("leader_fill_id", sa.Text(), nullable=False),
        sa.Column("leader", sa.Text(), nullable=False),
        sa.Column("tx_hash", sa.Text(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_leader_fill_retractions"),
    )
    # "was this fill retracted?" (horus why)
    op.create_index("ix_leader_fill_retractions_leader_fill_id", "leader_fill_retractions", ["leader_fill_id"])


def downgrade() -> None:
    op.drop_table("leader_fill_retractions")  # a projection: rebuilt by replay after an upgrade
