"""Fold a whole compacted topic (config.changes, control.commands) into a state, in a background thread, with the
fold functions the caller gives (the follow graph's for plan and the sources, decide's and the executor's config
and control folds): this module knows the topic, not the state.

Fills are partitioned by leader and follows are not, so every reader of the follow graph (each plan
instance, each ingest source) folds the WHOLE topic (all partitions, outside any consumer group): at
start it reads from the beginning to the end (partition EOF) and sets ``ready``, then it keeps tailing.
Every state update takes ``lock``; readers take it too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from horus.codec import Codec
from horus.kafka.client import assign_from_beginning, make_consumer
from horus.kafka.dead_letter import DeadLetters
from horus.settings import Settings
from horus.topics import CONFIG_CHANGES, TopicSpec

log = logging.getLogger("horus.config_tail")
ASSIGN_WAIT_S = 60.0


class ConfigTail:
    """Folds a compacted topic (config.changes unless told) into ``state`` with ``apply`` (a record) and
    ``tombstone`` (a null value's key), in a daemon thread (see module doc).

    A change that cannot be applied is parked in ``dead_letters`` with stage ``stage`` when given
    (every instance parks it under the same deterministic id), else logged and skipped.
    ``on_change`` (optional) is called, under the lock, after each batch that changed something."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        state: Any,
        lock: threading.Lock,
        *,
        apply: Callable[[dict, Any], Any],
        tombstone: Callable[[Any, Any], Any],
        dead_letters: DeadLetters | None = None,
        stage: str = "config",
        on_change: Callable[[], None] | None = None,
        topic: TopicSpec = CONFIG_CHANGES,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.state = state
        self._fold, self._tombstone = apply, tombstone
        self.lock = lock
        self.dead_letters = dead_letters
        self.stage = stage
        self.on_change = on_change
        self.topic = settings.topic(topic.name)
        self.record_type = topic.event_type
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.applied = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"horus-tail-{self.topic}", daemon=True)
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
                waiting = {tp.partition for tp in self._assign(consumer)}
                while waiting and not self._stop.is_set():
                    self._apply(consumer.consume(1000, 0.2), waiting)
                log.info(
                    "%s rebuilt from %s: %d changes in %.2fs",
                    type(self.state).__name__,
                    self.topic,
                    self.applied,
                    time.monotonic() - started,
                )
                self.ready.set()
                while not self._stop.is_set():
                    self._apply(consumer.consume(1000, 0.1), None)
            finally:
                consumer.close()
        except BaseException as exc:  # noqa: BLE001 - surfaced through .failed to the owner, which stops
            log.exception("config tail failed")
            self.failed = exc
            self.ready.set()

    def _assign(self, consumer) -> list:
        """Every partition from the beginning. A broker that is restarting answers no metadata for a few seconds:
        waited for (up to ASSIGN_WAIT_S), rather than failing the owner, which would exit and restart the same way."""
        deadline = time.monotonic() + ASSIGN_WAIT_S
        while True:
            try:
                return assign_from_beginning(consumer, [self.topic])
            except KafkaException as exc:
                if self._stop.is_set() or time.monotonic() > deadline or exc.args[0].fatal():
                    raise
                log.warning("%s: no metadata yet (%s); retrying", self.topic, exc.args[0].str())
                self._stop.wait(1.0)

    def _apply(self, messages: list, waiting: set | None) -> None:
        if not messages:
            return
        codec = self.codec
        changed = False
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
                        self._tombstone(message.key(), self.state)
                    else:
                        name, record = codec.decode(value)
                        if name != self.record_type:
                            raise ValueError(f"expected {self.record_type} on {self.topic}, got {name}")
                        self._fold(record, self.state)
                    self.applied += 1
                    changed = True
                except Exception as exc:
                    if self.dead_letters is None:
                        log.warning(
                            "config change %s[%d]@%d skipped: %s",
                            message.topic(),
                            message.partition(),
                            message.offset(),
                            exc,
                        )
                        continue
                    self.dead_letters.park(
                        topic=message.topic(),
                        partition=message.partition(),
                        offset=message.offset(),
                        key=message.key(),
                        original=value,
                        error=exc,
                        stage=self.stage,
                    )
            if changed and self.on_change is not None:
                self.on_change()


class ReadyAll:
    """Several tails as one: ready once every tail has read its topic to the end, failed if any failed. Quacks
    like a tail's `ready` event for the stage runtime (StageSpec.tail)."""

    def __init__(self, *tails: ConfigTail) -> None:
        self.tails = tails

    def start(self) -> None:
        for tail in self.tails:
            tail.start()

    @property
    def failed(self):
        return next((t.failed for t in self.tails if t.failed is not None), None)

    @property
    def ready(self):
        return self

    def is_set(self) -> bool:
        return all(t.ready.is_set() for t in self.tails)
