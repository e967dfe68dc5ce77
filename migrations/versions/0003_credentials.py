"""credentials: encrypted per-follower credentials

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "follower_credentials",
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("signer_address", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("ref", name="pk_follower_credentials"),
        sa.CheckConstraint("octet_length(nonce) = 12", name="ck_follower_credentials_nonce_len"),
        sa.CheckConstraint("octet_length(ciphertext) > 16", name="ck_follower_credentials_ciphertext_len"),
    )


def downgrade() -> None:
    op.drop_table("follower_credentials")
