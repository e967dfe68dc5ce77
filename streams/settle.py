"""settle stage: execution.results -> settlement.events."""

from __future__ import annotations

from horus.domain.settle import settle
from horus.topics import EXECUTION_RESULTS, SETTLEMENT_EVENTS
from streams.runtime import Runtime, StageSpec

NAME = "settle"


def build(runtime: Runtime) -> StageSpec:
    return StageSpec(
        name=NAME,
        source=EXECUTION_RESULTS,
        input_type="ExecutionResult",
        sink=SETTLEMENT_EVENTS,
        output_type="SettlementEvent",
        fn=settle,
    )
