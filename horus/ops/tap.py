"""The debugging tap: read a topic without joining a group or committing, decode Avro to JSON lines."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_END, TopicPartition

from horus.codec import CodecError, default_codec
from horus.kafka.client import consumed_at, make_consumer, poll_batch, watermarks
from horus.settings import Settings
from horus.topics import ALL_TOPICS


@dataclass
class TapOptions:
    from_beginning: bool = False
    key: str | None = None
    grep: str | None = None
    limit: int | None = None
    follow: bool = False
    idle_exit_s: float = 10.0  # without --follow: give up if the end offsets seen at start never arrive


def resolve_topic(settings: Settings, name: str) -> str:
    """A catalogue name gets the configured prefix; any other name is used as given."""
    return settings.topic(name) if name in {spec.name for spec in ALL_TOPICS} else name


def _jsonable(value):
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def render(message) -> dict:
    key = message.key()
    line = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp_ms": message.timestamp()[1],
        "key": key.decode(errors="replace") if key is not None else None,
    }
    try:
        event_type, record = default_codec().decode(message.value())
        line.update(type=event_type, value=_jsonable(record))
    except CodecError as exc:
        line.update(type=None, error=str(exc), raw=_jsonable(message.value() or b""))
    return line


def tap(settings: Settings, topic_name: str, options: TapOptions) -> Iterator[dict]:
    topic = resolve_topic(settings, topic_name)
    consumer = make_consumer(settings)
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            raise ValueError(f"topic {topic!r} does not exist; `horus topics list` shows the topics")
        partitions = sorted(metadata.topics[topic].partitions)
        ends = {p: watermarks(consumer, topic, p) for p in partitions}
        if options.from_beginning:
            consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in partitions])
            remaining = {p for p in partitions if ends[p][1] > ends[p][0]}
        else:
            consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
            remaining = set()
        if not options.follow and not remaining:
            return
        shown = 0
        last_message = time.monotonic()
        while True:
            batch = poll_batch(consumer, 500, 0.2)
            for message in batch:
                last_message = time.monotonic()
                partition, offset = consumed_at(message)
                if offset + 1 >= ends[partition][1]:
                    remaining.discard(partition)
                if options.key is not None and (message.key() or b"").decode(errors="replace") != options.key:
                    continue
                line = render(message)
                if options.grep and options.grep not in json.dumps(line):
                    continue
                yield line
                shown += 1
                if options.limit is not None and shown >= options.limit:
                    return
            if not options.follow and (not remaining or time.monotonic() - last_message > options.idle_exit_s):
                return
    finally:
        consumer.close()
