"""plan: one LeaderFill -> one CopyCandidate per enabled follow of its leader.

Leader-level, stateless filters (later issues) drop pairs here; everything stateful is `decide`'s.
"""

from __future__ import annotations

from typing import Any

from horus.domain.events import envelope
from horus.domain.follow_graph import FollowGraph
from horus.domain.ids import candidate_id

STAGE = "plan"
# Every candidate copies these fields of its fill. A fill with longer text than any real id, address, token id
# or price could make a candidate too large for the broker, stopping the stage on it after every restart.
MAX_FILL_TEXT = 256
_FILL_TEXT = ("leader", "token_id", "price", "condition_id")


class FillInvalid(ValueError):
    """A leader fill no candidate can be written for: the runner parks it."""


def _check_fill(fill: dict[str, Any]) -> None:
    if fill.get("side") not in ("BUY", "SELL"):  # UNRECOGNIZED: a newer writer's side, which no writer may write
        raise FillInvalid(f"leader fill side {fill.get('side')!r:.20} is neither BUY nor SELL")
    for name, value in (("event_id", fill["envelope"]["event_id"]), *((n, fill.get(n)) for n in _FILL_TEXT)):
        if isinstance(value, str) and len(value) > MAX_FILL_TEXT:
            raise FillInvalid(f"leader fill {name} is {len(value)} characters long (at most {MAX_FILL_TEXT})")


def plan(fill: dict[str, Any], graph: FollowGraph, *, now_us: int) -> tuple[list[dict[str, Any]], FollowGraph]:
    """(LeaderFill, follow graph) -> ([CopyCandidate], graph unchanged). Raises FillInvalid for a fill no
    candidate can be written for; other hostile values (a price outside (0, 1], negative shares) are passed
    on, and decide SKIPs them with a reason for every follow."""
    _check_fill(fill)
    fill_env = fill["envelope"]
    fill_id = fill_env["event_id"]
    occurred = fill_env["occurred_at_us"]
    leader = fill["leader"].lower()
    candidates = []
    for follow in graph.enabled_follows_of(leader):
        candidates.append(
            {
                "envelope": envelope(
                    candidate_id(fill_id, follow.follow_id),
                    STAGE,
                    occurred,
                    causation_id=fill_id,
                    produced_at_us=now_us,
                ),
                "leader_fill_id": fill_id,
                "follow_id": follow.follow_id,
                "follower": follow.follower,
                "leader": leader,
                "token_id": fill["token_id"],
                "side": fill["side"],
                "leader_shares_e6": fill["shares_e6"],
                "leader_collateral_e6": fill["collateral_e6"],
                "leader_price": fill["price"],
                "condition_id": fill.get("condition_id"),
            }
        )
    return candidates, graph
