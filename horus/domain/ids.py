"""Deterministic event ids.

Every id is the SHA-256 (64 lowercase hex characters) of a kind tag and the facts that identify the
event, so the same fact always gets the same id: a redelivered message, a restarted stage or a
second instance produce byte-identical ids, and consumers deduplicate on them.

Parts are length-prefixed before hashing, so ("ab", "c") and ("a", "bc") never collide, whatever
characters the parts contain. Changing a formula here changes every id downstream: don't.
"""

from __future__ import annotations

import hashlib

_VERSION = "horus/1"


def make_id(kind: str, *parts: object) -> str:
    """H(kind, part, ...): sha256 hex over the version, the kind and each part (str()-ed)."""
    chunks = []
    for piece in (_VERSION, kind, *parts):
        data = str(piece).encode("utf-8")
        chunks.append(b"%d:" % len(data))
        chunks.append(data)
    return hashlib.sha256(b"".join(chunks)).hexdigest()  # one update: the same digest, fewer calls


def leader_fill_id(tx_hash: str, leader: str, token_id: str, side: str) -> str:
    """One LeaderFill per (transaction, leader, outcome token, side), whatever source saw it."""
    return make_id("fill", tx_hash.lower(), leader.lower(), str(token_id), side.upper())


def candidate_id(leader_fill_id: str, follow_id: str) -> str:
    return make_id("candidate", leader_fill_id, follow_id)


def intent_id(follow_id: str, leader_fill_id: str) -> str:
    """The order intent / idempotency key: at most one order per (follow, leader fill)."""
    return make_id("intent", follow_id, leader_fill_id)


def decision_id(candidate_id: str) -> str:
    """Exactly one decision per candidate."""
    return make_id("decision", candidate_id)


def result_id(intent_id: str, attempt: int) -> str:
    """One execution result per (intent, attempt)."""
    return make_id("result", intent_id, int(attempt))


def settlement_id(result_event_id: str, kind: str, seq: int = 0) -> str:
    """One settlement step per (execution result, kind, sequence number within that result)."""
    return make_id("settlement", result_event_id, kind, int(seq))


def dead_letter_id(source_topic: str, partition: int, offset: int, stage: str) -> str:
    """A message parked twice (redelivery, a second worker) gets the same dead-letter id."""
    return make_id("dead-letter", source_topic, int(partition), int(offset), stage)
