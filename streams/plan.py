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
import time

from confluent_kafka import KafkaError

from horus.domain.follow_graph import FollowGraph, apply_config_change, apply_tombstone
from horus.domain.plan import plan
from horus.kafka.client import assign_from_beginning, make_consumer
from horus.topics import CONFIG_CHANGES, COPY_CANDIDATES, LEADER_FILLS
from streams.runtime import Runtime, StageSpec

log = logging.getLogger("horus.streams.plan")

NAME = "plan"


class ConfigTail:
    """Folds config.changes into a FollowGraph in a background thread (see module doc)."""

    def __init__(self, runtime: Runtime, graph: FollowGraph, lock: threading.Lock) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.graph = graph
        self.lock = lock
        self.topic = self.settings.topic(CONFIG_CHANGES.name)
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.applied = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="horus-config-tail", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        try:
            consumer = make_consumer(self.settings, None, **{"enable.partition.eof": True})
            try:
                started = time.monotonic()
                waiting = {tp.partition for tp in assign_from_beginning(consumer, [self.topic])}
                while waiting and not self._stop.is_set():
                    self._apply(consumer.consume(1000, 0.2), waiting)
                log.info("follow graph rebuilt from %s: %d follows, %d leaders, %d changes in %.2fs",
                         self.topic, len(self.graph), len(self.graph.leaders()), self.applied,
                         time.monotonic() - started)
                self.ready.set()
                while not self._stop.is_set():
                    self._apply(consumer.consume(1000, 0.1), None)
            finally:
                consumer.close()
        except BaseException as exc:  # noqa: BLE001 - surfaced to the plan agent, which stops the worker
            log.exception("config tail failed")
            self.failed = exc
            self.ready.set()

    def _apply(self, messages: list, waiting: set | None) -> None:
        if not messages:
            return
        codec = self.runtime.codec
        with self.lock:
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if waiting is not None:
                            waiting.discard(message.partition())
                        continue
                    if error.fatal():
                        raise RuntimeError(f"config.changes consumer: {error}")
                    log.warning("config.changes consumer: %s", error)
                    continue
                value = message.value()
                try:
                    if value is None:
                        apply_tombstone(message.key(), self.graph)
                    else:
                        name, record = codec.decode(value)
                        if name != "ConfigChange":
                            raise ValueError(f"expected ConfigChange on {self.topic}, got {name}")
                        apply_config_change(record, self.graph)
                    self.applied += 1
                except Exception as exc:
                    # every plan instance parks it (same deterministic dead-letter id)
                    self.runtime.dead_letters.park(
                        topic=message.topic(), partition=message.partition(), offset=message.offset(),
                        key=message.key(), original=value, error=exc, stage="plan-config")


def build(runtime: Runtime) -> StageSpec:
    graph = FollowGraph()
    lock = threading.Lock()
    tail = ConfigTail(runtime, graph, lock)
    runtime.on_start.append(tail.start)
    runtime.extra_stop.append(tail.stop)
    return StageSpec(name=NAME, source=LEADER_FILLS, input_type="LeaderFill", sink=COPY_CANDIDATES,
                     output_type="CopyCandidate", fn=plan, state=graph, lock=lock, tail=tail)
