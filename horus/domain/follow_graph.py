"""The follow graph: which follows each leader has, folded from FOLLOW config changes.

`plan` needs every follow of a leader (leader fills are partitioned by leader, follows are not),
so each plan instance folds the whole compacted `config.changes` topic into one graph.

A FOLLOW UPSERT is parsed by the one follow parser (horus.domain.config.parse_change_body), the rules decide,
the executor and the CLI apply; the graph keeps what plan needs of it (ids, addresses, enabled). An upsert the
parser refuses raises ConfigError and leaves the graph as it was: plan keeps fanning out the follow's last valid
version, and decide, whose config state drops it, answers its candidates SKIP FOLLOW_INVALID with the parser's
reason (an audit trail of why nothing was copied). DELETE (or a Kafka tombstone keyed by the follow id) removes
the follow. FOLLOWER changes are not part of the graph and are ignored here.

`apply_config_change` updates the graph in place and returns it (copying a graph of 100k follows
per change would dominate the cost); everything else here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from horus.domain.config import ConfigInvalid, FollowConfig, parse_change_body

__all__ = ["ConfigError", "Follow", "FollowGraph", "apply_config_change", "apply_tombstone", "enabled_leaders"]


class ConfigError(ConfigInvalid):
    """A FOLLOW change the graph cannot apply (malformed body, bad address, id mismatch, any rule broken)."""


@dataclass(frozen=True, slots=True)
class Follow:
    follow_id: str
    follower: str  # trading address (proxy or wallet), lowercase 0x hex
    leader: str  # lowercase 0x hex
    enabled: bool = True


def parse_follow(entity_id: str, body: str | None) -> Follow:
    """The Follow an UPSERT describes, by the one follow parser; raises ConfigError with what is wrong."""
    if not entity_id:
        raise ConfigError("FOLLOW change without entity_id")
    if body is None:
        raise ConfigError(f"FOLLOW UPSERT {entity_id} has no body")
    try:
        config = cast(FollowConfig, parse_change_body("FOLLOW", entity_id, body))  # a FOLLOW body is a FollowConfig
    except ConfigInvalid as exc:
        raise ConfigError(f"FOLLOW UPSERT {entity_id}: {exc}") from None
    return Follow(config.follow_id, config.follower, config.leader, config.enabled)


class FollowGraph:
    """leader -> follows, plus follow_id -> follow (a follow may move to another leader on upsert)."""

    __slots__ = ("_by_id", "_by_leader", "_enabled_cache")

    def __init__(self, follows: tuple[Follow, ...] | list[Follow] = ()) -> None:
        self._by_id: dict[str, Follow] = {}
        self._by_leader: dict[str, dict[str, Follow]] = {}
        self._enabled_cache: dict[str, tuple[Follow, ...]] = {}
        for follow in follows:
            self.upsert(follow)

    def upsert(self, follow: Follow) -> None:
        old = self._by_id.get(follow.follow_id)
        if old is not None and old.leader != follow.leader:
            self._drop_from_leader(old)
        self._by_id[follow.follow_id] = follow
        self._by_leader.setdefault(follow.leader, {})[follow.follow_id] = follow
        self._enabled_cache.pop(follow.leader, None)

    def remove(self, follow_id: str) -> Follow | None:
        old = self._by_id.pop(follow_id, None)
        if old is not None:
            self._drop_from_leader(old)
        return old

    def _drop_from_leader(self, follow: Follow) -> None:
        follows = self._by_leader.get(follow.leader)
        if follows is not None:
            follows.pop(follow.follow_id, None)
            if not follows:
                del self._by_leader[follow.leader]
        self._enabled_cache.pop(follow.leader, None)

    def get(self, follow_id: str) -> Follow | None:
        return self._by_id.get(follow_id)

    def follows_of(self, leader: str) -> tuple[Follow, ...]:
        """Every follow of the leader, enabled or not, ordered by follow_id."""
        follows = self._by_leader.get(leader.lower(), {})
        return tuple(sorted(follows.values(), key=lambda f: f.follow_id))

    def enabled_follows_of(self, leader: str) -> tuple[Follow, ...]:
        """The enabled follows of the leader, ordered by follow_id (cached until the leader changes)."""
        leader = leader.lower()
        cached = self._enabled_cache.get(leader)
        if cached is None:
            cached = tuple(f for f in self.follows_of(leader) if f.enabled)
            self._enabled_cache[leader] = cached
        return cached

    def leaders(self) -> list[str]:
        return sorted(self._by_leader)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, follow_id: object) -> bool:
        return follow_id in self._by_id


def apply_config_change(change: dict[str, Any], graph: FollowGraph) -> tuple[list[dict[str, Any]], FollowGraph]:
    """Fold one ConfigChange record into the graph; (no new events, the graph). Raises ConfigError."""
    if change.get("entity") != "FOLLOW":
        return [], graph
    entity_id = change.get("entity_id") or ""
    op = change.get("op")
    if op == "DELETE":
        if not entity_id:
            raise ConfigError("FOLLOW DELETE without entity_id")
        graph.remove(entity_id)
    elif op == "UPSERT":
        graph.upsert(parse_follow(entity_id, change.get("body")))
    else:
        raise ConfigError(f"FOLLOW change {entity_id}: unknown op {op!r}")
    return [], graph


def apply_tombstone(key: bytes | str | None, graph: FollowGraph) -> FollowGraph:
    """A compaction tombstone (null value) for a follow id removes that follow; other keys are no-ops."""
    if key:
        graph.remove(key.decode("utf-8", "replace") if isinstance(key, bytes) else key)
    return graph


def enabled_leaders(graph: FollowGraph) -> frozenset[str]:
    """Leaders with at least one enabled follow (the ones worth watching)."""
    return frozenset(leader for leader in graph.leaders() if graph.enabled_follows_of(leader))
