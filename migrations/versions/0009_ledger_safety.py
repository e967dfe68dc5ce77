"""ledger safety: what the executor needs to check and settle a row on its own

- `condition_id`: a market pause names the condition (or the token); checked before every POST;
- `credentials_ref`: a row is looked up with its follower's API credentials even after the follower was
  disabled or deleted (its configuration is gone, its order may still fill);
- `fee_rate` / `fee_exponent`: the market's taker fee schedule at prewrite, to price the fee of a `matched`
  reply (which carries none); NULL: unknown;
- `next_check_at` / `checks`: the reconciler looks at the rows due first and backs off a row that stays
  inconclusive, so a pile of unreconcilable rows never starves the others (head-of-line);
- `final`: false for fills recorded from a `matched` reply, which are not settled on chain yet: the reconciler
  confirms them from CONFIRMED trades or the chain, or corrects them (a trade can still FAIL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("copy_trades", sa.Column("condition_id", sa.Text(), nullable=True))
    op.add_column("copy_trades", sa.Column("credentials_ref", sa.Text(), nullable=True))
    op.add_column("copy_trades", sa.Column("fee_rate", sa.Numeric(), nullable=True))
    op.add_column("copy_trades", sa.Column("fee_exponent", sa.Numeric(), nullable=True))
    op.add_column("copy_trades", sa.Column("next_check_at", TZ, server_default=sa.func.now(), nullable=False))
    op.add_column("copy_trades", sa.Column("checks", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("copy_trades", sa.Column("final", sa.Boolean(), server_default=sa.true(), nullable=False))
    # the reconciler's query: open rows by when they are due
    op.create_index("ix_copy_trades_status_next_check_at", "copy_trades", ["status", "next_check_at"])


def downgrade() -> None:
    op.drop_index("ix_copy_trades_status_next_check_at", table_name="copy_trades")
    for column in ("final", "checks", "next_check_at", "fee_exponent", "fee_rate", "credentials_ref", "condition_id"):
        op.drop_column("copy_trades", column)
