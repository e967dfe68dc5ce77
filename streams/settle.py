"""settle stage: execution.results -> settlement.events."""
from __future__ import annotations

import faust

from horus.domain.settle import settle
from horus.topics import EXECUTION_RESULTS, SETTLEMENT_EVENTS
from streams.runtime import Batching, Runtime, StageSpec
from streams.stage import register_stage

NAME = "settle"


def register(app: faust.App, runtime: Runtime, batching: Batching) -> StageSpec:
    spec = StageSpec(name=NAME, source=EXECUTION_RESULTS, input_type="ExecutionResult", sink=SETTLEMENT_EVENTS,
                     output_type="SettlementEvent", fn=settle)
    return register_stage(app, runtime, batching, spec)
