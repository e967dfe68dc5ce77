"""May this order be sent now? The executor asks immediately before every POST, fresh or re-send (DESIGN
invariant 8, safety review D4): the operator's switches (kill, global / follower / market pause from
control.commands) and the follow and follower configs (disabled or deleted) as the executor last folded them.

Decide already refuses to COPY under a switch; this is the second line, for everything decided before the switch
was thrown: decisions queued on copy.decisions, rows in a follower's lane, re-sends of the reconciler.

A follow the executor has never seen is not blocked: decide made the decision with it, and a deleted one is
remembered as deleted (`ExecutorConfig.deleted`), so "unknown" never means "deleted" here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from horus.domain.config import ConfigState, apply_config, apply_config_tombstone, config_key
from horus.domain.control import ControlState

KILLED = "KILLED"
PAUSED = "PAUSED"


@dataclass(frozen=True)
class Blocked:
    """Why an order must not be sent now. `code` is one of KILLED, PAUSED_GLOBAL, PAUSED_FOLLOWER,
    PAUSED_MARKET, FOLLOWER_DISABLED, FOLLOWER_DELETED, FOLLOW_DISABLED, FOLLOW_DELETED, FOLLOW_INVALID."""

    code: str
    detail: str

    @property
    def error(self) -> str:
        """The reason an unsent COPY ends with: `KILLED: <why>` or `PAUSED: <code>: <why>`."""
        if self.code == KILLED:
            return f"{KILLED}: {self.detail}"
        return f"{PAUSED}: {self.code}: {self.detail}"


@dataclass
class ExecutorConfig:
    """Follower and follow configs folded from config.changes, remembering which ones were deleted."""

    config: ConfigState = field(default_factory=ConfigState)
    deleted: set[str] = field(default_factory=set)  # config keys whose last change was a DELETE or tombstone


def apply_executor_config(change: dict[str, Any], state: ExecutorConfig) -> tuple[list[dict[str, Any]], ExecutorConfig]:
    """Fold one ConfigChange (raises ConfigInvalid after recording it, like `apply_config`)."""
    key = config_key(change.get("entity") or "", change.get("entity_id") or "")
    if change.get("op") == "DELETE":
        state.deleted.add(key)
    else:
        state.deleted.discard(key)
    apply_config(change, state.config)
    return [], state


def apply_executor_config_tombstone(key: bytes | str | None, state: ExecutorConfig) -> ExecutorConfig:
    if key:
        state.deleted.add(key.decode("utf-8", "replace") if isinstance(key, bytes) else key)
    apply_config_tombstone(key, state.config)
    return state


def blocked(
    control: ControlState,
    configs: ExecutorConfig,
    *,
    follower: str,
    follow_id: str,
    condition_id: str | None,
    token_id: str,
    follower_enabled: bool = True,
) -> Blocked | None:
    """The first switch or config that forbids sending this order now, or None. `follower_enabled` is what the
    executor's account source says (an accounts file, or the same config.changes)."""
    if control.killed:
        return Blocked(KILLED, control.reason("GLOBAL"))
    if control.global_paused:
        return Blocked("PAUSED_GLOBAL", control.reason("GLOBAL"))
    if control.follower_paused(follower):
        return Blocked("PAUSED_FOLLOWER", control.reason("FOLLOWER", follower))
    for market in filter(None, (condition_id, token_id)):
        if control.market_paused(market):
            return Blocked("PAUSED_MARKET", control.reason("MARKET", market))
    follower_key = config_key("FOLLOWER", follower)
    account = configs.config.followers.get(follower)
    if not follower_enabled or (account is not None and not account.enabled):
        return Blocked("FOLLOWER_DISABLED", f"follower {follower} is disabled")
    if account is None and follower_key in configs.deleted:
        return Blocked("FOLLOWER_DELETED", f"follower {follower} was removed")
    follow = configs.config.follows.get(follow_id)
    if follow is not None and not follow.enabled:
        return Blocked("FOLLOW_DISABLED", f"follow {follow_id} is disabled")
    if follow is None and follow_id in configs.config.invalid:
        return Blocked("FOLLOW_INVALID", configs.config.invalid[follow_id])
    if follow is None and follow_id in configs.deleted:
        return Blocked("FOLLOW_DELETED", f"follow {follow_id} was removed")
    return None
