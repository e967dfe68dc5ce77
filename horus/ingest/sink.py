"""FillSink: produce each leader.fills event exactly once by event id, across sources, processes and crashes.

``emit(records)``:

1. claim: one Postgres transaction ``INSERT INTO leader_fill_claims ... ON CONFLICT DO NOTHING RETURNING
   event_id`` (status ``pending``, with the encoded event), committed. Only the winners go on; the rest were
   already produced (or are being produced) by someone else and count as duplicates suppressed.
2. produce the winners to leader.fills keyed by leader (idempotent producer) and flush; raise if any was
   not delivered (the claims stay pending and ``recover`` repairs them).
3. mark them ``produced``.

``recover()`` (at start and on every reconnect): a crash between 1 and 3 leaves pending claims of this
source. Each is looked up in leader.fills (scanned from the broker offset at ``claimed_at - margin``);
the ones found are marked produced, the missing ones re-produced from the stored bytes, then marked.
One process per source name is assumed (two processes with the same source would repair each other's
in-flight claims).

A record the sink cannot produce -- dated beyond the clock slack ahead of now (:mod:`horus.domain.clock`),
or with a value its schema cannot hold (e.g. a sum beyond 2^63-1) -- is refused before the claim: parked in
dead.letters with its JSON form (topic ``ingest:<source>``, offset derived from the event id, so seeing it
again parks it under the same id), counted, and never produced; the rest of the batch goes on. This is the
last gate every source passes (chain block times, Data API rows, replay files).

``retract(...)``: a reorg removed a log of a fill already produced: a LeaderFillRetracted event (its own
deterministic id, claimed the same way) and an ERROR log line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from confluent_kafka import KafkaException, Producer, TopicPartition
from prometheus_client import Counter
from sqlalchemy import select, text, update

from horus.codec import Codec, default_codec
from horus.db.engine import make_engine
from horus.db.models import LeaderFillClaim
from horus.domain.clock import future_detail, in_future
from horus.domain.events import envelope
from horus.domain.ids import make_id
from horus.kafka.client import (
    consumed_at,
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
    produce_reliably,
    watermarks,
)
from horus.kafka.dead_letter import DeadLetters
from horus.settings import Settings
from horus.topics import LEADER_FILLS

log = logging.getLogger("horus.ingest.sink")

FILLS_TOTAL = Counter("horus_ingest_fills_total", "LeaderFill events produced to leader.fills", ["source"])
DUPLICATES_TOTAL = Counter(
    "horus_ingest_duplicates_suppressed_total",
    "Events not produced because their event id was already claimed",
    ["source"],
)
RETRACTIONS_TOTAL = Counter(
    "horus_ingest_retractions_total", "LeaderFillRetracted events produced (reorged fills)", ["source"]
)
RECOVERED_TOTAL = Counter(
    "horus_ingest_recovered_claims_total", "Pending claims repaired at start, by outcome", ["source", "outcome"]
)

REFUSED_TOTAL = Counter(
    "horus_ingest_refused_total",
    "Records parked in dead.letters instead of produced "
    "(future: dated beyond the clock slack; unencodable: a value the schema cannot hold)",
    ["source", "reason"],
)

RECOVER_MARGIN = timedelta(seconds=60)


# One constant statement for any batch size (a multi-row VALUES is compiled anew per batch and cost
# more than Postgres and Kafka together: bench/ingest.py); only the winners of the race come back.
CLAIM = text("""
    INSERT INTO leader_fill_claims (event_id, source, status, event_type, key, payload)
    SELECT u.event_id, :source, 'pending', u.event_type, u.key, u.payload
    FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]), CAST(:keys AS text[]), CAST(:payloads AS bytea[]))
         AS u(event_id, event_type, key, payload)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id""")


class FutureFill(ValueError):
    """A fill dated beyond the clock slack ahead of now."""


def refused_offset(event_id: str) -> int:
    """The dead-letter "offset" of a refused record: stable per event id (60 bits of its hash)."""
    return int(make_id("ingest-refused", event_id)[:15], 16)


def retraction_id(leader_fill_id: str, block_hash: str | None) -> str:
    """One retraction per (fill, removed block)."""
    return make_id("fill-retracted", leader_fill_id, (block_hash or "").lower())


class FillSink:
    def __init__(
        self, settings: Settings, source: str, producer: Producer | None = None, codec: Codec | None = None
    ) -> None:
        self.settings = settings
        self.source = source
        self.codec = codec or default_codec()
        self.producer = producer or make_producer(settings, **{"linger.ms": 1})
        self.topic = settings.topic(LEADER_FILLS.name)
        self.engine = make_engine(settings)
        self.dead_letters = DeadLetters(settings, self.producer, self.codec)
        self.refused = 0  # records parked instead of produced, since this sink was made

    # ------------------------------------------------------------------ emit
    def emit(self, records: Iterable[dict]) -> list[str]:
        """Produce the LeaderFill records not claimed before; returns the event ids produced."""
        items = [(r["envelope"]["event_id"], r["leader"], "LeaderFill", r) for r in records]
        produced = self._emit(items)
        FILLS_TOTAL.labels(self.source).inc(len(produced))
        return produced

    def retract(
        self, leader_fill_id: str, leader: str, tx_hash: str, block_number: int, block_hash: str | None, reason: str
    ) -> bool:
        """Produce a LeaderFillRetracted for a fill whose log was removed (once per fill and block)."""
        now_us = time.time_ns() // 1000
        record: dict[str, Any] = {
            "envelope": envelope(
                retraction_id(leader_fill_id, block_hash),
                self.source,
                now_us,
                causation_id=leader_fill_id,
                produced_at_us=now_us,
            ),
            "leader_fill_id": leader_fill_id,
            "leader": leader,
            "tx_hash": tx_hash,
            "block_number": int(block_number),
            "reason": reason,
        }
        produced = self._emit([(record["envelope"]["event_id"], leader, "LeaderFillRetracted", record)])
        if produced:
            RETRACTIONS_TOTAL.labels(self.source).inc()
            log.error(
                "REORG: retracted leader fill %s (leader %s, tx %s, block %d): %s",
                leader_fill_id,
                leader,
                tx_hash,
                block_number,
                reason,
            )
        return bool(produced)

    def is_claimed(self, event_id: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(LeaderFillClaim.event_id).where(LeaderFillClaim.event_id == event_id)).first()
                is not None
            )

    def flush(self) -> None:
        """Deliver everything produced so far (dead letters included) or raise."""
        flush_or_raise(self.producer)

    def _emit(self, items: list[tuple[str, str, str, dict]]) -> list[str]:
        unique: dict[str, tuple[str, str, bytes]] = {}
        refused: set[str] = set()
        now_us = time.time_ns() // 1000
        for event_id, key, type_name, record in items:
            if event_id in unique or event_id in refused:
                continue
            try:
                if type_name == "LeaderFill" and in_future(record["envelope"]["occurred_at_us"], now_us):
                    raise FutureFill(future_detail(record["envelope"]["occurred_at_us"], now_us))
                unique[event_id] = (key, type_name, self.codec.encode(type_name, record))
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
                refused.add(event_id)
                self._refuse(event_id, key, record, exc)
        if not unique:
            self.flush()
            return []
        with self.engine.begin() as conn:
            won = set(
                conn.execute(
                    CLAIM,
                    {
                        "source": self.source,
                        "ids": list(unique),
                        "types": [t for _, t, _ in unique.values()],
                        "keys": [k for k, _, _ in unique.values()],
                        "payloads": [v for _, _, v in unique.values()],
                    },
                ).scalars()
            )
        duplicates = len(items) - len(won) - len(refused)
        if duplicates:
            DUPLICATES_TOTAL.labels(self.source).inc(duplicates)
        winners = [eid for eid in unique if eid in won]
        self._produce([(eid, unique[eid][0], unique[eid][2]) for eid in winners])
        self._mark(winners)
        return winners

    def _refuse(self, event_id: str, key: str, record: dict, error: Exception) -> None:
        reason = "future" if isinstance(error, FutureFill) else "unencodable"
        REFUSED_TOTAL.labels(self.source, reason).inc()
        self.refused += 1
        self.dead_letters.park(
            topic=f"ingest:{self.source}",
            partition=0,
            offset=refused_offset(str(event_id)),
            key=key if isinstance(key, (str, bytes)) else str(key),
            original=json.dumps(record, sort_keys=True, default=str).encode("utf-8"),
            error=f"not produced ({reason}): {type(error).__name__}: {error}",
            stage=f"ingest-{self.source}",
        )

    def _produce(self, items: list[tuple[str, str, bytes]]) -> None:
        failures: list[str] = []

        def delivered(err, msg) -> None:
            if err is not None:
                failures.append(str(err))

        for _, key, value in items:
            produce_reliably(self.producer, self.topic, value, key=key, on_delivery=delivered)
        self.flush()
        if failures:
            raise KafkaException(f"{len(failures)} leader.fills messages not delivered: {failures[0]}")

    def _mark(self, event_ids: list[str]) -> None:
        if not event_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(LeaderFillClaim)
                .where(LeaderFillClaim.event_id.in_(event_ids))
                .values(status="produced", produced_at=datetime.now(UTC))
            )

    # ------------------------------------------------------------------ recover
    def recover(self) -> dict[str, int]:
        """Repair this source's pending claims; returns {"found": n, "reproduced": m}."""
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(
                    LeaderFillClaim.event_id, LeaderFillClaim.key, LeaderFillClaim.payload, LeaderFillClaim.claimed_at
                ).where(LeaderFillClaim.source == self.source, LeaderFillClaim.status == "pending")
            ).all()
        if not pending:
            return {"found": 0, "reproduced": 0}
        since = min(row.claimed_at for row in pending) - RECOVER_MARGIN
        found = self._present_in_topic({row.event_id for row in pending}, since)
        missing = [(row.event_id, row.key, bytes(row.payload)) for row in pending if row.event_id not in found]
        self._produce(missing)
        self._mark([row.event_id for row in pending])
        RECOVERED_TOTAL.labels(self.source, "found").inc(len(found))
        RECOVERED_TOTAL.labels(self.source, "reproduced").inc(len(missing))
        log.warning(
            "recovered %d pending claims of %s: %d already in %s, %d produced again",
            len(pending),
            self.source,
            len(found),
            self.topic,
            len(missing),
        )
        return {"found": len(found), "reproduced": len(missing)}

    def _present_in_topic(self, wanted: set[str], since: datetime) -> set[str]:
        consumer = make_consumer(self.settings, None)
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            stamp_ms = int(since.timestamp() * 1000)
            starts = consumer.offsets_for_times(
                [TopicPartition(self.topic, p, stamp_ms) for p in partitions], timeout=10
            )
            ends: dict[int, int] = {}
            assignment = []
            for tp in starts:
                low, high = watermarks(consumer, self.topic, tp.partition)
                start = high if tp.offset < 0 else max(tp.offset, low)
                if start < high:
                    ends[tp.partition] = high
                    assignment.append(TopicPartition(self.topic, tp.partition, start))
            found: set[str] = set()
            if not assignment:
                return found
            consumer.assign(assignment)
            deadline = time.monotonic() + 60
            while ends and time.monotonic() < deadline:
                for message in poll_batch(consumer, 1000, 0.5):
                    try:
                        # leader.fills holds no tombstones (a None would fail in decode, like any other stranger)
                        _, record = self.codec.decode(cast(bytes, message.value()))
                        event_id = record["envelope"]["event_id"]
                    except Exception:  # noqa: BLE001 - not ours to judge here
                        event_id = None
                    if event_id in wanted:
                        found.add(event_id)
                    partition, offset = consumed_at(message)
                    if offset + 1 >= ends.get(partition, 0):
                        ends.pop(partition, None)
            if ends:
                raise TimeoutError(f"could not read {self.topic} to its end to recover pending claims")
            return found
        finally:
            consumer.close()
