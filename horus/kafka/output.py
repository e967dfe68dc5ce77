"""A process's output to Kafka: the ONE confluent-kafka producer every stage and service of a worker process writes
through (murmur2_random, idempotent: see horus.kafka.client), a thread that serves its delivery reports, and the
dead-letter sink. The stage runtime (streams/runtime.py) and the executor service (horus/execution/service.py)
both produce through one.

If the producer reports a message as undeliverable, the process cannot keep its promise: it exits at once (exit
code 70) *without* committing, and the restarted worker reprocesses from the last committed offset. Raising
instead would let a consumer's commit machinery move past the lost output.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from confluent_kafka import KafkaError, Producer

from horus.codec import Codec, default_codec
from horus.kafka.client import make_producer
from horus.kafka.dead_letter import DeadLetters
from horus.settings import Settings

log = logging.getLogger("horus.streams")

EXIT_OUTPUT_LOST = 70  # EX_SOFTWARE: the process is restarted and reprocesses what it did not commit


class OutputLost(RuntimeError):
    pass


class Output:
    """Producer, its poll thread, codec and dead letters of one process."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec | None = None,
        producer: Producer | None = None,
        exit_on_output_lost: bool = True,
    ) -> None:
        self.settings = settings
        self.codec = codec or default_codec()
        self.producer = producer or make_producer(
            settings, **{"linger.ms": 2, "error_cb": self._on_producer_error, "message.timeout.ms": 120_000}
        )
        self.dead_letters = DeadLetters(settings, self.producer, self.codec)
        self.exit_on_output_lost = exit_on_output_lost
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._closed = False
        self.on_start: list[Callable[[], None]] = []
        self.extra_stop: list[Callable[[], None]] = []

    def start(self) -> None:
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, name="horus-producer-poll", daemon=True)
            self._poller.start()
            for start in self.on_start:
                start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        for stop in self.extra_stop:
            try:
                stop()
            except Exception:  # pragma: no cover - best effort on shutdown
                log.exception("error stopping %r", stop)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(5)
        remaining = self.producer.flush(timeout)
        if remaining:
            log.error("%d produced messages were not delivered at shutdown", remaining)

    def _on_producer_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.output_lost(f"fatal producer error: {err}")
        else:
            log.warning("producer: %s", err)

    def output_lost(self, why: str) -> None:
        log.critical(
            "output could not be delivered (%s); exiting without committing so the input is reprocessed after restart",
            why,
        )
        if self.exit_on_output_lost:
            logging.shutdown()
            os._exit(EXIT_OUTPUT_LOST)
        raise OutputLost(why)
