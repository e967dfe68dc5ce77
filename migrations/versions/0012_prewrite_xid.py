"""prewrite xid: the id of the transaction that inserted each ledger row, so its commit time can be proven

The chaos verdict counts a venue order as an orphan unless its ledger row was committed *before* the venue
received it (DESIGN invariant 2). The commit time must come from Postgres itself (`track_commit_timestamp`,
read with `pg_xact_commit_timestamp`), not from a column we write: `created_at` is `now()`, the transaction's
start, not its commit. The row's `xmin` would name the inserting transaction only until the first update, so
the prewrite's transaction id is kept in a column of its own, filled by its default (the prewrite INSERT does
not list it).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # existing rows get this migration's transaction id: their commit time is unknown, and says so
    op.execute("ALTER TABLE copy_trades ADD COLUMN prewrite_xid xid8 NOT NULL DEFAULT pg_current_xact_id()")


def downgrade() -> None:
    op.drop_column("copy_trades", "prewrite_xid")
