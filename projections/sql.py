"""The statements the projection writer runs, built once per table from the table's columns.

The conflict rules live here: they decide which copy of a fact a table keeps, and they make the
result independent of batch boundaries and arrival order (see `projections.runner`, step 4).
`guard_statement` is the forward-only offset upsert that goes first in every batch's transaction.
"""

from __future__ import annotations

from psycopg import sql

from horus.db.models import Base
from projections.folds import DEAD_LETTERS_TABLE


def table_columns(table: str) -> tuple[str, ...]:
    return tuple(column.name for column in Base.metadata.tables[table].columns)


# The column that identifies "the same fact" in each event table. copy_decisions is keyed by
# candidate: exactly one decision per candidate, whatever its event id. The config and control
# tables hold one row per compacted-topic key, and there the LATEST change (highest coordinates) wins.
CONFLICT_KEYS = {
    "copy_decisions": "candidate_id",
    "follower_configs": "follower",
    "follow_configs": "follow_id",
    "control_switches": "key",
}
LATEST_WINS = frozenset({"follower_configs", "follow_configs", "control_switches"})
DEAD_LETTER_PK = ("source_topic", "source_partition", "source_offset")


def conflict_key(table: str) -> str:
    return CONFLICT_KEYS.get(table, "event_id")


def _conflict_clause(table: str) -> sql.Composed:
    """What happens when a row for the same fact exists already. The outcome never depends on
    the order in which batches arrive, so live folding and replay give the same tables:

    - event tables: the copy with the lowest (kafka_partition, kafka_offset) wins (normally the
      first one produced: one key, one partition);
    - LATEST_WINS tables: the highest coordinates win (one key, one partition: the last change);
    - dead letters: a stage's own DeadLetter event beats a row the projection parked itself, and
      between two stage events the lower event id wins."""
    columns = table_columns(table)
    t = sql.Identifier(table)
    key: tuple[str, ...]
    if table == DEAD_LETTERS_TABLE:
        key, updates = DEAD_LETTER_PK, [c for c in columns if c not in DEAD_LETTER_PK]
        condition = sql.SQL(
            "(excluded.stage <> {own} AND ({t}.stage = {own}"
            ' OR excluded.event_id COLLATE "C" < {t}.event_id COLLATE "C"))'
        ).format(t=t, own=sql.Literal("projections"))
    else:
        key = (conflict_key(table),)
        updates = [c for c in columns if c not in key]
        condition = sql.SQL(
            "(excluded.kafka_partition, excluded.kafka_offset) {op} ({t}.kafka_partition, {t}.kafka_offset)"
        ).format(t=t, op=sql.SQL(">" if table in LATEST_WINS else "<"))
    return sql.SQL(" ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {condition}").format(
        key=sql.SQL(", ").join(map(sql.Identifier, key)),
        sets=sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in updates),
        condition=condition,
    )


def upsert_statement(table: str) -> sql.Composed:
    """INSERT of one row of `table` (executemany, and the row-by-row slow path)."""
    columns = table_columns(table)
    return sql.SQL("INSERT INTO {table} ({columns}) VALUES ({values})").format(
        table=sql.Identifier(table),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    ) + _conflict_clause(table)


def staged_insert_statement(table: str, stage: str) -> sql.Composed:
    """INSERT ... SELECT from the staging table: one row per fact (the winning coordinates first)."""
    columns = sql.SQL(", ").join(map(sql.Identifier, table_columns(table)))
    key = sql.Identifier(conflict_key(table))
    order = sql.SQL(
        "kafka_partition DESC, kafka_offset DESC" if table in LATEST_WINS else "kafka_partition, kafka_offset"
    )
    return sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {stage} ORDER BY {key}, {order}"
    ).format(
        table=sql.Identifier(table), columns=columns, key=key, stage=sql.Identifier(stage), order=order
    ) + _conflict_clause(table)


def stage_table_statement(stage: str, table: str) -> sql.Composed:
    """A per-connection temp table shaped like `table`, emptied by every commit."""
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS").format(
        stage=sql.Identifier(stage), table=sql.Identifier(table)
    )


# the column types of a table in the order Postgres reports them (a binary COPY needs them)
COLUMN_TYPES = (
    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
    " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
)


def copy_statement(target: str, table: str) -> sql.Composed:
    """Binary COPY of `table`'s columns into `target` (the table itself, or its staging table)."""
    columns = sql.SQL(", ").join(map(sql.Identifier, table_columns(table)))
    return sql.SQL("COPY {target} ({columns}) FROM STDIN (FORMAT BINARY)").format(
        target=sql.Identifier(target), columns=columns
    )


def guard_statement(n: int) -> sql.Composed:
    """Forward-only offset upsert for n partitions; returns the rows it wrote."""
    values = sql.SQL(", ").join(sql.SQL("(%s, %s, %s, %s, now())") for _ in range(n))
    return (
        sql.SQL("INSERT INTO projection_offsets AS o (projection, topic, partition, next_offset, updated_at) VALUES ")
        + values
        + sql.SQL(
            " ON CONFLICT (projection, topic, partition) DO UPDATE"
            " SET next_offset = excluded.next_offset, updated_at = excluded.updated_at"
            " WHERE o.next_offset < excluded.next_offset"
            " RETURNING projection, topic, partition"
        )
    )
