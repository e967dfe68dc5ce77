"""Park a message a stage cannot process in `dead.letters`, with its original bytes, and count it.

A dead letter is keyed by the source topic (topic catalogue) and its id is derived from
(source topic, partition, offset, stage), so parking the same message twice (redelivery, a second
worker) gives the same event id and consumers can deduplicate.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Producer
from prometheus_client import Counter

from horus.codec import Codec, default_codec
from horus.domain.events import envelope
from horus.domain.ids import dead_letter_id
from horus.kafka.client import produce_reliably
from horus.settings import Settings
from horus.topics import DEAD_LETTERS

log = logging.getLogger(__name__)

DEAD_LETTERS_TOTAL = Counter("horus_dead_letters_total", "Messages parked in the dead-letter topic", ["stage", "topic"])

MAX_ERROR_CHARS = 4000
# The broker's default message.max.bytes is ~1 MB; keep room for the record around the original.
# A longer original is cut (and says so in `error`); it is still in its source topic at the
# recorded partition and offset.
MAX_ORIGINAL_BYTES = 900_000
# The key is copied too, and a message's key can be as large as its value: a longer one is cut the same way.
# Original + key + error (4,000 characters, at most 16,000 bytes) + envelope stay below one message
# (horus.kafka.client.MESSAGE_MAX_BYTES); real keys (addresses, ids, topic names) are far shorter.
MAX_KEY_BYTES = 64 * 1024


def dead_letter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | str | None,
    original: bytes | None,
    error: str | BaseException,
    stage: str,
    now_us: int | None = None,
) -> dict:
    """The DeadLetter record for one message (occurred_at = when it was parked)."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    error = str(error)[:MAX_ERROR_CHARS]  # cut before the notes below, so a long error never hides them
    if original is None:
        error = f"{error} (message value was null)"
        original = b""
    original = bytes(original)
    if len(original) > MAX_ORIGINAL_BYTES:
        error = f"{error} (original cut from {len(original)} to {MAX_ORIGINAL_BYTES} bytes)"
        original = original[:MAX_ORIGINAL_BYTES]
    if isinstance(key, str):
        key = key.encode("utf-8")
    if key is not None and len(key) > MAX_KEY_BYTES:
        error = f"{error} (key cut from {len(key)} to {MAX_KEY_BYTES} bytes)"
        key = bytes(key[:MAX_KEY_BYTES])
    return {
        "envelope": envelope(
            dead_letter_id(topic, partition, offset, stage), stage, now_us, causation_id=None, produced_at_us=now_us
        ),
        "source_topic": topic,
        "source_partition": int(partition),
        "source_offset": int(offset),
        "key": None if key is None else bytes(key),
        "original": original,
        "error": error,
        "stage": stage,
    }


class DeadLetters:
    """Produces dead letters through a shared producer; the caller flushes it with its own output."""

    def __init__(self, settings: Settings, producer: Producer, codec: Codec | None = None) -> None:
        self.topic = settings.topic(DEAD_LETTERS.name)
        self.producer = producer
        self.codec = codec or default_codec()

    def park(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | str | None,
        original: bytes | None,
        error: str | BaseException,
        stage: str,
        now_us: int | None = None,
        on_delivery=None,
    ) -> dict:
        record = dead_letter_record(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            original=original,
            error=error,
            stage=stage,
            now_us=now_us,
        )
        value = self.codec.encode("DeadLetter", record)
        produce_reliably(self.producer, self.topic, value, key=topic, on_delivery=on_delivery)
        DEAD_LETTERS_TOTAL.labels(stage=stage, topic=topic).inc()
        log.warning("dead letter: %s[%d]@%d stage=%s: %s", topic, partition, offset, stage, record["error"])
        return record
