"""The thin runner around the pure stage functions: decode, call, encode, produce, park failures.

One `Runtime` per worker process holds the ONE confluent-kafka producer every stage writes through
(murmur2_random, idempotent: see horus.kafka.client), a thread that serves its delivery reports, and
the dead-letter sink. A stage hands it a batch of Faust events; the batch's outputs (and dead
letters) are produced, and only when the broker has acknowledged every one of them does the agent
ack the input events, so a crash never loses output (at-least-once; ids downstream are
deterministic, so a redelivered input reproduces the same events).

If the producer reports a message as undeliverable, the process cannot keep its promise: it exits
at once (exit code 70) *without* committing, and the restarted worker reprocesses from the last
committed offset. Raising instead would let Faust's take() machinery and the periodic committer
move past the lost batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import KafkaError
from prometheus_client import Counter, Histogram

from horus.kafka.client import fits_in_a_message, message_bytes, produce_reliably
from horus.kafka.output import Output
from horus.topics import TopicSpec

log = logging.getLogger("horus.streams")

EVENTS_IN = Counter("horus_stage_events_in_total", "Input messages handled by a stage", ["stage"])
EVENTS_OUT = Counter("horus_stage_events_out_total", "Events produced by a stage", ["stage"])
IGNORED = Counter("horus_stage_events_ignored_total", "Input records a stage reads past on purpose", ["stage", "type"])
BATCH_SECONDS = Histogram(
    "horus_stage_batch_seconds",
    "Time to process and deliver one batch",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

StageFn = Callable[..., tuple[list[dict], Any]]


@dataclass
class StageSpec:
    """How a runner feeds one pure stage function: input type, output topic and type, output key."""

    name: str
    source: TopicSpec
    input_type: str
    sink: TopicSpec
    output_type: str
    fn: StageFn  # fn(event, state, *, now_us) -> (new events, state)
    key_field: str = "follower"  # output records are keyed by this field (DESIGN 2: follower topics)
    state: Any = None
    lock: threading.Lock | None = None  # held around fn when another thread changes the state
    ignored_types: tuple[str, ...] = ()  # record types on the source topic that are not for this stage
    tail: Any = None  # plan: the ConfigTail folding config.changes into `state` (.ready, .failed, .start())
    # hooks of a stage whose state belongs to its input partitions (decide); the confluent loop calls them
    on_assign: Callable[[list[int]], None] | None = None  # partitions of `source` this instance now owns
    on_revoke: Callable[[list[int]], None] | None = None
    # sees the batch's (topic, partition, offset, key, value) tuples first; returns them decoded (or None)
    before_batch: Callable[[list[tuple]], list | None] | None = None
    # after the batch's commit: ({sink partition: offset after its last output delivered}, commit succeeded)
    after_batch: Callable[[dict[int, int], bool], None] | None = None


class OutputTooLarge(ValueError):
    """An input whose output would not fit in one Kafka message (a hostile input copying huge fields): parked.
    plan and settle keep no state; decide refuses such a candidate itself before it touches its books
    (CandidateInvalid), so a state never holds a decision that was not produced."""


class Deliveries:
    """One batch's delivery reports (librdkafka calls it on the producer's poll thread): the failures, per
    (topic, partition) the offset after the last output delivered (decide's snapshots say what they cover), and
    the moment every announced output is reported: `wait()` on a thread (the confluent loop), or `future` on
    an event loop (a Faust agent)."""

    __slots__ = ("pending", "errors", "next_offsets", "sealed", "loop", "future", "_reported")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.pending = 0
        self.errors: list[str] = []
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.sealed = False
        self.loop = loop
        self.future: asyncio.Future[None] | None = loop.create_future() if loop is not None else None
        self._reported = threading.Condition(threading.Lock())

    def add(self) -> None:  # Runtime.process announces each output
        with self._reported:
            self.pending += 1

    def __call__(self, err: KafkaError | None, msg: Any) -> None:  # delivery report (poll thread)
        with self._reported:
            self.pending -= 1
            if err is not None:
                self.errors.append(f"{msg.topic()}: {err}")
            else:
                key, offset = (msg.topic(), msg.partition()), msg.offset() + 1
                if offset > self.next_offsets.get(key, 0):
                    self.next_offsets[key] = offset
            done = self.sealed and self.pending == 0
            if done:
                self._reported.notify_all()
        if done and self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._resolve)
            except RuntimeError:  # loop closed at shutdown: nobody is waiting any more
                pass

    def seal(self) -> None:
        """No more outputs will be announced (called on the waiting thread or loop)."""
        with self._reported:
            self.sealed = True
            done = self.pending == 0
        if done and self.future is not None:
            self._resolve()

    def wait(self, timeout: float) -> int:
        """Seal, then block until every output is reported; how many are not. Not producer.flush(): with the
        reports served by the runtime's poll thread it sleeps in 10 ms slices (bench/latency.py measured
        +10 ms on every lone message)."""
        self.seal()
        with self._reported:
            self._reported.wait_for(lambda: self.pending <= 0, timeout)
            return max(self.pending, 0)

    def _resolve(self) -> None:
        future = self.future  # called only when there is one (seal, or a report with a loop)
        if future is not None and not future.done():
            future.set_result(None)


class Runtime(Output):
    """Per-process resources shared by the stages (producer, its poll thread, codec, dead letters: Output), and
    the batch step every stage runs through."""

    def stage_ready(self, spec: StageSpec) -> bool:
        """True once the stage may process input; exits the process if its state cannot be built."""
        tail = spec.tail
        if tail is None:
            return True
        tail.start()  # idempotent; normally already started with the runtime
        if not tail.ready.is_set():
            return False
        if tail.failed is not None:
            self.output_lost(f"stage {spec.name}: its state could not be kept up to date: {tail.failed!r}")
        return True

    # ---------------------------------------------------------------- batches
    def process(
        self,
        spec: StageSpec,
        messages: Sequence[tuple[str, int, int, Any, Any]],
        delivery: Deliveries | None = None,
        now_us: int | None = None,
        decoded: Sequence[tuple[str, dict] | Exception] | None = None,
    ) -> int:
        """Run one batch of raw messages (topic, partition, offset, key, value) through the stage and
        produce the outputs and dead letters; returns the number of events produced. Synchronous and
        broker-free apart from produce(), so benchmarks and tests can drive it directly. `decoded`: the
        messages already decoded by the stage's before_batch hook ((name, record) or the decode error)."""
        now_us = time.time_ns() // 1000 if now_us is None else now_us
        if spec.tail is not None and spec.tail.failed is not None:
            self.output_lost(f"stage {spec.name}: its state stopped updating: {spec.tail.failed!r}")
        codec, fn, stage = self.codec, spec.fn, spec.name
        out_topic = self.settings.topic(spec.sink.name)
        key_field, output_type, input_type = spec.key_field, spec.output_type, spec.input_type
        producer = self.producer
        produced = 0
        with spec.lock if spec.lock is not None else nullcontext():
            for i, (topic, partition, offset, key, value) in enumerate(messages):
                try:
                    if decoded is not None:
                        already = decoded[i]
                        if isinstance(already, Exception):
                            raise already
                        name, record = already
                    elif value is None:
                        raise ValueError("message value is null (tombstone)")
                    else:
                        name, record = codec.decode(value)
                except Exception as exc:
                    self._park(topic, partition, offset, key, value, exc, "decode", delivery)
                    continue
                if name in spec.ignored_types:
                    IGNORED.labels(stage, name).inc()
                    continue
                try:
                    if name != input_type:
                        raise ValueError(f"{stage} expects {input_type} on this topic, got {name}")
                    outputs, spec.state = fn(record, spec.state, now_us=now_us)
                    encoded = [(codec.encode(output_type, out), out[key_field]) for out in outputs]
                    for data, out_key in encoded:  # checked before any is produced: the input is parked whole
                        if not fits_in_a_message(out_key, data):
                            raise OutputTooLarge(
                                f"its {output_type} would be {message_bytes(out_key, data)} bytes "
                                "with its key, too large for one Kafka message"
                            )
                except Exception as exc:
                    self._park(topic, partition, offset, key, value, exc, stage, delivery)
                    continue
                for data, out_key in encoded:
                    if delivery is not None:
                        delivery.add()
                    try:
                        producer.produce(out_topic, value=data, key=out_key, on_delivery=delivery)
                    except BufferError:
                        produce_reliably(producer, out_topic, data, key=out_key, on_delivery=delivery)
                produced += len(encoded)
        EVENTS_IN.labels(stage).inc(len(messages))
        EVENTS_OUT.labels(stage).inc(produced)
        return produced

    def _park(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | str | None,
        value: bytes | None,
        exc: Exception,
        stage: str,
        delivery: Deliveries | None,
    ) -> None:
        if delivery is not None:
            delivery.add()
        self.dead_letters.park(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            original=value,
            error=exc,
            stage=stage,
            on_delivery=delivery,
        )

    async def run_batch(self, spec: StageSpec, events: Sequence[Any]) -> None:
        """Process a batch of Faust events and wait until every output is acknowledged by the broker."""
        started = time.perf_counter()
        delivery = Deliveries(asyncio.get_running_loop())
        messages = [
            (e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value) for e in events
        ]
        try:
            self.process(spec, messages, delivery)
        except Exception as exc:  # a bug in the runner itself: never ack what we may not have produced
            log.exception("stage %s failed on a batch", spec.name)
            self.output_lost(f"stage {spec.name} raised {exc!r}")
        delivery.seal()
        await cast("asyncio.Future[None]", delivery.future)  # made with a loop: it has a future
        if delivery.errors:
            self.output_lost(f"{len(delivery.errors)} deliveries failed, first: {delivery.errors[0]}")
        BATCH_SECONDS.labels(spec.name).observe(time.perf_counter() - started)


@dataclass
class Batching:
    size: int = 1000
    within: float = 0.01  # Faust: seconds a batch waits to fill (the confluent loop takes what is fetched)
