"""Pure folds: decoded topic messages in, table rows out.

A fold does no I/O and never reads a clock: every value in a row comes from the event (its
envelope timestamps, its fields) or from the message's Kafka coordinates, so folding the same
messages always gives the same rows, and replay from offset 0 rebuilds the tables exactly.

Every message becomes exactly one row: a row in the table of its record type, or, when it cannot be
decoded, is of a type its topic does not carry or holds a value the table cannot store, a row in
`dead_letters` with the original bytes and the reason. A fold never raises on bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast

from psycopg.types.json import Jsonb

from horus.db.models import DECISION_ACTIONS, EXECUTION_STATUSES, FILL_ROLES, SIDES
from horus.domain.amounts import AmountError, json_decimal
from horus.domain.config import ConfigInvalid, FollowConfig, FollowerConfig, parse_change_body
from horus.domain.control import SCOPES, VERBS, ControlError, check_control, control_key
from horus.topics import (
    CONFIG_CHANGES,
    CONTROL_COMMANDS,
    COPY_CANDIDATES,
    COPY_DECISIONS,
    DEAD_LETTERS,
    EXECUTION_RESULTS,
    LEADER_FILLS,
    SETTLEMENT_EVENTS,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
STAGE = "projections"  # the `stage` of dead letters this code writes itself
DEAD_LETTERS_TABLE = "dead_letters"


class BadRecord(ValueError):
    """A decoded record holds a value its table cannot store."""


class SourceMessage(NamedTuple):
    """One Kafka message as a fold sees it: coordinates, raw bytes and the codec's verdict.
    (A NamedTuple: immutable and cheap to build, one per message.)"""

    topic: str  # the real topic name (with any test prefix)
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp_us: int | None = None  # the message's own Kafka timestamp, if it has one
    record_type: str | None = None  # codec short name, e.g. "LeaderFill"
    record: Mapping[str, Any] | None = None
    error: str | None = None  # why the codec refused the bytes


@dataclass
class FoldResult:
    """Rows per table, in message order, and the message each row came from (same index)."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sources: dict[str, list[SourceMessage]] = field(default_factory=dict)
    parked: int = 0  # messages this fold turned into dead letters (bad input)

    def add(self, table: str, row: dict[str, Any], source: SourceMessage, parked: bool = False) -> None:
        self.rows.setdefault(table, []).append(row)
        self.sources.setdefault(table, []).append(source)
        self.parked += parked

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.rows.items()}


# ---------------------------------------------------------------------------------------------
# value readers: everything Postgres would refuse is refused here, so a batch never fails in SQL.
# Each reader is compiled once per column; the fast path is one type check and a range/NUL check.
# ---------------------------------------------------------------------------------------------
Reader = Callable[[Mapping[str, Any]], Any]


def _missing(name: str) -> BadRecord:
    return BadRecord(f"{name} is missing")


def _check_text(name: str, value: Any, required: bool, nonempty: bool) -> str | None:
    if value is None:
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{name} is {type(value).__name__}, not a string")
    if "\x00" in value:
        raise BadRecord(f"{name} contains a NUL character")
    if nonempty and not value:
        raise BadRecord(f"{name} is empty")
    return str(value)


def text(name: str, *, required: bool = True, nonempty: bool = False) -> Reader:
    def read(record: Mapping[str, Any]) -> str | None:
        value = record.get(name)
        if value.__class__ is str and "\x00" not in value and (value or not nonempty):
            return value
        return _check_text(name, value, required, nonempty)

    return read


def _check_int(name: str, value: Any, low: int, high: int, required: bool) -> int | None:
    if value is None:
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRecord(f"{name} is {type(value).__name__}, not an integer")
    if not low <= value <= high:
        raise BadRecord(f"{name}={value} is out of range [{low}, {high}]")
    return int(value)


def integer(name: str, bounds: tuple[int, int] = INT64, *, minimum: int | None = None, required: bool = True) -> Reader:
    low, high = (bounds[0] if minimum is None else max(bounds[0], minimum)), bounds[1]

    def read(record: Mapping[str, Any]) -> int | None:
        value = record.get(name)
        if value.__class__ is int and low <= value <= high:
            return value
        return _check_int(name, value, low, high, required)

    return read


def enum(name: str, allowed: Sequence[str], *, required: bool = True) -> Reader:
    allowed_set = frozenset(allowed)

    def read(record: Mapping[str, Any]) -> str | None:
        value = record.get(name)
        if value.__class__ is str and value in allowed_set:
            return value
        value = _check_text(name, value, required, False)
        if value is not None:
            raise BadRecord(f"{name}={value!r} is not one of {', '.join(allowed)}")
        return None

    return read


def decimal(name: str, *, required: bool = True) -> Reader:
    """A decimal string field by the engine's one parser (json_decimal), refused also when a NUMERIC column could
    not hold it (the table stores it exactly)."""
    as_text = text(name, required=required)

    def read(record: Mapping[str, Any]) -> Decimal | None:
        value = as_text(record)
        if value is None:
            return None
        try:
            number = json_decimal(value)
        except AmountError as exc:
            raise BadRecord(f"{name}={exc}") from None
        exponent = number.as_tuple().exponent
        if number.adjusted() >= 131072 or (isinstance(exponent, int) and exponent < -16383):
            raise BadRecord(f"{name}={value[:40]!r} does not fit a NUMERIC")
        return number

    return read


def timestamp(us: int) -> datetime:
    """Epoch microseconds -> aware UTC datetime, exactly (integer arithmetic, no float)."""
    try:
        return EPOCH + timedelta(microseconds=us)
    except OverflowError:
        raise BadRecord(f"timestamp {us} us is out of range") from None


def instant(name: str, *, required: bool = True) -> Reader:
    """An epoch-microseconds field as a timestamptz value."""
    as_int = integer(name, required=required)

    def read(record: Mapping[str, Any]) -> datetime | None:
        us = as_int(record)
        return None if us is None else timestamp(us)

    return read


def strings(name: str) -> Reader:
    def read(record: Mapping[str, Any]) -> list[str]:
        value = record.get(name)
        if not isinstance(value, (list, tuple)):
            raise BadRecord(f"{name} is not a list") if value is not None else _missing(name)
        return [_check_text(name, item, True, False) for item in value]  # type: ignore[misc]

    return read


def blob(name: str, *, required: bool = True) -> Reader:
    def read(record: Mapping[str, Any]) -> bytes | None:
        value = record.get(name)
        if value.__class__ is bytes:
            return value
        if value is None:
            if required:
                raise _missing(name)
            return None
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise BadRecord(f"{name} is {type(value).__name__}, not bytes")
        return bytes(value)

    return read


ENVELOPE: tuple[tuple[str, Reader], ...] = (
    ("event_id", text("event_id", nonempty=True)),
    ("occurred_at", instant("occurred_at_us")),
    ("produced_at", instant("produced_at_us")),
    ("source", text("source")),
    ("causation_id", text("causation_id", required=False)),
)


def _envelope(record: Mapping[str, Any]) -> Mapping[str, Any]:
    envelope = record.get("envelope")
    if envelope.__class__ is dict or isinstance(envelope, Mapping):
        return envelope
    raise _missing("envelope")


def event_row(fields: Sequence[tuple[str, Reader]]) -> RowMapper:
    """A row mapper for an event table: envelope columns, Kafka coordinates, then `fields`
    (column name, reader), in the table's column order."""
    fields = tuple(fields)

    def to_row(record: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
        envelope = _envelope(record)
        row = {column: read(envelope) for column, read in ENVELOPE}
        row["kafka_partition"] = message.partition
        row["kafka_offset"] = message.offset
        for column, read in fields:
            row[column] = read(record)
        return row

    return to_row


# ---------------------------------------------------------------------------------------------
# one mapping per event type (columns in the order of the table)
# ---------------------------------------------------------------------------------------------
leader_fill_row = event_row(
    [
        ("leader", text("leader", nonempty=True)),
        ("exchange", text("exchange")),
        ("tx_hash", text("tx_hash", nonempty=True)),
        ("block_number", integer("block_number", minimum=0)),
        ("log_index", integer("log_index", INT32, minimum=0)),
        ("token_id", text("token_id", nonempty=True)),
        ("condition_id", text("condition_id", required=False)),
        ("side", enum("side", SIDES)),
        ("shares_e6", integer("shares_e6")),
        ("collateral_e6", integer("collateral_e6")),
        ("price", decimal("price")),
        ("fee_e6", integer("fee_e6")),
        ("role", enum("role", FILL_ROLES)),
        ("order_hashes", strings("order_hashes")),
    ]
)

leader_fill_retraction_row = event_row(
    [
        ("leader_fill_id", text("leader_fill_id", nonempty=True)),
        ("leader", text("leader", nonempty=True)),
        ("tx_hash", text("tx_hash", nonempty=True)),
        ("block_number", integer("block_number", minimum=0)),
        ("reason", text("reason")),
    ]
)

copy_candidate_row = event_row(
    [
        ("leader_fill_id", text("leader_fill_id", nonempty=True)),
        ("follow_id", text("follow_id", nonempty=True)),
        ("follower", text("follower", nonempty=True)),
        ("leader", text("leader", nonempty=True)),
        ("token_id", text("token_id")),
        ("side", enum("side", SIDES)),
        ("leader_shares_e6", integer("leader_shares_e6")),
        ("leader_collateral_e6", integer("leader_collateral_e6")),
        ("leader_price", decimal("leader_price")),
        ("condition_id", text("condition_id", required=False)),
    ]
)

copy_decision_row = event_row(
    [
        ("candidate_id", text("candidate_id", nonempty=True)),
        ("follow_id", text("follow_id", nonempty=True)),
        ("follower", text("follower", nonempty=True)),
        ("leader_fill_id", text("leader_fill_id", nonempty=True)),
        ("action", enum("action", DECISION_ACTIONS)),
        ("intent_id", text("intent_id", required=False)),
        ("token_id", text("token_id")),
        ("side", enum("side", SIDES)),
        ("size_e6", integer("size_e6")),
        ("worst_price", decimal("worst_price", required=False)),
        ("order_type", text("order_type", required=False)),
        ("expires_at", instant("expires_at_us", required=False)),
        ("reason_code", text("reason_code", required=False)),
        ("reason_detail", text("reason_detail", required=False)),
        ("leader", text("leader", required=False)),
        ("condition_id", text("condition_id", required=False)),
        ("reserved_e6", integer("reserved_e6", required=False)),
        ("leader_shares_e6", integer("leader_shares_e6", required=False)),
        ("inputs", text("inputs", required=False)),
    ]
)

execution_result_row = event_row(
    [
        ("intent_id", text("intent_id", nonempty=True)),
        ("follow_id", text("follow_id")),
        ("follower", text("follower", nonempty=True)),
        ("leader_fill_id", text("leader_fill_id")),
        ("status", enum("status", EXECUTION_STATUSES)),
        ("order_hash", text("order_hash", required=False)),
        ("filled_shares_e6", integer("filled_shares_e6")),
        ("filled_collateral_e6", integer("filled_collateral_e6")),
        ("avg_price", decimal("avg_price", required=False)),
        ("fee_e6", integer("fee_e6")),
        ("error", text("error", required=False)),
        ("attempts", integer("attempts", INT32)),
    ]
)

settlement_event_row = event_row(
    [
        ("follower", text("follower", nonempty=True)),
        ("intent_id", text("intent_id", required=False)),
        ("kind", text("kind", nonempty=True)),
        ("amount_e6", integer("amount_e6")),
        ("token_id", text("token_id", required=False)),
        ("tx_hash", text("tx_hash", required=False)),
        ("debt_id", text("debt_id", required=False)),
    ]
)


def _latest_columns(record: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    """Columns of a config/control row that say which change it came from."""
    envelope = _envelope(record)
    return {
        "event_id": ENVELOPE[0][1](envelope),
        "updated_at": ENVELOPE[1][1](envelope),
        "source": ENVELOPE[3][1](envelope),
        "kafka_partition": message.partition,
        "kafka_offset": message.offset,
    }


CONFIG_TABLES = {"FOLLOWER": "follower_configs", "FOLLOW": "follow_configs"}


def config_table(record: Mapping[str, Any]) -> str:
    entity = record.get("entity")
    if entity not in CONFIG_TABLES:
        raise BadRecord(f"entity={entity!r} is not one of {', '.join(CONFIG_TABLES)}")
    return CONFIG_TABLES[entity]


def config_change_row(record: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    """A FOLLOWER or FOLLOW change -> the current-config row for its id. The body is validated by the
    same rules the CLI and the stages use; one that breaks a rule replaces the row with no body and the
    rule in `invalid`, as decide drops that config too (an operator sees why the follow stopped)."""
    entity = cast(str, record.get("entity"))  # the fold asked config_table first, which takes only the two entities
    entity_id = text("entity_id", nonempty=True)(record)
    op = enum("op", ("UPSERT", "DELETE"))(record)
    row = {
        **_latest_columns(record, message),
        "deleted": op == "DELETE",
        "enabled": None,
        "body": None,
        "invalid": None,
    }
    config = None
    if op == "UPSERT":
        try:
            config = parse_change_body(entity, entity_id, record.get("body"))
            row["enabled"] = config.enabled
            row["body"] = Jsonb(config.model_dump(mode="json"))  # canonical: equal configs, equal rows
        except ConfigInvalid as exc:
            row["invalid"] = str(exc).replace("\x00", "\\x00")
    if entity == "FOLLOWER":
        row.update(follower=entity_id, custody=None, signature_type=None, credentials_ref=None)
        if isinstance(config, FollowerConfig):  # parse_change_body made one for a FOLLOWER, or raised
            row.update(
                custody=config.custody, signature_type=config.signature_type, credentials_ref=config.credentials_ref
            )
    else:
        row.update(follow_id=entity_id, follower=None, leader=None)
        if isinstance(config, FollowConfig):  # parse_change_body made one for a FOLLOW, or raised
            row.update(follower=config.follower, leader=config.leader)
    return row


def control_command_row(record: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    """A ControlCommand -> the switch it sets (PAUSE/KILL: active; RESUME: inactive). A command that breaks
    the rules (check_control: e.g. KILL for one follower) is parked: no stage honours it."""
    try:
        check_control(record.get("scope"), record.get("command"), record.get("target"))
    except ControlError as exc:
        raise BadRecord(str(exc)) from None
    scope = enum("scope", SCOPES)(record)
    target = text("target", required=scope != "GLOBAL", nonempty=True)(record)
    command = enum("command", VERBS)(record)
    return {
        **_latest_columns(record, message),
        "key": control_key(scope, target),
        "scope": scope,
        "target": target,
        "command": command,
        "active": command != "RESUME",
        "reason": text("reason", required=False)(record),
        "issued_by": text("issued_by", required=False)(record),
    }


_DEAD_LETTER_FIELDS = (
    ("source_topic", text("source_topic", nonempty=True)),
    ("source_partition", integer("source_partition", INT32, minimum=0)),
    ("source_offset", integer("source_offset", minimum=0)),
    ("key", blob("key", required=False)),
    ("original", blob("original")),
    ("error", text("error")),
    ("stage", text("stage")),
)
_EVENT_ID, _OCCURRED_AT = ENVELOPE[0][1], ENVELOPE[1][1]


def dead_letter_event_row(record: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    """A DeadLetter event from `dead.letters`: the row describes the message it parks."""
    envelope = _envelope(record)
    row = {column: read(record) for column, read in _DEAD_LETTER_FIELDS}
    row["event_id"] = _EVENT_ID(envelope)
    row["occurred_at"] = _OCCURRED_AT(envelope)
    for _, read in ENVELOPE[2:]:
        read(envelope)  # a broken envelope parks the event like any other bad record
    return row


def parked_row(message: SourceMessage, error: str) -> dict[str, Any]:
    """The dead letter for a message this projection could not use: its exact bytes and why.

    `occurred_at` is the message's own Kafka timestamp (stable across replays), and the event id
    is kept when the envelope could at least be read."""
    event_id = None
    if message.record is not None:
        envelope = message.record.get("envelope")
        if (
            isinstance(envelope, Mapping)
            and isinstance(envelope.get("event_id"), str)
            and "\x00" not in envelope["event_id"]
        ):
            event_id = envelope["event_id"]
    occurred_at = None
    if message.timestamp_us is not None:
        try:
            occurred_at = timestamp(message.timestamp_us)
        except BadRecord:
            occurred_at = None
    return {
        "source_topic": message.topic,
        "source_partition": message.partition,
        "source_offset": message.offset,
        "key": message.key,
        "original": message.value if message.value is not None else b"",
        "error": error.replace("\x00", "\\x00"),
        "stage": STAGE,
        "event_id": event_id,
        "occurred_at": occurred_at,
    }


# ---------------------------------------------------------------------------------------------
# projections
# ---------------------------------------------------------------------------------------------
RowMapper = Callable[[Mapping[str, Any], SourceMessage], dict[str, Any]]


class RecordTable(NamedTuple):
    """A further record type a projection's topic carries, the table it folds into and its row mapper."""

    record_type: str
    table: str
    to_row: RowMapper


@dataclass(frozen=True)
class Projection:
    """A topic folded into tables: which record types it expects and how a record maps to a row."""

    name: str  # the `projection` column of projection_offsets
    topic: str  # catalogue name (horus.topics), without the test prefix
    record_type: str  # the topic's main record type
    table: str
    to_row: RowMapper
    # one topic into several tables: `table_for(record)` picks one of (table, *other_tables)
    other_tables: tuple[str, ...] = ()
    table_for: Callable[[Mapping[str, Any]], str] | None = None
    # further record types on the same topic, each into its own table (e.g. retractions of a fill)
    other_types: tuple[RecordTable, ...] = ()

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table, *self.other_tables, *(other.table for other in self.other_types))

    @property
    def record_types(self) -> tuple[str, ...]:
        return (self.record_type, *(other.record_type for other in self.other_types))

    def fold(self, messages: Iterable[SourceMessage]) -> FoldResult:
        """Rows for `messages`, in order; bad messages become dead_letters rows. Pure."""
        result = FoldResult()
        for message in messages:
            table, row, parked = self.fold_one(message)
            result.add(table, row, message, parked)
        return result

    def fold_one(self, message: SourceMessage) -> tuple[str, dict[str, Any], bool]:
        """(table, row, parked): the row for one message; parked when it became a dead letter."""
        if message.error is not None:
            return DEAD_LETTERS_TABLE, parked_row(message, f"undecodable: {message.error}"), True
        if message.value is None:
            return DEAD_LETTERS_TABLE, parked_row(message, "empty message (null value)"), True
        record, record_type = message.record, message.record_type
        if record is not None:
            try:
                if record_type == self.record_type:  # the common case first: one comparison
                    table = self.table if self.table_for is None else self.table_for(record)
                    return table, self.to_row(record, message), False
                for other in self.other_types:
                    if record_type == other.record_type:
                        return other.table, other.to_row(record, message), False
            except BadRecord as exc:
                return DEAD_LETTERS_TABLE, parked_row(message, f"bad {record_type}: {exc}"), True
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                return DEAD_LETTERS_TABLE, parked_row(message, f"bad {record_type}: {type(exc).__name__}: {exc}"), True
        return (
            DEAD_LETTERS_TABLE,
            parked_row(
                message,
                f"unexpected record type {record_type!r} on {self.topic} (want {' or '.join(self.record_types)})",
            ),
            True,
        )


# a reorg's retraction is a fact of its own: the fill's row stays (it may even be mined again)
LEADER_FILLS_PROJECTION = Projection(
    "leader_fills",
    LEADER_FILLS.name,
    "LeaderFill",
    "leader_fills",
    leader_fill_row,
    other_types=(RecordTable("LeaderFillRetracted", "leader_fill_retractions", leader_fill_retraction_row),),
)
COPY_CANDIDATES_PROJECTION = Projection(
    "copy_candidates", COPY_CANDIDATES.name, "CopyCandidate", "copy_candidates", copy_candidate_row
)
COPY_DECISIONS_PROJECTION = Projection(
    "copy_decisions", COPY_DECISIONS.name, "CopyDecision", "copy_decisions", copy_decision_row
)
EXECUTION_RESULTS_PROJECTION = Projection(
    "execution_results", EXECUTION_RESULTS.name, "ExecutionResult", "execution_results", execution_result_row
)
SETTLEMENT_EVENTS_PROJECTION = Projection(
    "settlement_events", SETTLEMENT_EVENTS.name, "SettlementEvent", "settlement_events", settlement_event_row
)
CONFIG_CHANGES_PROJECTION = Projection(
    "configs",
    CONFIG_CHANGES.name,
    "ConfigChange",
    "follower_configs",
    config_change_row,
    other_tables=("follow_configs",),
    table_for=config_table,
)
CONTROL_COMMANDS_PROJECTION = Projection(
    "control_switches", CONTROL_COMMANDS.name, "ControlCommand", "control_switches", control_command_row
)
DEAD_LETTERS_PROJECTION = Projection(
    "dead_letters", DEAD_LETTERS.name, "DeadLetter", DEAD_LETTERS_TABLE, dead_letter_event_row
)

ALL_PROJECTIONS: tuple[Projection, ...] = (
    LEADER_FILLS_PROJECTION,
    COPY_CANDIDATES_PROJECTION,
    COPY_DECISIONS_PROJECTION,
    EXECUTION_RESULTS_PROJECTION,
    SETTLEMENT_EVENTS_PROJECTION,
    CONFIG_CHANGES_PROJECTION,
    CONTROL_COMMANDS_PROJECTION,
    DEAD_LETTERS_PROJECTION,
)


def fold_batch(by_topic: Mapping[str, Projection], messages: Iterable[SourceMessage]) -> FoldResult:
    """Fold a mixed batch: each message by the projection that owns its (real) topic name. Pure."""
    result = FoldResult()
    for message in messages:
        table, row, parked = by_topic[message.topic].fold_one(message)
        result.add(table, row, message, parked)
    return result
