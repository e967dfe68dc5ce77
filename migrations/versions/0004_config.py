"""config: followers, follows and control state projected from config.changes / control.commands

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
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

TZ = sa.DateTime(timezone=True)


def _latest_columns() -> list[sa.Column]:
    """The change each row was folded from (projections: latest Kafka offset per key wins)."""
    return [
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "follower_configs",
        sa.Column("follower", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("custody", sa.Text(), nullable=True),
        sa.Column("signature_type", sa.Integer(), nullable=True),
        sa.Column("credentials_ref", sa.Text(), nullable=True),
        sa.Column("body", postgresql.JSONB(), nullable=True),
        *_latest_columns(),
        sa.PrimaryKeyConstraint("follower", name="pk_follower_configs"),
    )
    op.create_table(
        "follow_configs",
        sa.Column("follow_id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("follower", sa.Text(), nullable=True),
        sa.Column("leader", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("body", postgresql.JSONB(), nullable=True),
        *_latest_columns(),
        sa.PrimaryKeyConstraint("follow_id", name="pk_follow_configs"),
    )
    op.create_index("ix_follow_configs_follower", "follow_configs", ["follower"])
    op.create_index("ix_follow_configs_leader", "follow_configs", ["leader"])
    op.create_table(
        "control_switches",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("issued_by", sa.Text(), nullable=True),
        *_latest_columns(),
        sa.PrimaryKeyConstraint("key", name="pk_control_switches"),
    )
    with op.batch_alter_table("copy_decisions") as batch:
        batch.add_column(sa.Column("leader", sa.Text(), nullable=True))
        batch.add_column(sa.Column("condition_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reserved_e6", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("leader_shares_e6", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("inputs", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("copy_decisions") as batch:
        for column in ("inputs", "leader_shares_e6", "reserved_e6", "condition_id", "leader"):
            batch.drop_column(column)
    op.drop_table("control_switches")
    op.drop_index("ix_follow_configs_leader", table_name="follow_configs")
    op.drop_index("ix_follow_configs_follower", table_name="follow_configs")
    op.drop_table("follow_configs")
    op.drop_table("follower_configs")
