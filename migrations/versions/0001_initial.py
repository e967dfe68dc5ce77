"""initial schema: copy_trades ledger, projection offsets, dead letters, event projections

Revision ID: 0001
Revises:
Create Date: 2025-11-24
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

TZ = sa.DateTime(timezone=True)
SIDES = "side IN ('BUY', 'SELL')"


def _event_columns() -> list[sa.Column]:
    """Envelope + Kafka coordinates, the same leading columns in every event projection."""
    return [
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("produced_at", TZ, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("causation_id", sa.Text(), nullable=True),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    # ---- ledger ------------------------------------------------------------------------------
    op.create_table(
        "copy_trades",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("follow_id", sa.Text(), nullable=False),
        sa.Column("leader_fill_id", sa.Text(), nullable=False),
        sa.Column("follower", sa.Text(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'PENDING'"), nullable=False),
        sa.Column("order_hash", sa.Text(), nullable=True),
        sa.Column("signed_order", postgresql.JSONB(), nullable=True),
        sa.Column("size_e6", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=True),
        sa.Column("filled_shares_e6", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("filled_collateral_e6", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("locked_at", TZ, nullable=True),
        sa.Column("locked_by", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_copy_trades"),
        sa.UniqueConstraint("idempotency_key", name="uq_copy_trades_idempotency_key"),
        sa.UniqueConstraint("follow_id", "leader_fill_id", name="uq_copy_trades_follow_id_leader_fill_id"),
        sa.CheckConstraint(SIDES, name="ck_copy_trades_side"),
        sa.CheckConstraint(
            "status IN ('PENDING', 'SENT', 'FILLED', 'PARTIAL', 'NOT_FILLED', 'REJECTED', 'FAILED', 'UNKNOWN')",
            name="ck_copy_trades_status",
        ),
        sa.CheckConstraint("size_e6 >= 0", name="ck_copy_trades_size_nonneg"),
        sa.CheckConstraint("filled_shares_e6 >= 0 AND filled_collateral_e6 >= 0", name="ck_copy_trades_filled_nonneg"),
        sa.CheckConstraint("attempts >= 0", name="ck_copy_trades_attempts_nonneg"),
    )
    op.create_index("ix_copy_trades_order_hash", "copy_trades", ["order_hash"])
    op.create_index("ix_copy_trades_status_updated_at", "copy_trades", ["status", "updated_at"])
    op.create_index("ix_copy_trades_follower", "copy_trades", ["follower"])

    # ---- projection bookkeeping ----------------------------------------------------------------
    op.create_table(
        "projection_offsets",
        sa.Column("projection", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("projection", "topic", "partition", name="pk_projection_offsets"),
        sa.CheckConstraint("next_offset >= 0", name="ck_projection_offsets_next_offset_nonneg"),
    )

    op.create_table(
        "dead_letters",
        sa.Column("source_topic", sa.Text(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("original", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=True),
        sa.Column("occurred_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("source_topic", "source_partition", "source_offset", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_stage", "dead_letters", ["stage"])

    # ---- event projections ---------------------------------------------------------------------
    op.create_table(
        "leader_fills",
        *_event_columns(),
        sa.Column("leader", sa.Text(), nullable=False),
        sa.Column("exchange", sa.Text(), nullable=False),
        sa.Column("tx_hash", sa.Text(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("condition_id", sa.Text(), nullable=True),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("shares_e6", sa.BigInteger(), nullable=False),
        sa.Column("collateral_e6", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("fee_e6", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("order_hashes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_leader_fills"),
        sa.CheckConstraint(SIDES, name="ck_leader_fills_side"),
        sa.CheckConstraint("role IN ('MAKER', 'TAKER')", name="ck_leader_fills_role"),
    )
    op.create_index("ix_leader_fills_leader_occurred_at", "leader_fills", ["leader", "occurred_at"])
    op.create_index("ix_leader_fills_token_id", "leader_fills", ["token_id"])
    op.create_index("ix_leader_fills_tx_hash", "leader_fills", ["tx_hash"])

    op.create_table(
        "copy_decisions",
        *_event_columns(),
        sa.Column("candidate_id", sa.Text(), nullable=False),
        sa.Column("follow_id", sa.Text(), nullable=False),
        sa.Column("follower", sa.Text(), nullable=False),
        sa.Column("leader_fill_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("intent_id", sa.Text(), nullable=True),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("size_e6", sa.BigInteger(), nullable=False),
        sa.Column("worst_price", sa.Numeric(), nullable=True),
        sa.Column("order_type", sa.Text(), nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("reason_code", sa.Text(), nullable=True),
        sa.Column("reason_detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_copy_decisions"),
        sa.UniqueConstraint("candidate_id", name="uq_copy_decisions_candidate_id"),
        sa.CheckConstraint("action IN ('COPY', 'SKIP')", name="ck_copy_decisions_action"),
        sa.CheckConstraint(SIDES, name="ck_copy_decisions_side"),
    )
    op.create_index("ix_copy_decisions_follower_occurred_at", "copy_decisions", ["follower", "occurred_at"])
    op.create_index("ix_copy_decisions_leader_fill_id", "copy_decisions", ["leader_fill_id"])
    op.create_index("ix_copy_decisions_intent_id", "copy_decisions", ["intent_id"])
    op.create_index("ix_copy_decisions_reason_code", "copy_decisions", ["reason_code"])

    op.create_table(
        "execution_results",
        *_event_columns(),
        sa.Column("intent_id", sa.Text(), nullable=False),
        sa.Column("follow_id", sa.Text(), nullable=False),
        sa.Column("follower", sa.Text(), nullable=False),
        sa.Column("leader_fill_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("order_hash", sa.Text(), nullable=True),
        sa.Column("filled_shares_e6", sa.BigInteger(), nullable=False),
        sa.Column("filled_collateral_e6", sa.BigInteger(), nullable=False),
        sa.Column("avg_price", sa.Numeric(), nullable=True),
        sa.Column("fee_e6", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_execution_results"),
        sa.CheckConstraint(
            "status IN ('FILLED', 'PARTIAL', 'NOT_FILLED', 'REJECTED', 'FAILED', 'UNKNOWN', 'DRY_RUN')",
            name="ck_execution_results_status",
        ),
    )
    op.create_index("ix_execution_results_intent_id", "execution_results", ["intent_id"])
    op.create_index("ix_execution_results_follower_occurred_at", "execution_results", ["follower", "occurred_at"])
    op.create_index("ix_execution_results_order_hash", "execution_results", ["order_hash"])

    op.create_table(
        "settlement_events",
        *_event_columns(),
        sa.Column("follower", sa.Text(), nullable=False),
        sa.Column("intent_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount_e6", sa.BigInteger(), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.Text(), nullable=True),
        sa.Column("debt_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_settlement_events"),
    )
    op.create_index("ix_settlement_events_follower_occurred_at", "settlement_events", ["follower", "occurred_at"])
    op.create_index("ix_settlement_events_intent_id", "settlement_events", ["intent_id"])
    op.create_index("ix_settlement_events_debt_id", "settlement_events", ["debt_id"])


def downgrade() -> None:
    for table in ("settlement_events", "execution_results", "copy_decisions", "leader_fills",
                  "dead_letters", "projection_offsets", "copy_trades"):
        op.drop_table(table)  # drops its indexes and constraints with it
