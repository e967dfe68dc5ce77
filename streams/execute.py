"""execute stage: copy.decisions -> execution.results (dry run until the venue adapter lands)."""
from __future__ import annotations

import faust

from horus.domain.execute import execute
from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS
from streams.runtime import Batching, Runtime, StageSpec
from streams.stage import register_stage

NAME = "execute"


def register(app: faust.App, runtime: Runtime, batching: Batching) -> StageSpec:
    spec = StageSpec(name=NAME, source=COPY_DECISIONS, input_type="CopyDecision", sink=EXECUTION_RESULTS,
                     output_type="ExecutionResult", fn=execute)
    return register_stage(app, runtime, batching, spec)
