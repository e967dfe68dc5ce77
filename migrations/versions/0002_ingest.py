"""ingest: per-source chain cursors and leader-fill claims (exactly-once production by event id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ingest_cursors",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_ingest_cursors"),
    )
    op.create_table(
        "leader_fill_claims",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("claimed_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("produced_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_leader_fill_claims"),
        sa.CheckConstraint("status IN ('pending', 'produced')", name="ck_leader_fill_claims_status"),
    )
    op.create_index("ix_leader_fill_claims_source_status", "leader_fill_claims", ["source", "status"])


def downgrade() -> None:
    op.drop_table("leader_fill_claims")
    op.drop_table("ingest_cursors")
