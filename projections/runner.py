"""The projection runner: topics -> pure folds -> Postgres, offsets in the same transaction.

One loop on confluent-kafka (via horus.kafka.client):

1. consume a batch (up to `batch_size` messages or `batch_timeout` seconds);
2. decode every message with the codec (a message it refuses is kept, with the reason);
3. fold the batch with the pure folds in `projections.folds` (bad messages become dead_letters
   rows with their exact bytes);
4. in ONE transaction (`projections.writer`, its statements in `projections.sql`): move
   `projection_offsets` forward with a guard, then write every row (event tables: binary COPY
   straight into the table under a savepoint; if a fact is already there or twice in the batch,
   the unique key refuses that COPY and the rows go through a temp staging table + one
   INSERT ... SELECT ... ON CONFLICT instead; config tables always take that way; dead letters:
   `executemany`), then commit. The guard is
   `ON CONFLICT ... DO UPDATE SET next_offset = excluded.next_offset
    WHERE projection_offsets.next_offset < excluded.next_offset RETURNING ...`;
   a partition whose row does not come back was already folded past this batch (a duplicate
   delivery, or a zombie runner after a rebalance), so the whole transaction is rolled back and
   the consumer is re-positioned at the stored offsets.

The conflict rules make the result independent of batch boundaries and arrival order (the copy
of a fact with the lowest Kafka coordinates wins), so live folding and replay give identical
tables. The connection commits with synchronous_commit=off: rows and offsets are lost or kept
together, and anything lost in a server crash is folded again from Kafka.

Where to start reading comes from Postgres, never from Kafka: `on_assign` seeks each partition to
its stored `next_offset` (or the beginning), read by `projections.lag`. Kafka-side commits are made
after the database commit only so that lag dashboards see the group's progress.

Bad input never stops the runner: undecodable messages, wrong record types and values Postgres
would refuse all become dead_letters rows. If the database still rejects a row, the batch is
re-written row by row under savepoints and the offending rows are parked as dead letters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from horus.codec import default_codec
from horus.db.engine import psycopg_conninfo, refuses_a_value
from horus.kafka.client import consumed_at, make_admin, make_consumer, poll_batch
from horus.settings import Settings
from projections.folds import ALL_PROJECTIONS, DEAD_LETTERS_TABLE, FoldResult, Projection, SourceMessage, fold_batch
from projections.lag import TopicPartitionKey, read_offsets, topic_end_offsets
from projections.writer import BatchWriter, StaleBatch

log = logging.getLogger("horus.projections")

# Session-level advisory lock: live runners hold it shared, a replay holds it exclusively, so a
# replay never truncates tables under a running runner.
ADVISORY_LOCK_KEY = 0x686F7275_7350524A  # "horusPRJ"


def group_id(settings: Settings) -> str:
    return f"{settings.app_id}-projections"


# ---------------------------------------------------------------------------------------------
# counters
# ---------------------------------------------------------------------------------------------
@dataclass
class ProjectionStats:
    """Running totals for status views (`horus status`, the demo, benchmarks)."""

    batches: int = 0
    messages: int = 0
    rows_folded: Counter = field(default_factory=Counter)  # rows the folds produced, per table
    rows_written: Counter = field(default_factory=Counter)  # rows that changed a table, per table
    dead_letters: int = 0  # messages parked in dead_letters by this runner (bad input)
    undecodable: int = 0  # of which the codec could not decode
    batches_rejected: int = 0  # duplicate/zombie batches refused by the offset guard
    db_errors: int = 0  # transient database failures survived (reconnects)
    slow_path_batches: int = 0  # batches re-written row by row after the database refused a row
    started_at: float = field(default_factory=time.monotonic)
    busy_seconds: float = 0.0  # time spent decoding, folding and writing (not waiting for Kafka)

    @property
    def rows_per_second(self) -> float:
        """Rows folded per second of busy time (decode + fold + write + commit)."""
        total = sum(self.rows_folded.values())
        return total / self.busy_seconds if self.busy_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "messages": self.messages,
            "rows_folded": dict(self.rows_folded),
            "rows_written": dict(self.rows_written),
            "dead_letters": self.dead_letters,
            "undecodable": self.undecodable,
            "batches_rejected": self.batches_rejected,
            "db_errors": self.db_errors,
            "slow_path_batches": self.slow_path_batches,
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "busy_s": round(self.busy_seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
        }


@dataclass
class BatchResult:
    """What one step did; passed to `on_batch`."""

    messages: int
    rows: dict[str, int]  # rows folded per table
    written: dict[str, int]  # rows that changed each table
    dead_letters: int  # messages parked as dead letters (bad input)
    offsets: dict[TopicPartitionKey, int]  # next offsets committed (empty when rejected)
    rejected: bool
    seconds: float
    stats: ProjectionStats


# ---------------------------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------------------------
def to_source_message(message: Message, decode: Callable[[bytes], tuple[str, dict]]) -> SourceMessage:
    value = message.value()
    ts_type, ts_ms = message.timestamp()
    timestamp_us = ts_ms * 1000 if ts_type != 0 and ts_ms is not None and ts_ms >= 0 else None  # 0: not available
    record_type = record = error = None
    if value is not None:
        try:
            record_type, record = decode(value)
        except Exception as exc:  # noqa: BLE001 - any refusal of the codec parks the message
            error = f"{type(exc).__name__}: {exc}"
    partition, offset = consumed_at(message)
    return SourceMessage(
        topic=cast(str, message.topic()),  # a consumed record has its topic
        partition=partition,
        offset=offset,
        value=value,
        key=message.key(),
        timestamp_us=timestamp_us,
        record_type=record_type,
        record=record,
        error=error,
    )


@dataclass
class _Outcome:
    """What the writer thread did with one batch."""

    status: str  # "ok" | "rejected" | "db_error"
    written: dict[str, int] = field(default_factory=dict)
    parked_by_db: int = 0
    slow_path: bool = False
    error: BaseException | None = None


@dataclass
class _Prepared:
    """A decoded and folded batch, ready to write."""

    folded: FoldResult
    messages: int
    undecodable: int
    offsets: dict[TopicPartitionKey, int]


class ProjectionRunner:
    """Folds the projections' topics into Postgres. Use `run()`, or `start()` + `step()` + `close()`.

    `group=True` joins the consumer group `<app_id>-projections` (live use: several runners share
    the partitions); `group=False` assigns every partition itself without a group (replay).

    Each batch is committed before the next consume(), so nothing is ever in flight during a
    rebalance. (Overlapping the write of batch k with folding batch k+1 on a writer thread was
    measured: no gain on these 2-core machines, where Python, Postgres and the broker already
    share the CPU, so the runner stays single-threaded.)
    """

    def __init__(
        self,
        settings: Settings,
        projections: Sequence[Projection] = ALL_PROJECTIONS,
        *,
        group: bool = True,
        batch_size: int = 1000,
        batch_timeout: float = 0.2,
        take_lock: bool = True,
        durable_commits: bool = False,
        consumer_overrides: Mapping[str, Any] | None = None,
    ):
        self.settings = settings
        self.durable_commits = durable_commits
        self.projections = list(projections)
        self.by_topic: dict[str, Projection] = {settings.topic(p.topic): p for p in self.projections}
        if len(self.by_topic) != len(self.projections):
            raise ValueError("each topic can belong to one projection only")
        self.tables = [t for p in self.projections for t in p.tables if t != DEAD_LETTERS_TABLE] + [DEAD_LETTERS_TABLE]
        self.group = group
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.take_lock = take_lock
        self.consumer_overrides = dict(consumer_overrides or {})
        self.stats = ProjectionStats()
        self.decode = default_codec().decode
        self.consumer: Consumer | None = None
        self.conn: psycopg.Connection | None = None
        self._writer: BatchWriter | None = None
        self._assigned: set[TopicPartitionKey] = set()
        self._next: dict[TopicPartitionKey, int] = {}  # next offset stored in Postgres, per assigned partition
        self._admin_client: AdminClient | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, stop_event: threading.Event | None = None) -> ProjectionRunner:
        self._connect(stop_event)
        if self.group:
            self.consumer = make_consumer(self.settings, group_id(self.settings), **self.consumer_overrides)
            self.consumer.subscribe(
                list(self.by_topic), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
        else:
            self.consumer = make_consumer(self.settings, None, **self.consumer_overrides)
            partitions = [TopicPartition(topic, p) for topic in self.by_topic for p in self._partitions(topic)]
            self._on_assign(self.consumer, partitions)
        return self

    def close(self) -> None:
        """Leave the group and disconnect (every batch is already committed or rolled back)."""
        if self._closed:
            return
        self._closed = True
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.exception("closing the projection consumer failed")
        self._disconnect()
        if self._admin_client is not None:
            self._admin_client = None

    def __enter__(self) -> ProjectionRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self, stop_event: threading.Event | None = None) -> None:
        self.conn = psycopg.connect(
            psycopg_conninfo(self.settings.database_url), autocommit=True, application_name="horus-projections"
        )
        if not self.durable_commits:
            # Safe for projections only: rows and offsets commit together, so a server crash can
            # lose the last few batches *together* and they are simply folded again from Kafka.
            # Saves the WAL flush per batch. (The executor's ledger must never do this.)
            self.conn.execute("SET synchronous_commit = off")
        if self.take_lock:
            waited = 0.0
            lock = "SELECT pg_try_advisory_lock_shared(%s)"
            # a SELECT of one function call answers exactly one row
            while not cast(tuple[bool], self.conn.execute(lock, (ADVISORY_LOCK_KEY,)).fetchone())[0]:
                if stop_event is not None and stop_event.is_set():
                    raise RuntimeError("stopped while waiting for a projection replay to finish")
                if waited == 0.0:
                    log.warning("a projection replay holds the lock; waiting for it to finish")
                time.sleep(0.5)
                waited += 0.5
        self._writer = BatchWriter(self.conn, self.tables)

    def _disconnect(self) -> None:
        if self.conn is not None:
            try:
                if self.take_lock and not self.conn.closed:
                    # explicit: a closed connection's backend may linger a moment holding the lock
                    self.conn.execute("SELECT pg_advisory_unlock_shared(%s)", (ADVISORY_LOCK_KEY,))
            except Exception:  # noqa: BLE001 - closing below releases it anyway
                pass
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None
            self._writer = None

    def _partitions(self, topic: str) -> list[int]:
        metadata = self._admin().list_topics(topic, timeout=10)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaException(
                info.error
                if info is not None
                else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic {topic} does not exist")
            )
        return sorted(info.partitions)

    # -- rebalance callbacks: where to start comes from Postgres -------------------------------
    def _stored(self, partitions: Iterable[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        assert self.conn is not None
        keys = [(self.by_topic[t].name, t, p) for t, p in partitions]
        return {(t, p): offset for (_, t, p), offset in read_offsets(self.conn, keys).items()}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._stored((tp.topic, tp.partition) for tp in partitions)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            tp.offset = stored.get(key, OFFSET_BEGINNING)
            self._assigned.add(key)
            self._next.pop(key, None)
            if key in stored:
                self._next[key] = stored[key]
        consumer.assign(partitions)
        log.info("projections assigned %d partitions (%d with stored offsets)", len(partitions), len(stored))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # every batch is committed before the next consume(), so nothing is in flight here
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._assigned.discard(key)
            self._next.pop(key, None)
        if self.group:
            consumer.unassign()

    def _reposition(self) -> None:
        """Seek every assigned partition to its stored offset (or the beginning)."""
        assert self.consumer is not None
        stored = self._stored(self._assigned)
        for key in sorted(self._assigned):
            self._next.pop(key, None)
            if key in stored:
                self._next[key] = stored[key]
            self._seek(TopicPartition(key[0], key[1], stored.get(key, OFFSET_BEGINNING)))

    def _seek(self, tp: TopicPartition) -> None:
        assert self.consumer is not None
        for attempt in range(50):
            try:
                self.consumer.seek(tp)
                return
            except KafkaException as exc:  # the fetcher may not have started the partition yet
                if attempt == 49:
                    raise
                log.debug("seek %s retry: %s", tp, exc)
                time.sleep(0.1)

    # -- batches ----------------------------------------------------------------------------------
    def poll(self) -> list[Message]:
        assert self.consumer is not None
        try:
            return poll_batch(self.consumer, self.batch_size, self.batch_timeout)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and (
                error.retriable()
                or error.code()
                in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
            ):
                log.warning("kafka: %s (retrying)", error)
                time.sleep(0.5)
                return []
            raise

    def step(self) -> BatchResult | None:
        """Consume one batch, fold it and commit it. None when nothing moved."""
        started = time.perf_counter()
        messages = self.poll()
        polled = time.perf_counter()
        offsets = self._offsets_for(messages)
        if not messages and not offsets:
            return None
        sources = [to_source_message(m, self.decode) for m in messages]
        prepared = _Prepared(
            fold_batch(self.by_topic, sources), len(messages), sum(1 for s in sources if s.error is not None), offsets
        )
        keyed = {(self.by_topic[t].name, t, p): n for (t, p), n in offsets.items()}
        outcome = self._write_job(prepared.folded, keyed)
        result = self._account(prepared, outcome)
        # busy time: everything but waiting in consume() for messages that were not there
        self.stats.busy_seconds += time.perf_counter() - (started if messages else polled)
        result.seconds = time.perf_counter() - started
        return result

    def _write_job(self, folded: FoldResult, offsets: Mapping[tuple[str, str, int], int]) -> _Outcome:
        assert self._writer is not None
        try:
            return _Outcome("ok", self._writer.write(folded, offsets))
        except StaleBatch as exc:
            return _Outcome("rejected", error=exc)
        except psycopg.DatabaseError as exc:
            if not refuses_a_value(exc):  # the connection or the server: reconnect and fold the batch again
                return _Outcome("db_error", error=exc)
            log.warning("the database refused a row (%s); re-writing the batch row by row", exc)
        try:
            written, parked = self._writer.write_row_by_row(folded, offsets)
            return _Outcome("ok", written, parked, slow_path=True)
        except StaleBatch as exc:
            return _Outcome("rejected", error=exc)
        except psycopg.OperationalError as exc:
            return _Outcome("db_error", error=exc)

    def _account(self, batch: _Prepared, outcome: _Outcome) -> BatchResult:
        """Update counters and positions after a write; recover if it failed."""
        folded = batch.folded
        if outcome.status == "ok":
            self._next.update((key, n) for key, n in batch.offsets.items() if key in self._assigned)
            self.stats.batches += 1
            self.stats.messages += batch.messages
            self.stats.rows_folded.update(folded.counts())
            self.stats.rows_written.update(outcome.written)
            self.stats.dead_letters += folded.parked + outcome.parked_by_db
            self.stats.undecodable += batch.undecodable
            self.stats.slow_path_batches += outcome.slow_path
            if self.group and batch.offsets:
                assert self.consumer is not None  # start() made it: a batch was consumed
                try:  # informational only (lag dashboards): Postgres holds the real offsets
                    self.consumer.commit(
                        offsets=[TopicPartition(t, p, n) for (t, p), n in batch.offsets.items()], asynchronous=True
                    )
                except KafkaException as exc:
                    log.debug("kafka offset commit failed: %s", exc)
        elif outcome.status == "rejected":
            self.stats.batches_rejected += 1
            log.warning("projection batch rejected by the offset guard (%s); re-reading stored offsets", outcome.error)
            self._reposition()
        else:
            self.stats.db_errors += 1
            log.warning("database unavailable (%s); reconnecting, then re-reading stored offsets", outcome.error)
            self._reconnect()
            self._reposition()
        ok = outcome.status == "ok"
        return BatchResult(
            messages=batch.messages,
            rows=folded.counts(),
            written=outcome.written,
            dead_letters=folded.parked + outcome.parked_by_db if ok else 0,
            offsets=dict(batch.offsets) if ok else {},
            rejected=not ok,
            seconds=0.0,
            stats=self.stats,
        )

    def _offsets_for(self, messages: list[Message]) -> dict[TopicPartitionKey, int]:
        """Next offset per partition after this batch.

        Partitions with messages always go through the guard (a re-delivered batch must be
        refused). The consumer's position is used when it is past the last message, and alone
        for partitions that only moved past transaction markers or aborted records."""
        assert self.consumer is not None
        last: dict[TopicPartitionKey, int] = {}
        for m in messages:
            partition, offset = consumed_at(m)
            last[(cast(str, m.topic()), partition)] = offset + 1  # a consumed record has its topic
        offsets = dict(last)
        if self._assigned:
            for tp in self.consumer.position([TopicPartition(t, p) for t, p in self._assigned]):
                key = (tp.topic, tp.partition)
                if tp.error is not None or tp.offset < 0:
                    continue
                if key in last:
                    if tp.offset > last[key]:
                        offsets[key] = tp.offset
                elif tp.offset > self._next.get(key, 0):
                    offsets[key] = tp.offset
        return offsets

    def _reconnect(self) -> None:
        self._disconnect()
        delay = 0.5
        while True:
            try:
                self._connect()
                break
            except psycopg.OperationalError as exc:
                log.warning("reconnect failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- progress ---------------------------------------------------------------------------------
    def end_offsets(self) -> dict[TopicPartitionKey, int]:
        """Last stable offset (read_committed end) of every partition of every topic, now."""
        return topic_end_offsets(self.settings, list(self.by_topic), self._admin())

    def _admin(self) -> AdminClient:
        if self._admin_client is None:
            self._admin_client = make_admin(self.settings)
        return self._admin_client

    def progress(self, partitions: Iterable[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Next offset committed to Postgres per partition (ours from memory, others from Postgres)."""
        partitions = list(partitions)
        result = {key: self._next.get(key, 0) for key in partitions if key in self._assigned}
        others = [key for key in partitions if key not in self._assigned]
        if others:
            stored = self._stored(others)
            result.update({key: stored.get(key, 0) for key in others})
        return result

    def caught_up(self, targets: Mapping[TopicPartitionKey, int]) -> bool:
        pending = {key: end for key, end in targets.items() if end > 0}
        if not pending:
            return True
        progress = self.progress(pending)
        return all(progress[key] >= end for key, end in pending.items())

    def run(
        self,
        stop_event: threading.Event | None = None,
        until_caught_up: bool = False,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> ProjectionStats:
        """Fold until `stop_event` is set, or (until_caught_up) every partition reached the end
        offset it had when the run started."""
        stop_event = stop_event or threading.Event()
        if self.consumer is None:
            self.start(stop_event)
        targets = self.end_offsets() if until_caught_up else None
        last_check = 0.0
        while not stop_event.is_set():
            result = self.step()
            if result is not None and on_batch is not None:
                on_batch(result)
            if targets is not None:
                now = time.monotonic()
                # cheap when every partition is ours; otherwise ask Postgres at most once a second
                if result is not None or now - last_check >= 1.0:
                    last_check = now
                    if self.caught_up(targets):
                        break
        return self.stats


def run_projections(
    settings: Settings,
    stop_event: threading.Event | None = None,
    until_caught_up: bool = False,
    on_batch: Callable[[BatchResult], None] | None = None,
    *,
    projections: Sequence[Projection] = ALL_PROJECTIONS,
    batch_size: int = 1000,
    batch_timeout: float = 0.2,
    consumer_overrides: Mapping[str, Any] | None = None,
) -> ProjectionStats:
    """Run the projections in the consumer group `<app_id>-projections` until `stop_event` is set
    or, with `until_caught_up`, until every partition reached its end offset at start. Returns the
    counters (also passed to `on_batch` with each batch as `result.stats`)."""
    runner = ProjectionRunner(
        settings, projections, batch_size=batch_size, batch_timeout=batch_timeout, consumer_overrides=consumer_overrides
    )
    try:
        return runner.run(stop_event, until_caught_up=until_caught_up, on_batch=on_batch)
    finally:
        runner.close()
