"""Where the projections stand: the next offsets stored in Postgres, where the topics end, and the lag.

The runner reads its start positions here (`read_offsets`) and its `until_caught_up` targets
(`topic_end_offsets`); status views read `projection_lag`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from confluent_kafka import IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from horus.db.engine import psycopg_conninfo
from horus.kafka.client import make_admin
from horus.settings import Settings
from projections.folds import ALL_PROJECTIONS, Projection

TopicPartitionKey = tuple[str, int]  # (real topic name, partition)


def read_offsets(conn: psycopg.Connection, keys: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str, int], int]:
    """Stored next offsets for (projection, topic, partition) keys that have one."""
    keys = list(keys)
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT o.projection, o.topic, o.partition, o.next_offset FROM projection_offsets o"
        " JOIN unnest(%s::text[], %s::text[], %s::int[]) AS k(projection, topic, partition)"
        " USING (projection, topic, partition)",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
    ).fetchall()
    return {(p, t, part): offset for p, t, part, offset in rows}


def topic_end_offsets(
    settings: Settings, topics: Sequence[str], admin: AdminClient | None = None
) -> dict[TopicPartitionKey, int]:
    """Last stable offset (the read_committed end) of every partition of `topics` (real names).

    Asked through an AdminClient in one request: a consumer's own watermark queries queue behind
    its long-poll fetches (~fetch.wait.max.ms each)."""
    admin = admin or make_admin(settings)
    metadata = admin.list_topics(timeout=10)
    specs = {}
    for topic in topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaException(
                info.error
                if info is not None
                else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic {topic} does not exist")
            )
        for p in info.partitions:
            specs[TopicPartition(topic, p)] = OffsetSpec.latest()
    futures = admin.list_offsets(specs, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=10)
    return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}


def projection_lag(settings: Settings, projections: Sequence[Projection] = ALL_PROJECTIONS) -> list[dict[str, Any]]:
    """Per partition: stored next offset, end offset and lag (for status views)."""
    owner = {settings.topic(p.topic): p.name for p in projections}
    ends = topic_end_offsets(settings, list(owner))
    with psycopg.connect(psycopg_conninfo(settings.database_url), autocommit=True, connect_timeout=5) as conn:
        stored = read_offsets(conn, [(owner[t], t, p) for t, p in ends])
    rows = []
    for (t, p), end in sorted(ends.items()):
        next_offset = stored.get((owner[t], t, p), 0)
        rows.append(
            {
                "projection": owner[t],
                "topic": t,
                "partition": p,
                "next_offset": next_offset,
                "end_offset": end,
                "lag": max(end - next_offset, 0),
            }
        )
    return rows
