"""decide stage: copy.candidates -> copy.decisions (exactly one per candidate)."""
from __future__ import annotations

import faust

from horus.domain.decide import DecideState, decide
from horus.topics import COPY_CANDIDATES, COPY_DECISIONS
from streams.runtime import Batching, Runtime, StageSpec
from streams.stage import register_stage

NAME = "decide"


def register(app: faust.App, runtime: Runtime, batching: Batching) -> StageSpec:
    spec = StageSpec(name=NAME, source=COPY_CANDIDATES, input_type="CopyCandidate", sink=COPY_DECISIONS,
                     output_type="CopyDecision", fn=decide, state=DecideState())
    return register_stage(app, runtime, batching, spec)
