"""plan: one LeaderFill -> one CopyCandidate per enabled follow of its leader.

Leader-level, stateless filters (later issues) drop pairs here; everything stateful is `decide`'s.
"""
from __future__ import annotations

from horus.codec import envelope
from horus.domain.follow_graph import FollowGraph
from horus.domain.ids import candidate_id

STAGE = "plan"


def plan(fill: dict, graph: FollowGraph, *, now_us: int) -> tuple[list[dict], FollowGraph]:
    """(LeaderFill, follow graph) -> ([CopyCandidate], graph unchanged)."""
    fill_env = fill["envelope"]
    fill_id = fill_env["event_id"]
    occurred = fill_env["occurred_at_us"]
    leader = fill["leader"].lower()
    candidates = []
    for follow in graph.enabled_follows_of(leader):
        candidates.append({
            "envelope": envelope(candidate_id(fill_id, follow.follow_id), STAGE, occurred,
                                 causation_id=fill_id, produced_at_us=now_us),
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
        })
    return candidates, graph
