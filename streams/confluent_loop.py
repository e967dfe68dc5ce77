"""The same stages on a plain confluent-kafka consumer loop instead of Faust (`horus worker --runner confluent`).

Per batch: take what the consumer has fetched (up to N; a lone message is never held back for a batch to
fill, a backlog still comes in full batches), run each through its stage (Runtime.process: decode, pure function,
encode, produce, park failures), wait until the broker acknowledged every output, then commit the
batch's next offsets synchronously. Nothing is in flight across a poll, so a rebalance can never
commit past unfinished work, and a crash at any point re-delivers at most the last batch (downstream
ids are deterministic). Ordering per partition is kept: one thread, batches processed in order.

Why it exists: DESIGN section 3 keeps Faust as the stage framework but asks to move a stage that misses
its throughput goal onto confluent-kafka behind the same pure function; the two runners share
everything except the loop, and `bench/stage_passthrough.py` measures both (docs/decisions.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from horus.kafka.client import make_consumer, poll_available
from horus.settings import Settings
from streams.runtime import Batching, Deliveries, Runtime, StageSpec

log = logging.getLogger("horus.streams")
IDLE_WAIT_S = 0.05  # how long a poll blocks when nothing is fetched (how fast a stop is noticed)

REBALANCE_ERRORS = (
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
)


class ConfluentStageLoop:
    def __init__(self, settings: Settings, runtime: Runtime, specs: list[StageSpec], batching: Batching) -> None:
        self.settings = settings
        self.runtime = runtime
        self.batching = batching
        self.by_topic = {settings.topic(spec.source.name): spec for spec in specs}
        # the same group id as the Faust worker's, so tools that watch the group see either runner;
        # do not run both runners under one HORUS_APP_ID (their group protocols differ)
        self.consumer = make_consumer(
            settings,
            settings.app_id,
            **{
                "partition.assignment.strategy": "cooperative-sticky",
                "max.poll.interval.ms": 300_000,
                "session.timeout.ms": int(settings.session_timeout_s * 1000),
                "heartbeat.interval.ms": int(min(3.0, settings.session_timeout_s / 3) * 1000),
            },
        )
        self.batches = 0

    def run(self, stop: threading.Event) -> None:
        self.runtime.start()
        try:
            while not all(self.runtime.stage_ready(spec) for spec in self.by_topic.values()):
                if stop.wait(0.02):
                    return
            self.consumer.subscribe(
                list(self.by_topic), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
            log.info(
                "horus worker (confluent runner): stages %s, consumer group %s",
                ",".join(spec.name for spec in self.by_topic.values()),
                self.settings.app_id,
            )
            while not stop.is_set():
                # what is fetched, at once: consume(n, timeout) would hold a lone message up to the timeout
                messages = poll_available(self.consumer, self.batching.size, IDLE_WAIT_S)
                if messages:
                    self.process(messages)
        finally:
            self.consumer.close()  # leaves the group at once, so partitions move without a session timeout
            self.runtime.close()

    def _partitions_by_spec(self, partitions) -> list[tuple[StageSpec, list[int]]]:
        by_spec: dict[str, list[int]] = defaultdict(list)
        for tp in partitions:
            by_spec[tp.topic].append(tp.partition)
        return [(self.by_topic[topic], ps) for topic, ps in by_spec.items()]

    def _on_assign(self, consumer, partitions) -> None:  # inside poll(): nothing of ours is in flight
        for spec, ps in self._partitions_by_spec(partitions):
            if spec.on_assign is not None:
                spec.on_assign(ps)

    def _on_revoke(self, consumer, partitions) -> None:  # the last batch is flushed and committed already
        for spec, ps in self._partitions_by_spec(partitions):
            if spec.on_revoke is not None:
                spec.on_revoke(ps)

    def process(self, messages) -> None:
        started = time.perf_counter()
        per_spec: dict[str, list] = defaultdict(list)
        next_offsets: dict[tuple[str, int], int] = {}
        for m in messages:
            per_spec[m.topic()].append((m.topic(), m.partition(), m.offset(), m.key(), m.value()))
            next_offsets[(m.topic(), m.partition())] = m.offset() + 1
        deliveries = Deliveries()
        for topic, batch in per_spec.items():
            spec = self.by_topic[topic]
            decoded = spec.before_batch(batch) if spec.before_batch is not None else None
            self.runtime.process(spec, batch, deliveries, decoded=decoded)
        remaining = deliveries.wait(60)
        if remaining or deliveries.errors:
            self.runtime.output_lost(
                f"{remaining} outputs undelivered, {len(deliveries.errors)} failed"
                + (f", first: {deliveries.errors[0]}" if deliveries.errors else "")
            )
        committed = True
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()], asynchronous=False
            )
        except KafkaException as exc:
            if exc.args[0].code() not in REBALANCE_ERRORS:
                raise
            # the group moved on mid-batch: the outputs are flushed (ids deterministic), the partitions'
            # next owner re-reads from the last commit and decide's rebuild recognises what was decided
            log.warning("commit skipped, the group is rebalancing: %s", exc.args[0])
            committed = False
        for topic in per_spec:
            spec = self.by_topic[topic]
            if spec.after_batch is not None:
                sink = self.settings.topic(spec.sink.name)
                spec.after_batch({p: o for (t, p), o in deliveries.next_offsets.items() if t == sink}, committed)
        self.batches += 1
        log.debug("batch of %d in %.1f ms", len(messages), (time.perf_counter() - started) * 1000)
