"""The read model: what the operator tools (the CLI, the demo) ask of the projections.

Every read the operator tools make of a projection table (and of the executor's ledger,
copy_trades) is a function here, so a table's shape is spelled in its fold and here, not in each
command. Where the projections may lag and the
answer must be current (a config about to be changed, the switches in force), the compacted topic
itself is read to its end instead: the topic is the source of truth, the tables a copy of it.

`connect(settings)` opens a connection (rows as dicts) and turns the driver's failures into
`DatabaseUnreachable` and `SchemaNotMigrated`; the queries take that connection, so a caller that
polls (the demo) keeps one open.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row

from horus.codec import default_codec
from horus.db.engine import psycopg_conninfo
from horus.domain.config import ConfigInvalid, config_key, parse_change_body
from horus.domain.control import ControlState, apply_control, apply_control_tombstone
from horus.domain.events import TERMINAL
from horus.kafka.client import assign_from_beginning, consumed_at, end_offsets, make_consumer, poll_batch
from horus.kafka.config_tail import ConfigTail
from horus.settings import Settings
from horus.topics import CONFIG_CHANGES, CONTROL_COMMANDS
from projections.folds import ALL_PROJECTIONS, CONFIG_CHANGES_PROJECTION, Projection
from projections.lag import projection_lag

_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
ReadConnection = psycopg.Connection[DictRow]  # what `connect` yields: rows as dicts


class DatabaseUnreachable(Exception):
    """Postgres did not answer, refused the login, or dropped the connection."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.kind = type(error).__name__  # the driver's error class, e.g. OperationalError


class SchemaNotMigrated(Exception):
    """A table or column a query needs is missing: `horus db upgrade` has not run."""


class TopicNotRead(Exception):
    """A compacted topic could not be read to its end."""


class CurrentConfigInvalid(Exception):
    """The config in force breaks a rule (its fold or its parser says which): it can only be replaced."""

    def __init__(self, reason: object):
        super().__init__(str(reason))
        self.reason = str(reason)


@contextmanager
def connect(settings: Settings) -> Iterator[ReadConnection]:
    """A connection for reading (autocommit, rows as dicts, 5 s to connect)."""
    try:
        with psycopg.connect(
            psycopg_conninfo(settings.database_url), autocommit=True, connect_timeout=5, row_factory=dict_row
        ) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable(exc) from exc
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        raise SchemaNotMigrated(str(exc)) from exc


def projection_caught_up(settings: Settings, projections: Sequence[Projection] = ALL_PROJECTIONS) -> bool:
    """True when `projections` have folded every partition of their topics up to its end offset now."""
    return all(row["lag"] == 0 for row in projection_lag(settings, projections))


# ---------------------------------------------------------------------------------------------
# configs: followers and follows
# ---------------------------------------------------------------------------------------------
def _config_row(conn: ReadConnection, entity: str, entity_id: str) -> tuple[dict | None, str | None]:
    """(body, invalid) of the live row of a FOLLOWER or FOLLOW config; (None, None) when there is none."""
    query = (
        "SELECT body, invalid FROM follower_configs WHERE follower = %s AND NOT deleted"
        if entity == "FOLLOWER"
        else "SELECT body, invalid FROM follow_configs WHERE follow_id = %s AND NOT deleted"
    )
    row = conn.execute(query, (entity_id,)).fetchone()
    return (None, None) if row is None else (row["body"], row["invalid"])


def latest_config_changes(settings: Settings, timeout: float = 30.0) -> dict[str, dict]:
    """The last ConfigChange per key on config.changes, read from the beginning to the end offsets."""
    topic = settings.topic(CONFIG_CHANGES.name)
    codec = default_codec()
    consumer = make_consumer(settings, None)
    latest: dict[str, dict] = {}
    try:
        pending = {p: end for p, end in end_offsets(consumer, topic).items() if end > 0}
        assign_from_beginning(consumer, [topic])
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TopicNotRead(f"reading {topic} did not reach its end offsets in {timeout:.0f}s")
            for message in poll_batch(consumer, 1000, 0.5):
                partition, offset = consumed_at(message)
                if offset + 1 >= pending.get(partition, 0):
                    pending.pop(partition, None)
                key = (message.key() or b"").decode("utf-8", "replace")
                value = message.value()
                if value is None:
                    latest.pop(key, None)
                    continue
                try:
                    name, record = codec.decode(value)
                except Exception:  # noqa: BLE001 - a record nobody can read does not describe a config
                    continue
                if name == "ConfigChange":
                    latest[key] = record
    finally:
        consumer.close()
    return latest


def _config_in_projection(settings: Settings, entity: str, entity_id: str) -> tuple[dict | None, str | None] | None:
    """(body, invalid) from the `configs` projection when it has folded config.changes up to its end offsets
    now ((None, None): no such config); None when it has not."""
    if not projection_caught_up(settings, [CONFIG_CHANGES_PROJECTION]):
        return None
    with connect(settings) as conn:
        return _config_row(conn, entity, entity_id)


def current_config(settings: Settings, entity: str, entity_id: str) -> dict | None:
    """The config now in force for (entity, id) as a plain dict, or None if there is none: from the projection
    when it is caught up, else from the topic itself. Raises CurrentConfigInvalid, TopicNotRead."""
    try:
        in_projection = _config_in_projection(settings, entity, entity_id)
    except Exception:  # noqa: BLE001 - the topic below is the source of truth anyway
        in_projection = None
    if in_projection is not None:
        body, invalid = in_projection
        if invalid:
            raise CurrentConfigInvalid(invalid)
        return body
    change = latest_config_changes(settings).get(config_key(entity, entity_id))
    if change is None or change["op"] == "DELETE":
        return None
    try:
        parsed = parse_change_body(entity, entity_id, change["body"])
    except ConfigInvalid as exc:
        raise CurrentConfigInvalid(exc) from exc
    return parsed.model_dump(mode="json")


def follows(
    conn: ReadConnection, *, follower: str | None = None, leader: str | None = None, include_removed: bool = False
) -> list[dict[str, Any]]:
    """Follow rows as the projection holds them (removed ones too when asked), by follow id."""
    where, params = ["true"], []
    if not include_removed:
        where.append("NOT deleted")
    if follower:
        where.append("follower = %s")
        params.append(follower.strip().lower())
    if leader:
        where.append("leader = %s")
        params.append(leader.strip().lower())
    query = (
        "SELECT follow_id, follower, leader, enabled, deleted, body, invalid, updated_at FROM follow_configs "
        "WHERE " + " AND ".join(where) + " ORDER BY follow_id"
    )
    return conn.execute(query, params).fetchall()


# ---------------------------------------------------------------------------------------------
# why: one leader fill's decisions
# ---------------------------------------------------------------------------------------------
def why(conn: ReadConnection, ref: str, follower: str | None = None) -> list[dict[str, Any]]:
    """The leader fills `ref` names (a fill id, or a tx hash: one per token and side), each with its
    decisions (`decisions`), its reorg retractions (`retractions`) and each COPY's execution results
    (`results`). Empty when nothing is known."""
    ref = ref.strip()
    fills = conn.execute("SELECT * FROM leader_fills WHERE event_id = %s", (ref,)).fetchall()
    if not fills and _TX_HASH.match(ref):
        fills = conn.execute(
            "SELECT * FROM leader_fills WHERE tx_hash = %s ORDER BY log_index, event_id", (ref.lower(),)
        ).fetchall()
    if not fills:  # decisions may be projected before (or without) their fill
        fills = (
            [{"event_id": ref, "unknown": True}]
            if conn.execute("SELECT 1 FROM copy_decisions WHERE leader_fill_id = %s LIMIT 1", (ref,)).fetchone()
            else []
        )
    for fill in fills:
        fill["retractions"] = conn.execute(
            "SELECT * FROM leader_fill_retractions WHERE leader_fill_id = %s ORDER BY occurred_at, event_id",
            (fill["event_id"],),
        ).fetchall()
        query = "SELECT * FROM copy_decisions WHERE leader_fill_id = %s"
        params: list = [fill["event_id"]]
        if follower:
            query += " AND follower = %s"
            params.append(follower.strip().lower())
        fill["decisions"] = conn.execute(query + " ORDER BY follower, follow_id", params).fetchall()
        intents = [d["intent_id"] for d in fill["decisions"] if d["intent_id"]]
        results = (
            conn.execute(
                "SELECT * FROM execution_results WHERE intent_id = ANY(%s) ORDER BY occurred_at, kafka_partition,"
                " kafka_offset",
                (intents,),
            ).fetchall()
            if intents
            else []
        )
        for decision in fill["decisions"]:
            decision["inputs"] = json.loads(decision["inputs"]) if decision.get("inputs") else None
            decision["results"] = [r for r in results if r["intent_id"] == decision["intent_id"]]
    return fills


# ---------------------------------------------------------------------------------------------
# the execution ledger (copy_trades)
# ---------------------------------------------------------------------------------------------
LEDGER_COLUMNS = (
    "idempotency_key",
    "follower",
    "status",
    "order_hash",
    "token_id",
    "side",
    "size_e6",
    "price",
    "order_type",
    "filled_shares_e6",
    "filled_collateral_e6",
    "fee_e6",
    "attempts",
    "signature_generation",
    "venue_mode",
    "venue_status",
    "last_error",
    "created_at",
    "updated_at",
    "expires_at",
    "unknown_since",
)


def ledger_rows(
    conn: ReadConnection,
    *,
    status: str | None = None,
    follower: str | None = None,
    intent: str | None = None,
    limit: int,
    stuck_after_s: float | None = None,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first (never a signed body or a key: LEDGER_COLUMNS only). `stuck_after_s`: only
    PENDING / UNKNOWN rows open longer than that."""
    where: list[str] = []
    params: list[Any] = []
    if status:
        where.append("status = %s")
        params.append(status)
    if follower:
        where.append("follower = %s")
        params.append(follower.lower())
    if intent:
        where.append("idempotency_key = %s")
        params.append(intent)
    if stuck_after_s is not None:
        where.append(
            "status IN ('PENDING', 'UNKNOWN') "
            "AND coalesce(unknown_since, created_at) < now() - make_interval(secs => %s)"
        )
        params.append(stuck_after_s)
    query = (
        f"SELECT {', '.join(LEDGER_COLUMNS)} FROM copy_trades {'WHERE ' + ' AND '.join(where) if where else ''} "
        "ORDER BY created_at DESC LIMIT %s"
    )
    return conn.execute(query, [*params, limit]).fetchall()


# ---------------------------------------------------------------------------------------------
# progress of a run (the demo)
# ---------------------------------------------------------------------------------------------
def _count(conn: ReadConnection, query: str | sql.Composed, params: Sequence[Any] = ()) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None  # count(*) always returns one row
    return row["n"]


def table_counts(conn: ReadConnection, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table."""
    return {
        table: _count(conn, sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))) for table in tables
    }


def decisions_by_reason(conn: ReadConnection, followers: Sequence[str]) -> dict[str, int]:
    """These followers' decisions counted by outcome: COPY, or the SKIP's reason code."""
    rows = conn.execute(
        "SELECT coalesce(reason_code, 'COPY') AS outcome, count(*) AS n FROM copy_decisions "
        "WHERE follower = ANY(%s) GROUP BY 1",
        (list(followers),),
    ).fetchall()
    return {row["outcome"]: row["n"] for row in rows}


def copies_without_result(conn: ReadConnection, followers: Sequence[str]) -> int:
    """COPY decisions of these followers whose intent has no terminal execution result yet."""
    return _count(
        conn,
        "SELECT count(*) AS n FROM copy_decisions d WHERE d.action = 'COPY' AND d.follower = ANY(%s)"
        " AND NOT EXISTS (SELECT 1 FROM execution_results r WHERE r.intent_id = d.intent_id"
        " AND r.status = ANY(%s))",
        (list(followers), sorted(TERMINAL)),
    )


# one row per follower: what was decided, what filled, at what price against the leader's, how fast
_FOLLOWER_SUMMARY = """
WITH final AS (  -- the last terminal result per intent
    SELECT DISTINCT ON (intent_id) * FROM execution_results
    WHERE status = ANY(%(terminal)s)
    ORDER BY intent_id, produced_at DESC
), joined AS (
    SELECT d.follower, d.action, d.reason_code, d.side, d.token_id,
           (d.inputs::jsonb ->> 'leader_price')::numeric AS leader_price, d.occurred_at AS seen_at, r.status, r.filled_shares_e6, r.filled_collateral_e6, r.fee_e6,
           r.avg_price, r.produced_at AS result_at
    FROM copy_decisions d
    LEFT JOIN final r ON r.intent_id = d.intent_id
    WHERE d.follower = ANY(%(followers)s)
)
SELECT follower,
       count(*) FILTER (WHERE action = 'COPY') AS copies,
       count(*) FILTER (WHERE filled_shares_e6 > 0) AS fills,
       coalesce(sum(filled_collateral_e6 + fee_e6) FILTER (WHERE side = 'BUY' AND filled_shares_e6 > 0), 0) AS spent_e6,
       coalesce(sum(CASE WHEN side = 'BUY' THEN filled_shares_e6 ELSE -filled_shares_e6 END)
                FILTER (WHERE filled_shares_e6 > 0), 0) AS net_shares_e6,
       count(DISTINCT token_id) FILTER (WHERE filled_shares_e6 > 0) AS tokens,
       avg(CASE WHEN side = 'BUY' THEN (avg_price - leader_price) ELSE (leader_price - avg_price) END
           / leader_price * 10000) FILTER (WHERE filled_shares_e6 > 0) AS slippage_bps,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM result_at - seen_at) * 1000)
           FILTER (WHERE result_at IS NOT NULL) AS latency_ms,
       array_agg(reason_code) FILTER (WHERE action = 'SKIP') AS skips
FROM joined GROUP BY follower ORDER BY follower
"""


def follower_summary(conn: ReadConnection, followers: Sequence[str]) -> list[dict[str, Any]]:
    """Per follower: copies, fills, spend, net shares and tokens, slippage against the leader's price (bps),
    median latency from the decision to its result (ms), and the SKIPs' reason codes."""
    return conn.execute(_FOLLOWER_SUMMARY, {"followers": list(followers), "terminal": sorted(TERMINAL)}).fetchall()


# ---------------------------------------------------------------------------------------------
# operator switches, straight from control.commands
# ---------------------------------------------------------------------------------------------
def active_switches(settings: Settings, timeout: float = 30.0) -> dict[str, tuple[str, str]]:
    """Fold control.commands from the beginning (the fold the stages use): switch key -> (verb, reason) of
    every active switch. Raises TopicNotRead."""
    state = ControlState()
    lock = threading.Lock()
    tail = ConfigTail(
        settings,
        default_codec(),
        state,
        lock,
        apply=apply_control,
        tombstone=apply_control_tombstone,
        topic=CONTROL_COMMANDS,
    )
    tail.start()
    try:
        if not tail.ready.wait(timeout):
            raise TopicNotRead(f"control.commands was not read to its end in {timeout:.0f}s")
        if tail.failed is not None:
            raise TopicNotRead(f"reading control.commands failed: {tail.failed}")
        with lock:
            return dict(state.active)
    finally:
        tail.stop()
