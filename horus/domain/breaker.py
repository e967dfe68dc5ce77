"""The circuit breaker: when too many of the recent executions failed, pause everything. decide keeps the recent
outcomes (DecideState.outcomes, from execution.results); this rule says when they trip the breaker and what the
pause says. The runner produces the command on control.commands, where every instance honours it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from horus.domain.control import ControlState, control_command
from horus.domain.decide import DecideState, failure_rate

ISSUER = "circuit-breaker"


@dataclass(frozen=True)
class BreakerPolicy:
    window_s: float  # outcomes older than this are forgotten
    min_executions: int  # fewer outcomes than this in the window never trip it
    failure_rate: float  # the share of failed outcomes that trips it (0.5: half)


def breaker_command(
    state: DecideState, control: ControlState, policy: BreakerPolicy, now_us: int
) -> dict[str, Any] | None:
    """A global PAUSE when the failed share of the outcomes in the window reaches the policy's rate (and there are
    enough of them, and nothing is paused already); else None."""
    failed, total = failure_rate(state, now_us, int(policy.window_s * 1_000_000))
    if total < policy.min_executions or failed < total * policy.failure_rate or control.global_paused:
        return None
    reason = (
        f"circuit breaker: {failed} of the last {total} executions failed within "
        f"{policy.window_s:g}s (threshold {policy.failure_rate:.0%})"
    )
    return control_command("GLOBAL", "PAUSE", reason=reason, issued_by=ISSUER, occurred_at_us=now_us)
