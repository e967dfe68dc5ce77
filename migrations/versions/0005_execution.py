"""execution: ledger columns for signed orders, reconciliation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
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

TZ = sa.DateTime(timezone=True)
OLD_STATUSES = ("PENDING", "SENT", "FILLED", "PARTIAL", "NOT_FILLED", "REJECTED", "FAILED", "UNKNOWN")
NEW_STATUSES = OLD_STATUSES + ("SUBMITTED", "DRY_RUN")
# execution.results projection: the ExecutionResult enum gained SUBMITTED (a resting order)
OLD_RESULT_STATUSES = ("FILLED", "PARTIAL", "NOT_FILLED", "REJECTED", "FAILED", "UNKNOWN", "DRY_RUN")
NEW_RESULT_STATUSES = OLD_RESULT_STATUSES + ("SUBMITTED",)


def _status_check(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("copy_trades") as batch:
        batch.add_column(sa.Column("decision_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("order_type", sa.Text(), nullable=True))
        batch.add_column(sa.Column("expires_at", TZ, nullable=True))
        batch.add_column(sa.Column("signer", sa.Text(), nullable=True))
        batch.add_column(sa.Column("venue_mode", sa.Text(), nullable=True))
        batch.add_column(sa.Column("body_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("signature_generation", sa.Integer(), server_default=sa.text("0"),
                                   nullable=False))
        batch.add_column(sa.Column("venue_status", sa.Text(), nullable=True))
        batch.add_column(sa.Column("fee_e6", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("sent_at", TZ, nullable=True))
        batch.add_column(sa.Column("unknown_since", TZ, nullable=True))
        batch.add_column(sa.Column("result_seq", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("last_result", postgresql.JSONB(), nullable=True))
        batch.add_column(sa.Column("result_sent_seq", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("occurred_at", TZ, nullable=True))
    op.drop_constraint("ck_copy_trades_status", "copy_trades", type_="check")
    op.create_check_constraint("ck_copy_trades_status", "copy_trades", _status_check(NEW_STATUSES))
    op.create_check_constraint("ck_copy_trades_generation_nonneg", "copy_trades", "signature_generation >= 0")
    op.drop_constraint("ck_execution_results_status", "execution_results", type_="check")
    op.create_check_constraint("ck_execution_results_status", "execution_results",
                               _status_check(NEW_RESULT_STATUSES))


def downgrade() -> None:
    op.drop_constraint("ck_execution_results_status", "execution_results", type_="check")
    op.execute("DELETE FROM execution_results WHERE status = 'SUBMITTED'")  # projection: rebuilt by replay
    op.create_check_constraint("ck_execution_results_status", "execution_results",
                               _status_check(OLD_RESULT_STATUSES))
    op.drop_constraint("ck_copy_trades_generation_nonneg", "copy_trades", type_="check")
    op.drop_constraint("ck_copy_trades_status", "copy_trades", type_="check")
    op.execute("UPDATE copy_trades SET status = 'SENT' WHERE status = 'SUBMITTED'")
    op.execute("UPDATE copy_trades SET status = 'FAILED' WHERE status = 'DRY_RUN'")
    op.create_check_constraint("ck_copy_trades_status", "copy_trades", _status_check(OLD_STATUSES))
    for column in ("occurred_at", "result_sent_seq", "last_result", "result_seq", "unknown_since", "sent_at",
                   "fee_e6", "venue_status", "signature_generation", "body_text", "venue_mode", "signer",
                   "expires_at", "order_type", "decision_id"):
        op.drop_column("copy_trades", column)
