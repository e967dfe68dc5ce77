"""Alembic migrations on a real, fresh PostgreSQL database: up to head, down to base, up again."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from horus.db.engine import current_revision, downgrade, make_engine, psycopg_conninfo, scratch_database, upgrade
from horus.db.models import Base
from horus.settings import Settings

pytestmark = pytest.mark.integration

TABLES = {
    "copy_trades",
    "projection_offsets",
    "dead_letters",
    "leader_fills",
    "copy_decisions",
    "execution_results",
    "settlement_events",
    "ingest_cursors",
    "leader_fill_claims",
    "follower_credentials",
    "follower_configs",
    "follow_configs",
    "control_switches",
    "leader_fill_retractions",
    "decide_snapshots",
    "copy_candidates",
    "follower_api_credentials",
}


@pytest.fixture
def fresh(settings: Settings):
    """Settings pointing at a brand-new empty database on the stack's server (dropped afterwards)."""
    with scratch_database(settings, f"horus_mig_{uuid.uuid4().hex[:8]}", migrate=False) as empty:
        yield empty


def tables(settings: Settings) -> set[str]:
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows} - {"alembic_version"}


def schema_drift(settings: Settings) -> list:
    with make_engine(settings).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, Base.metadata)


def test_upgrade_downgrade_upgrade_on_a_fresh_database(fresh):
    assert tables(fresh) == set() and current_revision(fresh) is None

    upgrade(fresh)
    assert tables(fresh) == TABLES
    assert current_revision(fresh) == "0012"
    assert schema_drift(fresh) == []  # the models describe exactly what the migration built

    downgrade(fresh, "base")
    assert tables(fresh) == set() and current_revision(fresh) is None

    upgrade(fresh)
    assert tables(fresh) == TABLES and schema_drift(fresh) == []
    upgrade(fresh)  # already at head: a no-op


def test_the_ledger_enforces_one_row_per_follow_and_leader_fill(fresh):
    upgrade(fresh)
    insert = (
        "INSERT INTO copy_trades (idempotency_key, follow_id, leader_fill_id, follower, token_id, side, size_e6,"
        " price, signed_order) VALUES (%s, %s, %s, '0xf', '1', 'BUY', 5000000, 0.53, %s::jsonb)"
        " ON CONFLICT DO NOTHING RETURNING id, status, attempts, filled_shares_e6, created_at"
    )
    with psycopg.connect(psycopg_conninfo(fresh.database_url), autocommit=True) as conn:
        row = conn.execute(insert, ("k1", "follow-1", "lf-1", '{"salt": "1"}')).fetchone()
        assert row[1:4] == ("PENDING", 0, 0) and row[4] is not None
        # the prewrite is idempotent on both the key and (follow, leader fill)
        assert conn.execute(insert, ("k1", "follow-1", "lf-2", None)).fetchone() is None
        assert conn.execute(insert, ("k2", "follow-1", "lf-1", None)).fetchone() is None
        assert conn.execute(insert, ("k3", "follow-2", "lf-1", None)).fetchone() is not None
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE copy_trades SET status = 'MAYBE' WHERE idempotency_key = 'k1'")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE copy_trades SET size_e6 = -1 WHERE idempotency_key = 'k1'")
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'copy_trades'")}
        assert {
            "ix_copy_trades_order_hash",
            "uq_copy_trades_idempotency_key",
            "uq_copy_trades_follow_id_leader_fill_id",
        } <= indexes


def test_no_float_columns_anywhere(fresh):
    upgrade(fresh)
    with psycopg.connect(psycopg_conninfo(fresh.database_url)) as conn:
        floats = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND data_type IN ('real', 'double precision')"
        ).fetchall()
    assert floats == []
