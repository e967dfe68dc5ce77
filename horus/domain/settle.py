"""settle: one ExecutionResult -> its SettlementEvent(s).

Pass-through for now: every result is NOT_REQUIRED (direct mode, or nothing filled). The proxy-mode
issue adds reimburse / push / pull / debt steps behind this shape.
"""

from __future__ import annotations

from typing import Any

from horus.domain.events import envelope
from horus.domain.ids import settlement_id

STAGE = "settle"


def settle(result: dict[str, Any], state: object = None, *, now_us: int) -> tuple[list[dict[str, Any]], object]:
    """(ExecutionResult, state) -> ([SettlementEvent], state)."""
    env = result["envelope"]
    kind = "NOT_REQUIRED"
    event = {
        "envelope": envelope(
            settlement_id(env["event_id"], kind),
            STAGE,
            env["occurred_at_us"],
            causation_id=env["event_id"],
            produced_at_us=now_us,
        ),
        "follower": result["follower"],
        "intent_id": result["intent_id"],
        "kind": kind,
        "amount_e6": 0,
        "token_id": None,
        "tx_hash": None,
        "debt_id": None,
    }
    return [event], state
