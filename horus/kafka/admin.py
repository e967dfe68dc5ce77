"""Create and describe the topic catalogue on a broker."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from horus.kafka.client import make_admin, make_consumer, watermarks
from horus.settings import Settings
from horus.topics import ALL_TOPICS, TopicSpec

# event history is the audit trail: keep it (DESIGN 2d); compaction only for "current state" topics
RETAIN_FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1"}
COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"}


def topic_config(spec: TopicSpec) -> dict[str, str]:
    return dict(COMPACTED if spec.compacted else RETAIN_FOREVER)


def create_topics(settings: Settings, partitions: int | None = None, timeout: float = 30.0) -> dict[str, str]:
    """Create every catalogue topic; returns name -> 'created' | 'exists'. Never changes partition counts."""
    count = partitions or settings.partitions
    new = [
        NewTopic(settings.topic(spec.name), num_partitions=count, replication_factor=1, config=topic_config(spec))
        for spec in ALL_TOPICS
    ]
    return _create(settings, new, timeout)


def create_topics_named(
    settings: Settings, names: list[str], partitions: int | None = None, timeout: float = 30.0
) -> dict[str, str]:
    """Create ad-hoc topics (benchmarks, tests) with the retention of event topics."""
    count = partitions or settings.partitions
    new = [NewTopic(name, num_partitions=count, replication_factor=1, config=dict(RETAIN_FOREVER)) for name in names]
    return _create(settings, new, timeout)


def _create(settings: Settings, new: list[NewTopic], timeout: float) -> dict[str, str]:
    admin = make_admin(settings)
    outcome = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout)
            outcome[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[name] = "exists"
    wait_for_leaders(settings, list(outcome), timeout)
    return outcome


def wait_for_leaders(settings: Settings, names: list[str], timeout: float = 30.0) -> None:
    """A new topic answers NOT_LEADER until its partitions have leaders; wait for that."""
    admin = make_admin(settings)
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout)
        pending = [
            name
            for name in names
            if name not in metadata.topics
            or metadata.topics[name].error is not None
            or any(p.leader < 0 for p in metadata.topics[name].partitions.values())
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"no partition leaders yet for {pending}"))
        time.sleep(0.1)


def delete_topics_with_prefix(settings: Settings, prefix: str, timeout: float = 30.0) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a test session's or a demo run's)."""
    if not prefix:
        raise ValueError("refusing to delete every topic: give a non-empty prefix")
    names = [name for name in make_admin(settings).list_topics(timeout=timeout).topics if name.startswith(prefix)]
    delete_topics(settings, names, timeout)
    return names


def delete_topics(settings: Settings, names: list[str], timeout: float = 30.0) -> None:
    if not names:
        return
    admin = make_admin(settings)  # keep a reference: a collected client fails its futures
    for future in admin.delete_topics(names, request_timeout=timeout).values():
        future.result(timeout)


@dataclass
class TopicInfo:
    name: str
    partitions: int
    end_offsets: int  # messages ever written (sum of high watermarks)
    cleanup_policy: str


def describe_topics(settings: Settings, timeout: float = 10.0) -> list[TopicInfo]:
    consumer = make_consumer(settings)
    try:
        metadata = consumer.list_topics(timeout=timeout)
        infos = []
        for spec in ALL_TOPICS:
            name = settings.topic(spec.name)
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                infos.append(TopicInfo(name, 0, 0, "missing"))
                continue
            total = sum(watermarks(consumer, name, p, timeout)[1] for p in topic.partitions)
            infos.append(TopicInfo(name, len(topic.partitions), total, topic_config(spec)["cleanup.policy"]))
        return infos
    finally:
        consumer.close()
