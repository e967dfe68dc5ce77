"""Pure folds: decoded topic messages in, table rows out.

A fold does no I/O and never reads a clock: every value in a row comes from the event (its
envelope timestamps, its fields) or from the message's Kafka coordinates, so folding the same
messages always gives the same rows, and replay from offset 0 rebuilds the tables exactly.

Every message becomes exactly one row: a row in the projection's table, or, when it cannot be
decoded, is of the wrong type for its topic or holds a value the table cannot store, a row in
`dead_letters` with the original bytes and the reason. A fold never raises on bad input.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Mapping, Sequence

from horus.db.models import DECISION_ACTIONS, EXECUTION_STATUSES, FILL_ROLES, SIDES
from horus.topics import COPY_DECISIONS, DEAD_LETTERS, EXECUTION_RESULTS, LEADER_FILLS, SETTLEMENT_EVENTS

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
STAGE = "projections"  # the `stage` of dead letters this code writes itself
DEAD_LETTERS_TABLE = "dead_letters"


class BadRecord(ValueError):
    """A decoded record holds a value its table cannot store."""


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """One Kafka message as a fold sees it: coordinates, raw bytes and the codec's verdict."""

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

    def add(self, table: str, row: dict[str, Any], source: SourceMessage) -> None:
        self.rows.setdefault(table, []).append(row)
        self.sources.setdefault(table, []).append(source)

    def merge(self, other: "FoldResult") -> None:
        for table, rows in other.rows.items():
            self.rows.setdefault(table, []).extend(rows)
            self.sources.setdefault(table, []).extend(other.sources[table])

    @property
    def dead_letters(self) -> int:
        return len(self.rows.get(DEAD_LETTERS_TABLE, ()))

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.rows.items()}


# ---------------------------------------------------------------------------------------------
# value checks: everything Postgres would refuse is refused here, so a batch never fails in SQL
# ---------------------------------------------------------------------------------------------
def _text(record: Mapping[str, Any], name: str, *, required: bool = True, nonempty: bool = False) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise BadRecord(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{name} is {type(value).__name__}, not a string")
    if "\x00" in value:
        raise BadRecord(f"{name} contains a NUL character")
    if nonempty and not value:
        raise BadRecord(f"{name} is empty")
    return value


def _int(record: Mapping[str, Any], name: str, bounds: tuple[int, int] = INT64, *, required: bool = True,
         minimum: int | None = None) -> int | None:
    value = record.get(name)
    if value is None:
        if required:
            raise BadRecord(f"{name} is missing")
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRecord(f"{name} is {type(value).__name__}, not an integer")
    low = bounds[0] if minimum is None else max(bounds[0], minimum)
    if not low <= value <= bounds[1]:
        raise BadRecord(f"{name}={value} is out of range")
    return value


def _enum(record: Mapping[str, Any], name: str, allowed: Sequence[str], *, required: bool = True) -> str | None:
    value = _text(record, name, required=required)
    if value is not None and value not in allowed:
        raise BadRecord(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _decimal(record: Mapping[str, Any], name: str, *, required: bool = True) -> Decimal | None:
    value = _text(record, name, required=required)
    if value is None:
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise BadRecord(f"{name}={value!r} is not a decimal number") from None
    if not number.is_finite():
        raise BadRecord(f"{name}={value!r} is not finite")
    return number


def _strings(record: Mapping[str, Any], name: str) -> list[str]:
    value = record.get(name)
    if not isinstance(value, (list, tuple)):
        raise BadRecord(f"{name} is not a list")
    return [_text({name: item}, name) for item in value]  # type: ignore[misc]


def timestamp(us: int) -> datetime:
    """Epoch microseconds -> aware UTC datetime, exactly (integer arithmetic, no float)."""
    try:
        return EPOCH + timedelta(microseconds=us)
    except OverflowError:
        raise BadRecord(f"timestamp {us} us is out of range") from None


def _time(record: Mapping[str, Any], name: str, *, required: bool = True) -> datetime | None:
    us = _int(record, name, required=required)
    return None if us is None else timestamp(us)


def envelope_columns(record: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    envelope = record.get("envelope")
    if not isinstance(envelope, Mapping):
        raise BadRecord("envelope is missing")
    return {
        "event_id": _text(envelope, "event_id", nonempty=True),
        "occurred_at": _time(envelope, "occurred_at_us"),
        "produced_at": _time(envelope, "produced_at_us"),
        "source": _text(envelope, "source"),
        "causation_id": _text(envelope, "causation_id", required=False),
        "kafka_partition": message.partition,
        "kafka_offset": message.offset,
    }


# ---------------------------------------------------------------------------------------------
# one mapping per event type
# ---------------------------------------------------------------------------------------------
def leader_fill_row(r: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    return {
        **envelope_columns(r, message),
        "leader": _text(r, "leader", nonempty=True),
        "exchange": _text(r, "exchange"),
        "tx_hash": _text(r, "tx_hash", nonempty=True),
        "block_number": _int(r, "block_number", minimum=0),
        "log_index": _int(r, "log_index", INT32, minimum=0),
        "token_id": _text(r, "token_id", nonempty=True),
        "condition_id": _text(r, "condition_id", required=False),
        "side": _enum(r, "side", SIDES),
        "shares_e6": _int(r, "shares_e6"),
        "collateral_e6": _int(r, "collateral_e6"),
        "price": _decimal(r, "price"),
        "fee_e6": _int(r, "fee_e6"),
        "role": _enum(r, "role", FILL_ROLES),
        "order_hashes": _strings(r, "order_hashes"),
    }


def copy_decision_row(r: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    return {
        **envelope_columns(r, message),
        "candidate_id": _text(r, "candidate_id", nonempty=True),
        "follow_id": _text(r, "follow_id", nonempty=True),
        "follower": _text(r, "follower", nonempty=True),
        "leader_fill_id": _text(r, "leader_fill_id", nonempty=True),
        "action": _enum(r, "action", DECISION_ACTIONS),
        "intent_id": _text(r, "intent_id", required=False),
        "token_id": _text(r, "token_id"),
        "side": _enum(r, "side", SIDES),
        "size_e6": _int(r, "size_e6"),
        "worst_price": _decimal(r, "worst_price", required=False),
        "order_type": _text(r, "order_type", required=False),
        "expires_at": _time(r, "expires_at_us", required=False),
        "reason_code": _text(r, "reason_code", required=False),
        "reason_detail": _text(r, "reason_detail", required=False),
    }


def execution_result_row(r: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    return {
        **envelope_columns(r, message),
        "intent_id": _text(r, "intent_id", nonempty=True),
        "follow_id": _text(r, "follow_id"),
        "follower": _text(r, "follower", nonempty=True),
        "leader_fill_id": _text(r, "leader_fill_id"),
        "status": _enum(r, "status", EXECUTION_STATUSES),
        "order_hash": _text(r, "order_hash", required=False),
        "filled_shares_e6": _int(r, "filled_shares_e6"),
        "filled_collateral_e6": _int(r, "filled_collateral_e6"),
        "avg_price": _decimal(r, "avg_price", required=False),
        "fee_e6": _int(r, "fee_e6"),
        "error": _text(r, "error", required=False),
        "attempts": _int(r, "attempts", INT32),
    }


def settlement_event_row(r: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    return {
        **envelope_columns(r, message),
        "follower": _text(r, "follower", nonempty=True),
        "intent_id": _text(r, "intent_id", required=False),
        "kind": _text(r, "kind", nonempty=True),
        "amount_e6": _int(r, "amount_e6"),
        "token_id": _text(r, "token_id", required=False),
        "tx_hash": _text(r, "tx_hash", required=False),
        "debt_id": _text(r, "debt_id", required=False),
    }


def _bytes(record: Mapping[str, Any], name: str, *, required: bool = True) -> bytes | None:
    value = record.get(name)
    if value is None:
        if required:
            raise BadRecord(f"{name} is missing")
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise BadRecord(f"{name} is {type(value).__name__}, not bytes")
    return bytes(value)


def dead_letter_event_row(r: Mapping[str, Any], message: SourceMessage) -> dict[str, Any]:
    """A DeadLetter event from `dead.letters`: the row describes the message it parks."""
    envelope = envelope_columns(r, message)
    return {
        "source_topic": _text(r, "source_topic", nonempty=True),
        "source_partition": _int(r, "source_partition", INT32, minimum=0),
        "source_offset": _int(r, "source_offset", minimum=0),
        "key": _bytes(r, "key", required=False),
        "original": _bytes(r, "original"),
        "error": _text(r, "error"),
        "stage": _text(r, "stage"),
        "event_id": envelope["event_id"],
        "occurred_at": envelope["occurred_at"],
    }


def parked_row(message: SourceMessage, error: str) -> dict[str, Any]:
    """The dead letter for a message this projection could not use: its exact bytes and why.

    `occurred_at` is the message's own Kafka timestamp (stable across replays), and the event id
    is kept when the envelope could at least be read."""
    event_id = None
    if message.record is not None:
        envelope = message.record.get("envelope")
        if isinstance(envelope, Mapping) and isinstance(envelope.get("event_id"), str) \
                and "\x00" not in envelope["event_id"]:
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


@dataclass(frozen=True)
class Projection:
    """A topic folded into one table: which record type it expects and how a record maps to a row."""

    name: str  # the `projection` column of projection_offsets
    topic: str  # catalogue name (horus.topics), without the test prefix
    record_type: str
    table: str
    to_row: RowMapper

    def fold(self, messages: Iterable[SourceMessage]) -> FoldResult:
        """Rows for `messages`, in order; bad messages become dead_letters rows. Pure."""
        result = FoldResult()
        for message in messages:
            table, row = self.fold_one(message)
            result.add(table, row, message)
        return result

    def fold_one(self, message: SourceMessage) -> tuple[str, dict[str, Any]]:
        if message.error is not None:
            return DEAD_LETTERS_TABLE, parked_row(message, f"undecodable: {message.error}")
        if message.value is None:
            return DEAD_LETTERS_TABLE, parked_row(message, "empty message (null value)")
        if message.record is None or message.record_type != self.record_type:
            return DEAD_LETTERS_TABLE, parked_row(
                message, f"unexpected record type {message.record_type!r} on {self.topic} (want {self.record_type})")
        try:
            return self.table, self.to_row(message.record, message)
        except BadRecord as exc:
            return DEAD_LETTERS_TABLE, parked_row(message, f"bad {self.record_type}: {exc}")
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            return DEAD_LETTERS_TABLE, parked_row(message, f"bad {self.record_type}: {type(exc).__name__}: {exc}")


LEADER_FILLS_PROJECTION = Projection("leader_fills", LEADER_FILLS.name, "LeaderFill", "leader_fills", leader_fill_row)
COPY_DECISIONS_PROJECTION = Projection("copy_decisions", COPY_DECISIONS.name, "CopyDecision", "copy_decisions",
                                       copy_decision_row)
EXECUTION_RESULTS_PROJECTION = Projection("execution_results", EXECUTION_RESULTS.name, "ExecutionResult",
                                          "execution_results", execution_result_row)
SETTLEMENT_EVENTS_PROJECTION = Projection("settlement_events", SETTLEMENT_EVENTS.name, "SettlementEvent",
                                          "settlement_events", settlement_event_row)
DEAD_LETTERS_PROJECTION = Projection("dead_letters", DEAD_LETTERS.name, "DeadLetter", DEAD_LETTERS_TABLE,
                                     dead_letter_event_row)

ALL_PROJECTIONS: tuple[Projection, ...] = (
    LEADER_FILLS_PROJECTION,
    COPY_DECISIONS_PROJECTION,
    EXECUTION_RESULTS_PROJECTION,
    SETTLEMENT_EVENTS_PROJECTION,
    DEAD_LETTERS_PROJECTION,
)


def fold_batch(by_topic: Mapping[str, Projection], messages: Iterable[SourceMessage]) -> FoldResult:
    """Fold a mixed batch: each message by the projection that owns its (real) topic name. Pure."""
    result = FoldResult()
    for message in messages:
        table, row = by_topic[message.topic].fold_one(message)
        result.add(table, row, message)
    return result
