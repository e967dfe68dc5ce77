"""execute: one CopyDecision -> its ExecutionResult(s).

Dry run for now: a COPY gives one DRY_RUN result (nothing sent, nothing filled); a SKIP gives
nothing. The venue issue adds prewrite, signing once, POST and reconciliation behind this shape.
"""
from __future__ import annotations

from horus.codec import envelope
from horus.domain.ids import result_id

STAGE = "execute"
DRY_RUN_ATTEMPT = 0  # no submission was made


def execute(decision: dict, state: object = None, *, now_us: int) -> tuple[list[dict], object]:
    """(CopyDecision, state) -> ([ExecutionResult], state)."""
    if decision["action"] != "COPY":
        return [], state
    env = decision["envelope"]
    intent = decision["intent_id"]
    if not intent:
        raise ValueError(f"COPY decision {env['event_id']} has no intent_id")
    result = {
        "envelope": envelope(result_id(intent, DRY_RUN_ATTEMPT), STAGE, env["occurred_at_us"],
                             causation_id=env["event_id"], produced_at_us=now_us),
        "intent_id": intent,
        "follow_id": decision["follow_id"],
        "follower": decision["follower"],
        "leader_fill_id": decision["leader_fill_id"],
        "status": "DRY_RUN",
        "order_hash": None,
        "filled_shares_e6": 0,
        "filled_collateral_e6": 0,
        "avg_price": None,
        "fee_e6": 0,
        "error": None,
        "attempts": DRY_RUN_ATTEMPT,
    }
    return [result], state
