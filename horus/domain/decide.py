"""decide: one CopyCandidate -> exactly one CopyDecision (COPY or SKIP with a reason).

Pass-through for now: COPY the leader's share count at the leader's price as a FAK order. The
sizing and guardrails issue fills in `DecideState` (balance, reservations, positions, daily spend)
and the rules; the (event, state) -> (events, state) shape stays.
"""
from __future__ import annotations

from dataclasses import dataclass

from horus.codec import envelope
from horus.domain.ids import decision_id, intent_id

STAGE = "decide"


@dataclass
class DecideState:
    """Per-follower state folded by `decide` (empty until sizing and guardrails arrive)."""


def decide(candidate: dict, state: DecideState | None, *, now_us: int) -> tuple[list[dict], DecideState | None]:
    """(CopyCandidate, state) -> ([one CopyDecision], state)."""
    env = candidate["envelope"]
    cand_id = env["event_id"]
    decision = {
        "envelope": envelope(decision_id(cand_id), STAGE, env["occurred_at_us"],
                             causation_id=cand_id, produced_at_us=now_us),
        "candidate_id": cand_id,
        "follow_id": candidate["follow_id"],
        "follower": candidate["follower"],
        "leader_fill_id": candidate["leader_fill_id"],
        "action": "COPY",
        "intent_id": intent_id(candidate["follow_id"], candidate["leader_fill_id"]),
        "token_id": candidate["token_id"],
        "side": candidate["side"],
        "size_e6": candidate["leader_shares_e6"],
        "worst_price": candidate["leader_price"],
        "order_type": "FAK",
        "expires_at_us": None,
        "reason_code": None,
        "reason_detail": None,
    }
    return [decision], state
