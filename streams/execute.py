"""execute stage: copy.decisions -> execution.results (dry run until the venue adapter lands)."""
from __future__ import annotations

from horus.domain.execute import execute
from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS
from streams.runtime import Runtime, StageSpec

NAME = "execute"


def build(runtime: Runtime) -> StageSpec:
    return StageSpec(name=NAME, source=COPY_DECISIONS, input_type="CopyDecision", sink=EXECUTION_RESULTS,
                     output_type="ExecutionResult", fn=execute)
