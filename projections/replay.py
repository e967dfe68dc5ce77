"""Rebuild every projection from offset 0 and checksum the result (DESIGN invariant 7).

`replay_all` truncates the projection tables and their offsets, folds every topic from the
beginning up to the end offsets seen when it started, and returns a checksum per table. Because
the folds are deterministic (event timestamps and Kafka coordinates only, no clock), replaying
twice gives the same checksums, and they equal the checksums of the live-folded tables.

A replay takes the projections' advisory lock exclusively: it refuses to start while a live runner
holds it (stop the runners first), and runners wait for a replay to finish.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple, cast

import psycopg
from confluent_kafka import TopicPartition
from psycopg import sql

from horus.db.engine import psycopg_conninfo
from horus.db.models import Base
from horus.kafka.client import make_consumer
from horus.settings import Settings
from projections.folds import ALL_PROJECTIONS, DEAD_LETTERS_TABLE, Projection
from projections.runner import ADVISORY_LOCK_KEY, ProjectionRunner, ProjectionStats


class TableChecksum(NamedTuple):
    rows: int
    md5: str


class ReplayBlocked(RuntimeError):
    """Projection runners are running; a replay would truncate tables under them."""


def _primary_key(table: str) -> list[str]:
    return [column.name for column in Base.metadata.tables[table].primary_key.columns]


def checksum_query(table: str) -> sql.Composed:
    """count(*) and md5 over the rows' text forms ordered by primary key (byte order), in SQL."""
    if table not in Base.metadata.tables:
        raise ValueError(f"unknown table {table!r}")
    order = []
    for column in Base.metadata.tables[table].primary_key.columns:
        ident = sql.Identifier(column.name)
        order.append(sql.SQL('{} COLLATE "C"').format(ident) if column.type.python_type is str else ident)
    return sql.SQL(
        "SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY {order})), md5('')) FROM {table} AS t"
    ).format(order=sql.SQL(", ").join(order), table=sql.Identifier(table))


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(psycopg_conninfo(settings.database_url), autocommit=True, application_name="horus-replay")


def _checksums(conn: psycopg.Connection, tables: Sequence[str]) -> dict[str, TableChecksum]:
    result = {}
    with conn.transaction():
        # the text form of a row must not depend on the session: pin every setting it reads
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        conn.execute("SET LOCAL IntervalStyle = 'postgres'")
        conn.execute("SET LOCAL bytea_output = 'hex'")
        conn.execute("SET LOCAL extra_float_digits = 1")
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot for all tables
        for table in tables:
            # an aggregate without GROUP BY answers exactly one row
            rows, md5 = cast(tuple[int, str], conn.execute(checksum_query(table)).fetchone())
            result[table] = TableChecksum(rows, md5)
    return result


def table_checksums(settings: Settings, tables: Sequence[str] | None = None) -> dict[str, TableChecksum]:
    """(row count, md5) per table, computed in Postgres from one snapshot; by default every table a
    replay rebuilds (the projections' own list, so a new table cannot be missed)."""
    with _connect(settings) as conn:
        return _checksums(conn, tables_of(ALL_PROJECTIONS) if tables is None else tables)


def tables_of(projections: Sequence[Projection]) -> list[str]:
    tables = [t for p in projections for t in p.tables if t != DEAD_LETTERS_TABLE]
    return tables + [DEAD_LETTERS_TABLE]  # every projection may park messages there


def truncate_projections(conn: psycopg.Connection, projections: Sequence[Projection] = ALL_PROJECTIONS) -> None:
    """Empty the projections' tables and forget all their stored offsets, in one transaction."""
    with conn.transaction():
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables_of(projections)))))
        conn.execute("DELETE FROM projection_offsets WHERE projection = ANY(%s)", ([p.name for p in projections],))


def replay_all(
    settings: Settings,
    projections: Sequence[Projection] = ALL_PROJECTIONS,
    *,
    batch_size: int = 1000,
    stats_out: list[ProjectionStats] | None = None,
    lock_wait: float = 5.0,
    idle_timeout: float = 120.0,
) -> dict[str, TableChecksum]:
    """Truncate, fold every topic from offset 0 to its end offset at start, and checksum.

    Raises ReplayBlocked if live runners hold the lock for longer than `lock_wait` seconds, and
    TimeoutError if no message arrives for `idle_timeout` seconds before the end offsets are
    reached (e.g. a transaction left open). The replay's counters go to `stats_out` when given."""
    with _connect(settings) as conn:
        deadline = time.monotonic() + lock_wait
        lock = "SELECT pg_try_advisory_lock(%s)"
        # a SELECT of one function call answers exactly one row
        while not cast(tuple[bool], conn.execute(lock, (ADVISORY_LOCK_KEY,)).fetchone())[0]:
            if time.monotonic() >= deadline:
                raise ReplayBlocked("projection runners are running against this database; stop them before a replay")
            time.sleep(0.2)
        try:
            stats = _fold_from_beginning(settings, conn, projections, batch_size, idle_timeout)
            if stats_out is not None:
                stats_out.append(stats)
            return _checksums(conn, tables_of(projections))
        finally:
            if not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def _fold_from_beginning(
    settings: Settings,
    conn: psycopg.Connection,
    projections: Sequence[Projection],
    batch_size: int,
    idle_timeout: float,
) -> ProjectionStats:
    runner = ProjectionRunner(settings, projections, group=False, take_lock=False, batch_size=batch_size)
    try:
        runner._connect()
        runner.consumer = make_consumer(settings, None)
        targets = runner.end_offsets()  # the end offsets at start bound the replay
        truncate_projections(conn, projections)
        runner._on_assign(runner.consumer, [TopicPartition(t, p) for t, p in targets])
        last_progress = time.monotonic()
        while not runner.caught_up(targets):
            result = runner.step()
            if result is not None:
                if result.rejected:
                    raise RuntimeError("a replay batch was rejected by the offset guard: is another runner writing?")
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout:
                progress = runner.progress(targets)
                behind = {k: (progress[k], end) for k, end in targets.items() if progress[k] < end}
                raise TimeoutError(f"replay made no progress for {idle_timeout:.0f}s; behind (at, end): {behind}")
        return runner.stats
    finally:
        runner.close()
