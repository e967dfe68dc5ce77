"""What every event carries: its envelope (id, source stage, times, cause), and the statuses of an execution.
Events themselves are plain dicts shaped by the Avro schemas in schemas/; horus.codec encodes them, the domain only
builds them."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any


def envelope(
    event_id: str, source: str, occurred_at_us: int, causation_id: str | None = None, produced_at_us: int | None = None
) -> dict[str, Any]:
    """An Envelope record; ``produced_at_us`` defaults to now (epoch microseconds)."""
    if produced_at_us is None:
        produced_at_us = time.time_ns() // 1000
    return {
        "event_id": event_id,
        "occurred_at_us": occurred_at_us,
        "produced_at_us": produced_at_us,
        "source": source,
        "causation_id": causation_id,
    }


class ExecutionStatus(StrEnum):
    """What became of a copy order: ExecutionResult.status (schemas/ExecutionResult.avsc, in its symbol order) and
    the ledger's status. Members are strings: they compare and hash as their names."""

    FILLED = "FILLED"
    PARTIAL = "PARTIAL"
    NOT_FILLED = "NOT_FILLED"
    REJECTED = "REJECTED"  # never accepted: the reason is in `error`
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"  # no definitive answer yet: the reconciler settles it
    DRY_RUN = "DRY_RUN"  # signed and recorded, not sent
    SUBMITTED = "SUBMITTED"  # resting at the venue, or its fills not final yet


PENDING = "PENDING"  # ledger only: prewritten, before any POST
LEGACY_SENT = "SENT"  # ledger only: rows of the first executor (migration 0005 keeps the value legal)
LEDGER_STATUSES = (PENDING, LEGACY_SENT, *(s.value for s in ExecutionStatus))  # plain strings (SQL, CLI)
_S = ExecutionStatus
# plain strings: records and ledger rows carry them as str
TERMINAL = frozenset(s.value for s in (_S.FILLED, _S.PARTIAL, _S.NOT_FILLED, _S.REJECTED, _S.FAILED, _S.DRY_RUN))
OPEN = frozenset((PENDING, _S.UNKNOWN.value, _S.SUBMITTED.value))  # the reconciler's work
FAILURES = frozenset((_S.REJECTED.value, _S.FAILED.value))  # what the circuit breaker counts
