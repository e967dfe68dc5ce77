"""Partition state kept in Postgres: a stage whose state belongs to its input partitions (decide) rebuilds it
from its own output topics when a partition is assigned, and starts from a snapshot of that state when there is
one. A snapshot names the exact offsets of the topics it covers, so the rebuild folds only what followed.

`SnapshotStore` writes them (one row per consumer group and partition, sealed with a MAC, on a thread of its own
so a slow database never stalls the stage) and reads them back; `read_to_end` folds topics' partitions from
given offsets to their current ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from prometheus_client import Counter, Gauge
from psycopg.rows import TupleRow

from horus.db.engine import psycopg_conninfo
from horus.domain.decide import FollowerBook
from horus.domain.decide_snapshot import FORMAT, SnapshotPlace, encode_books, mac_key, open_sealed, seal
from horus.kafka.client import consumed_at, make_consumer, poll_batch, watermarks
from horus.topics import COPY_DECISIONS

log = logging.getLogger("horus.streams.decide")

SNAPSHOTS = Counter(
    "horus_decide_snapshots_total",
    "Partition snapshots of decide's state, by outcome "
    "(written, failed: the next rebuild folds more history; refused: a stored snapshot that is not "
    "authentic or not valid, the whole history folded instead)",
    ["outcome"],
)
SNAPSHOT_BYTES = Gauge("horus_decide_snapshot_bytes", "Size of the last snapshot written")


@dataclass
class PartitionSnapshot:
    """A partition's books at a consistent moment (between batches): every decision on copy.decisions below
    `decisions_offset` and every result on execution.results below `results_offset` is folded into them."""

    partition: int
    decisions_offset: int
    results_offset: int
    taken_at: datetime
    books: dict[str, tuple[FollowerBook, list]]  # follower -> (independent copy, its dedup window)


def snapshot_mac_key(settings) -> bytes | None:
    """The key decide's snapshots are sealed with: derived from HORUS_SNAPSHOT_KEY, else from
    HORUS_CREDENTIALS_KEY (decide reads balances with it anyway; rotating it makes old snapshots refused once);
    None if neither is set."""
    if settings.snapshot_key is not None and settings.snapshot_key.get_secret_value():
        return mac_key(settings.snapshot_key.get_secret_value().encode())
    if settings.credentials_key is not None and settings.credentials_key.get_secret_value().strip():
        from horus.credentials import load_key

        return mac_key(load_key(settings))
    return None


class SnapshotStore:
    """Postgres `decide_snapshots`, one row per (consumer group, partition). Written by a thread of its own,
    the newest snapshot per partition replacing one still queued, so a slow or unreachable database never
    stalls deciding (bench/decide_rebuild.py: encoding + writing a 100k-decision partition takes ~80 ms).
    Every row is sealed (horus.domain.decide_snapshot.seal) with a key derived from a configured secret, and
    opened only if authentic for its place."""

    @classmethod
    def configured(cls, settings) -> SnapshotStore | None:
        """The store, or None (and a warning) when no secret to seal snapshots with is configured."""
        key = snapshot_mac_key(settings)
        if key is None:
            log.warning(
                "decide: snapshots are off: they are authenticated with a key derived from "
                "HORUS_SNAPSHOT_KEY or HORUS_CREDENTIALS_KEY and neither is set; every assign folds the "
                "whole history"
            )
            return None
        return cls(settings, key)

    def __init__(self, settings, key: bytes) -> None:
        self.key = key
        self.conninfo = psycopg_conninfo(settings.database_url)
        self.group, self.topic = settings.app_id, settings.topic(COPY_DECISIONS.name)
        self.pending: dict[int, PartitionSnapshot] = {}
        self.writing = False
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None
        self.conn: psycopg.Connection[TupleRow] | None = None
        self.closed = False

    def place(self, partition: int, decisions_offset: int, results_offset: int) -> SnapshotPlace:
        return SnapshotPlace(self.group, self.topic, partition, decisions_offset, results_offset)

    def open(self, partition: int, decisions_offset: int, results_offset: int, blob: bytes) -> bytes:
        """The state of a row read by `load`; SnapshotInvalid if the row is not what this group sealed there."""
        return open_sealed(blob, self.key, self.place(partition, decisions_offset, results_offset))

    def load(self, partitions: list[int]) -> dict[int, tuple[int, int, bytes]]:
        """partition -> (decisions_offset, results_offset, sealed state) of the snapshots this group has."""
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT partition, decisions_offset, results_offset, state FROM decide_snapshots"
                " WHERE group_id = %s AND topic = %s AND format = %s AND partition = ANY(%s)",
                (self.group, self.topic, FORMAT, list(partitions)),
            ).fetchall()
        return {p: (decisions, results, bytes(state)) for p, decisions, results, state in rows}

    def save(self, snapshot: PartitionSnapshot) -> None:
        with self.changed:
            if self.closed:
                return
            self.pending[snapshot.partition] = snapshot
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="horus-decide-snapshots", daemon=True)
                self.thread.start()
            self.changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Until every queued snapshot is written (or failed); False if that took longer than `timeout`."""
        with self.changed:
            return self.changed.wait_for(lambda: not self.pending and not self.writing, timeout)

    def close(self, timeout: float = 10.0) -> None:
        if not self.flush(timeout):
            log.warning("decide: %d snapshots not written at shutdown", len(self.pending))
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.pending or self.closed)
                if self.closed:
                    break
                snapshot = self.pending.pop(next(iter(self.pending)))
                self.writing = True
            try:
                self._write(snapshot)
            except Exception as exc:  # never stops deciding: the next rebuild just folds more history
                SNAPSHOTS.labels("failed").inc()
                log.warning("decide: snapshot of partition %d not written: %s", snapshot.partition, exc)
                self._disconnect()
            finally:
                with self.changed:
                    self.writing = False
                    self.changed.notify_all()
        self._disconnect()

    def _write(self, snapshot: PartitionSnapshot) -> None:
        started = time.monotonic()
        state = seal(
            encode_books(snapshot.books),
            self.key,
            self.place(snapshot.partition, snapshot.decisions_offset, snapshot.results_offset),
        )
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
        self.conn.execute(
            "INSERT INTO decide_snapshots (group_id, partition, topic, decisions_offset, results_offset, format,"
            " taken_at, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (group_id, partition) DO UPDATE"
            " SET topic = excluded.topic, decisions_offset = excluded.decisions_offset,"
            " results_offset = excluded.results_offset, format = excluded.format, taken_at = excluded.taken_at,"
            " state = excluded.state",
            (
                self.group,
                snapshot.partition,
                self.topic,
                snapshot.decisions_offset,
                snapshot.results_offset,
                FORMAT,
                snapshot.taken_at,
                state,
            ),
        )
        SNAPSHOTS.labels("written").inc()
        SNAPSHOT_BYTES.set(len(state))
        log.debug(
            "decide: snapshot of partition %d (%d followers, decisions@%d, results@%d): %d bytes in %.0f ms",
            snapshot.partition,
            len(snapshot.books),
            snapshot.decisions_offset,
            snapshot.results_offset,
            len(state),
            (time.monotonic() - started) * 1000,
        )

    def _disconnect(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # pragma: no cover - already broken
                pass
            self.conn = None


class HistoryReader:
    """Reads a stage's own topics' partitions to their current ends, for a rebuild."""

    def __init__(self, settings) -> None:
        # a fetch waits up to fetch.wait.max.ms at the end of one topic before the next can be fetched
        self.consumer = make_consumer(settings, None, **{"fetch.wait.max.ms": 10})

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *exc) -> None:
        self.consumer.close()

    def ends(self, topics: list[str], partitions: list[int]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the offset after its last message now."""
        return {(topic, p): watermarks(self.consumer, topic, p)[1] for topic in topics for p in partitions}

    def read(
        self,
        topic: str,
        partitions: list[int],
        starts: dict[tuple[str, int], int],
        ends: dict[tuple[str, int], int],
        fold: Callable[[object, int], None],
    ) -> None:
        """fold(message, partition) for every message of `topic`'s partitions from `starts` (default: the
        beginning) up to `ends`."""
        todo = {p for p in partitions if ends[(topic, p)] > starts.get((topic, p), 0)}
        # consume() waits for the full count or its timeout: ask for no more than is left (exact unless a
        # partition's log no longer starts at 0), so a short tail costs no second
        left = sum(ends[(topic, p)] - starts.get((topic, p), 0) for p in todo)
        self.consumer.assign([TopicPartition(topic, p, starts.get((topic, p), OFFSET_BEGINNING)) for p in todo])
        while todo:
            for message in poll_batch(self.consumer, max(1, min(5000, left)), 1.0):
                left -= 1
                p, offset = consumed_at(message)
                if p in todo and offset < ends[(topic, p)]:
                    fold(message, p)
                if offset + 1 >= ends[(topic, p)]:
                    todo.discard(p)
