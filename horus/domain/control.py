"""Operator switches from `control.commands` (compacted, keyed by scope:target): the global circuit
breaker and kill switch, and pauses per follower or per market. Every decide instance folds the whole
topic, so a command is honoured everywhere as soon as it is read (well under a second)."""

from __future__ import annotations

from typing import Any

from horus.domain.events import envelope
from horus.domain.ids import make_id

SCOPES = ("GLOBAL", "FOLLOWER", "MARKET")
VERBS = ("PAUSE", "RESUME", "KILL")


class ControlError(ValueError):
    pass


def control_key(scope: str, target: str | None) -> str:
    return scope if scope == "GLOBAL" else f"{scope}:{(target or '').lower()}"


def check_control(scope: object, verb: object, target: object) -> str | None:
    """The rules of a control command, for the command an operator issues and for every command a fold
    reads off the topic (which anyone with broker access can write): raises ControlError naming the rule
    broken; returns the target as it is keyed (stripped, lowercase; None for GLOBAL)."""
    if scope not in SCOPES:
        raise ControlError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r:.40}")
    if verb not in VERBS:
        raise ControlError(f"command must be one of {', '.join(VERBS)}, got {verb!r:.40}")
    if scope == "GLOBAL":
        if target is not None:
            raise ControlError(f"GLOBAL takes no target, got {target!r:.80}")
        return None
    if verb == "KILL":
        raise ControlError("KILL is the global kill switch; pause a follower or market instead")
    if not isinstance(target, str) or not target.strip():
        raise ControlError(f"{scope} needs a target, got {target!r:.80}")
    return target.strip().lower()


def control_command(
    scope: str,
    verb: str,
    target: str | None = None,
    *,
    reason: str | None = None,
    issued_by: str | None = None,
    occurred_at_us: int = 0,
) -> dict[str, Any]:
    """A ControlCommand record (validated)."""
    target = check_control(scope, verb, target)
    event_id = make_id("control", scope, target, verb, reason, occurred_at_us)
    return {
        "envelope": envelope(event_id, issued_by or "operator", occurred_at_us),
        "scope": scope,
        "target": target,
        "command": verb,
        "reason": reason,
        "issued_by": issued_by,
    }


class ControlState:
    """Which switches are on, and why (for SKIP details)."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active: dict[str, tuple[str, str]] = {}  # control key -> (verb, reason text)

    @property
    def killed(self) -> bool:
        return self.active.get("GLOBAL", ("",))[0] == "KILL"

    @property
    def global_paused(self) -> bool:
        return "GLOBAL" in self.active

    def follower_paused(self, follower: str) -> bool:
        return bool(self.active) and f"FOLLOWER:{follower}" in self.active

    def market_paused(self, market: str) -> bool:
        return bool(self.active) and f"MARKET:{market.lower()}" in self.active

    def reason(self, scope: str, target: str | None = None) -> str:
        verb, why = self.active.get(control_key(scope, target), ("", ""))
        where = "everything" if scope == "GLOBAL" else f"{scope.lower()} {target}"
        return f"{verb.lower() or 'paused'} for {where}" + (f": {why}" if why else "")


def apply_control(command: dict[str, Any], state: ControlState) -> tuple[list[dict[str, Any]], ControlState]:
    """Fold one ControlCommand into the switches. A command that breaks the rules (check_control) raises
    ControlError and changes nothing: the tail parks it."""
    target = check_control(command.get("scope"), command.get("command"), command.get("target"))
    key = control_key(command["scope"], target)
    if command["command"] == "RESUME":
        state.active.pop(key, None)
    else:
        who = command.get("issued_by")
        text = (command.get("reason") or "") + (f" (by {who})" if who else "")
        state.active[key] = (command["command"], text.strip())
    return [], state


def apply_control_tombstone(key: bytes | str | None, state: ControlState) -> ControlState:
    if key:
        state.active.pop(key.decode() if isinstance(key, bytes) else key, None)
    return state
