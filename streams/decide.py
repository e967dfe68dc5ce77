"""decide stage: copy.candidates -> copy.decisions (exactly one per candidate)."""
from __future__ import annotations

from horus.domain.decide import DecideState, decide
from horus.topics import COPY_CANDIDATES, COPY_DECISIONS
from streams.runtime import Runtime, StageSpec

NAME = "decide"


def build(runtime: Runtime) -> StageSpec:
    return StageSpec(name=NAME, source=COPY_CANDIDATES, input_type="CopyCandidate", sink=COPY_DECISIONS,
                     output_type="CopyDecision", fn=decide, state=DecideState())
