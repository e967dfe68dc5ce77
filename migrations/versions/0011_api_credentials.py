"""api credentials: each follower's CLOB API credentials encrypted apart from its signing key (least privilege)

Existing refs get their record the next time their credentials are stored (`horus credentials put`, or
`horus credentials sync-api` for all of them at once): a migration cannot decrypt, it has no key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-15
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "follower_api_credentials",
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("signer_address", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("ref", name="pk_follower_api_credentials"),
        sa.CheckConstraint("octet_length(nonce) = 12", name="ck_follower_api_credentials_nonce_len"),
        sa.CheckConstraint("octet_length(ciphertext) > 16", name="ck_follower_api_credentials_ciphertext_len"),
    )


def downgrade() -> None:
    op.drop_table("follower_api_credentials")
