"""config invalid: a config change that breaks a rule replaces the row (as it does in decide), with the reason

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("follower_configs", "follow_configs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("invalid", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "invalid")
