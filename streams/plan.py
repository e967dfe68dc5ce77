"""plan stage: leader.fills -> copy.candidates, with the follow graph folded from config.changes.

Fills are partitioned by leader and follows are not, so every plan instance folds the WHOLE
compacted config.changes topic (all partitions, outside the consumer group): at start it reads
from the beginning to the end (partition EOF) before the first fill is planned, then a thread keeps
tailing it. A consumer-group agent on config.changes would only see the partitions assigned to it.
Graph updates and planning a batch of fills take the same lock.
"""

from __future__ import annotations

import logging
import threading

from horus.domain.follow_graph import FollowGraph, apply_config_change, apply_tombstone
from horus.domain.plan import plan
from horus.kafka.config_tail import ConfigTail
from horus.topics import COPY_CANDIDATES, LEADER_FILLS
from streams.runtime import Runtime, StageSpec

log = logging.getLogger("horus.streams.plan")

NAME = "plan"


def build(runtime: Runtime) -> StageSpec:
    graph = FollowGraph()
    lock = threading.Lock()
    tail = ConfigTail(
        runtime.settings,
        runtime.codec,
        graph,
        lock,
        apply=apply_config_change,
        tombstone=apply_tombstone,
        dead_letters=runtime.dead_letters,
        stage="plan-config",
    )
    runtime.on_start.append(tail.start)
    runtime.extra_stop.append(tail.stop)
    return StageSpec(
        name=NAME,
        source=LEADER_FILLS,
        input_type="LeaderFill",
        sink=COPY_CANDIDATES,
        output_type="CopyCandidate",
        fn=plan,
        state=graph,
        lock=lock,
        tail=tail,
        # a reorged-away fill does not undo copies already made (docs/decisions.md); counted
        ignored_types=("LeaderFillRetracted",),
    )
