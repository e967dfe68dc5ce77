"""The transactional writer: one folded batch and its offsets in one Postgres transaction.

This is step 4 of the runner's loop (see `projections.runner`): the offset guard goes first, then
every table's rows; a partition the guard does not return was already folded past this batch, so
the whole transaction is rolled back (`StaleBatch`). The statements come from `projections.sql`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import psycopg

from horus.db.engine import refuses_a_value
from projections.folds import DEAD_LETTERS_TABLE, FoldResult, SourceMessage, parked_row
from projections.lag import TopicPartitionKey
from projections.sql import (
    COLUMN_TYPES,
    LATEST_WINS,
    copy_statement,
    guard_statement,
    stage_table_statement,
    staged_insert_statement,
    table_columns,
    upsert_statement,
)


class StaleBatch(Exception):
    """The offset guard refused the batch: some partition was already folded past it."""

    def __init__(self, stale: list[TopicPartitionKey]):
        super().__init__(f"batch already folded for {stale}")
        self.stale = stale


class BatchWriter:
    """Writes one folded batch and its offsets in one transaction.

    Event tables take a binary COPY straight into the table, under a savepoint. When the unique
    key refuses it (a fact stored before, or twice in the batch) the same rows go by binary COPY
    into a per-connection temp staging table, then one `INSERT ... SELECT DISTINCT ON (key) ...
    ON CONFLICT (key) DO UPDATE ... WHERE <lower coordinates>`: without a conflict both ways
    store the same rows, so the result stays idempotent. LATEST_WINS tables always take the
    staging way; dead letters (rare) go through `executemany`."""

    def __init__(self, conn: psycopg.Connection, tables: Sequence[str]):
        self.conn = conn
        self.tables = list(tables)
        self.columns = {table: table_columns(table) for table in self.tables}
        self.getters = {table: itemgetter(*columns) for table, columns in self.columns.items()}
        self.statements = {table: upsert_statement(table).as_string(conn) for table in self.tables}
        self._guards: dict[int, str] = {}
        self.staged: dict[str, tuple[str, str, list[str]]] = {}
        self.direct: dict[str, str] = {}  # COPY straight into the table (event tables only)
        for table in self.tables:
            if table != DEAD_LETTERS_TABLE:
                self.staged[table] = self._stage(table)
                if table not in LATEST_WINS:  # a config key changes again and again: always staged
                    self.direct[table] = copy_statement(table, table).as_string(conn)

    def _stage(self, table: str) -> tuple[str, str, list[str]]:
        stage = f"_stage_{table}"
        self.conn.execute(stage_table_statement(stage, table))
        types: dict[str, str] = dict(self.conn.execute(COLUMN_TYPES, (table,)).fetchall())
        insert = staged_insert_statement(table, stage).as_string(self.conn)
        return copy_statement(stage, table).as_string(self.conn), insert, [types[c] for c in self.columns[table]]

    def _guard(self, offsets: Mapping[tuple[str, str, int], int]) -> None:
        n = len(offsets)
        statement = self._guards.get(n)
        if statement is None:
            statement = self._guards[n] = guard_statement(n).as_string(self.conn)
        params: list[Any] = []
        for (projection, topic, partition), next_offset in offsets.items():
            params += (projection, topic, partition, next_offset)
        returned = {(p, t, part) for p, t, part in self.conn.execute(statement, params).fetchall()}
        stale = [(t, part) for (p, t, part) in offsets if (p, t, part) not in returned]
        if stale:
            raise StaleBatch(stale)

    def _rows(self, table: str, rows: list[dict[str, Any]]) -> int:
        with self.conn.cursor() as cur:
            staged = self.staged.get(table)
            if staged is None:
                get = self.getters[table]
                cur.executemany(self.statements[table], [get(row) for row in rows])
                return max(cur.rowcount, 0)
            copy_sql, insert_sql, types = staged
            direct = self.direct.get(table)
            if direct is not None:
                # nearly every batch holds only new facts: COPY them straight in (about half the
                # database time of staging + upsert); a duplicate undoes just this savepoint
                try:
                    with self.conn.transaction():
                        self._copy(cur, direct, types, table, rows)
                    return len(rows)
                except psycopg.errors.UniqueViolation:
                    pass
            self._copy(cur, copy_sql, types, table, rows)
            cur.execute(insert_sql)
            return max(cur.rowcount, 0)

    def _copy(
        self, cur: psycopg.Cursor, statement: str, types: list[str], table: str, rows: list[dict[str, Any]]
    ) -> None:
        get = self.getters[table]
        with cur.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(get(row))

    def write(self, folded: FoldResult, offsets: Mapping[tuple[str, str, int], int]) -> dict[str, int]:
        """Fast path: guard, then every table, one commit. Raises StaleBatch."""
        written: dict[str, int] = {}
        with self.conn.transaction():
            if offsets:
                self._guard(offsets)
            for table in self.tables:
                rows = folded.rows.get(table)
                if rows:
                    written[table] = self._rows(table, rows)
        return written

    def write_row_by_row(
        self, folded: FoldResult, offsets: Mapping[tuple[str, str, int], int]
    ) -> tuple[dict[str, int], int]:
        """Slow path after the database refused a row: every row under its own savepoint; a row
        Postgres refuses is parked in dead_letters instead. Returns (written, rows parked)."""
        written: Counter = Counter()
        parked: list[tuple[dict[str, Any], SourceMessage]] = []
        with self.conn.transaction():
            if offsets:
                self._guard(offsets)
            for table in self.tables:
                for row, source in zip(folded.rows.get(table, ()), folded.sources.get(table, ()), strict=True):
                    try:
                        written[table] += self._one(table, row)
                    except psycopg.DatabaseError as exc:
                        if not refuses_a_value(exc):
                            raise
                        if table == DEAD_LETTERS_TABLE and _parked_here(row, source):
                            raise  # a parked row of our own was refused: nothing safer to fall back to
                        parked.append((parked_row(source, f"rejected by the database: {exc}".strip()), source))
            for row, _source in parked:
                written[DEAD_LETTERS_TABLE] += self._one(DEAD_LETTERS_TABLE, row)
        return dict(written), len(parked)

    def _one(self, table: str, row: dict[str, Any]) -> int:
        with self.conn.transaction():  # a savepoint
            cur = self.conn.execute(self.statements[table], self.getters[table](row))
            return max(cur.rowcount, 0)


def _parked_here(row: dict[str, Any], source: SourceMessage) -> bool:
    """The row is one this runner parked for `source` itself (not a DeadLetter event off the topic, which may name
    any stage, "projections" included)."""
    return row.get("stage") == "projections" and (
        row.get("source_topic"),
        row.get("source_partition"),
        row.get("source_offset"),
    ) == (source.topic, source.partition, source.offset)
