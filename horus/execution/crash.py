"""Crash points: the executor SIGKILLs itself at a named step, for the chaos proof (DESIGN invariants 1-4 must hold
whatever instant a worker dies, and random kills rarely land on the narrow windows that matter).

`HORUS_CRASH_AT=<step>:<n>` (read once at start) kills the process the n-th time it reaches `<step>`:

- `after_prewrite_commit`: a batch's rows are committed, nothing of it was POSTed;
- `after_post_sent`: an order's request went out, its reply was not read;
- `after_reply`: the reply was read, its outcome is not committed;
- `after_ledger_commit`: the outcome is committed, its ExecutionResult is not produced.

Unset (the default) costs one attribute check per step. Never set it outside a test or chaos run.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("horus.execution")

STEPS = ("after_prewrite_commit", "after_post_sent", "after_reply", "after_ledger_commit")
ENV = "HORUS_CRASH_AT"


class CrashPoints:
    def __init__(self, spec: str | None = None) -> None:
        self.step: str | None = None
        self.remaining = 0
        if spec:
            step, _, count = spec.partition(":")
            if step not in STEPS:
                raise ValueError(f"{ENV}: unknown step {step!r}; one of {', '.join(STEPS)}")
            try:
                self.remaining = int(count or "1")
            except ValueError:
                raise ValueError(f"{ENV}: {count!r} is not a count (use <step>:<n>, n >= 1)") from None
            if self.remaining < 1:
                raise ValueError(f"{ENV}: the count must be at least 1, got {self.remaining}")
            self.step = step

    @classmethod
    def from_env(cls) -> CrashPoints:
        return cls(os.environ.get(ENV))

    def reached(self, step: str) -> None:
        if step != self.step:
            return
        self.remaining -= 1
        if self.remaining == 0:
            log.critical("crash point %s reached: SIGKILL", step)
            os.kill(os.getpid(), signal.SIGKILL)
