"""decide stage: copy.candidates -> copy.decisions, one follower strictly in order (partition = follower).

The pure `horus.domain.decide.decide` sees a view (a StaticView) the runner fills before each batch:
- configs and control switches: the WHOLE compacted config.changes and control.commands topics, folded
  by two tails (every instance honours a pause as soon as it reads it: ~0.1 s);
- market rules (MarketMetadata), order-book quotes (QuoteSource, TTL <= 5 s) and follower balances
  (VenueBalances or FixedBalances), fetched concurrently for the batch on an asyncio thread, each with one
  request in flight per key.

State (reservations, positions, daily spend) is rebuilt when a partition is assigned: its history on
copy.decisions (our own output: `apply_decision`) and execution.results (`apply_result`), read up to the
end; afterwards the results partition is tailed before each batch. The outputs of a batch are flushed
and its offsets committed before the next poll, so a partition that moves to another instance carries
every decision made for it, and the new owner's rebuild sees them all (it also recognises a redelivered
candidate as already decided). A failure rate of executions above the breaker threshold produces a
global PAUSE on control.commands (issued_by "circuit-breaker") for every instance.

The topics are kept forever, so the rebuild starts from a snapshot when there is one: after a commit,
every `decide_snapshot_every` decisions or `decide_snapshot_interval_s`, and on revoke, a partition's books
are copied (horus.domain.decide_snapshot) and written to Postgres `decide_snapshots` by a thread of its own,
with the exact offsets they cover: the copy.decisions offset after this stage's last delivered decision (from
the delivery reports) and the execution.results offset the results tail has folded. The next owner (any
instance of the same consumer group) restores them and folds only what followed. Rows are sealed with a MAC
(key from HORUS_SNAPSHOT_KEY or HORUS_CREDENTIALS_KEY; neither: no snapshots) and their values checked, so a
row altered in Postgres is refused (horus.domain.decide_snapshot). A missing, refused or failed snapshot only
costs time: the whole history is the fallback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TopicPartition
from prometheus_client import Counter, Gauge

from horus.domain.breaker import BreakerPolicy, breaker_command
from horus.domain.clock import CLOCK_SLACK_S  # the slack FILL_IN_FUTURE allows: the dedup window keeps this much more
from horus.domain.config import ConfigState, apply_config, apply_config_tombstone
from horus.domain.control import ControlState, apply_control, apply_control_tombstone
from horus.domain.decide import DecideState, StaticView, apply_decision, apply_result, decide, token_id_wellformed
from horus.domain.decide_snapshot import (
    Recent,
    SnapshotInvalid,
    book_from_json,
    decode_books,
    forget_before_window,
    recent_of,
    snapshot_book,
)
from horus.kafka.client import consumed_at, make_consumer, poll_batch, produce_reliably
from horus.kafka.config_tail import ConfigTail, ReadyAll
from horus.topics import CONTROL_COMMANDS, COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS
from streams.decide_lookups import VenueLookups
from streams.partition_state import SNAPSHOTS, HistoryReader, PartitionSnapshot, SnapshotStore
from streams.runtime import Runtime, StageSpec

log = logging.getLogger("horus.streams.decide")

NAME = "decide"
DECISIONS = Counter("horus_decisions_total", "Decisions made", ["action", "reason"])
REBUILD_SECONDS = Gauge("horus_decide_rebuild_seconds", "Time the last partition rebuild took")
UNREADABLE = Counter(
    "horus_decide_unreadable_state_total",
    "Own decisions/results decide could not fold into its state (e.g. a newer writer's schema)",
)
BREAKER_TRIPS = Counter("horus_circuit_breaker_trips_total", "Times the circuit breaker paused everything")


class DecideStage:
    def __init__(self, runtime: Runtime, lookups: VenueLookups | None = None) -> None:
        settings = runtime.settings
        self.runtime, self.settings = runtime, settings
        self.state = DecideState()
        # configs and switches kept current by the tails; markets, quotes, balances refilled before each batch
        self.view = StaticView(ConfigState(), ControlState(), quote_ttl_us=int(settings.quote_ttl_s * 1_000_000))
        self.lock = threading.Lock()
        config_tail = ConfigTail(
            settings,
            runtime.codec,
            self.view.config,
            self.lock,
            dead_letters=runtime.dead_letters,
            stage="decide-config",
            apply=apply_config,
            tombstone=apply_config_tombstone,
        )
        control_tail = ConfigTail(
            settings,
            runtime.codec,
            self.view.control,
            self.lock,
            stage="decide-control",
            dead_letters=runtime.dead_letters,
            apply=apply_control,
            tombstone=apply_control_tombstone,
            topic=CONTROL_COMMANDS,
        )
        self.tails = ReadyAll(config_tail, control_tail)
        self.lookups = lookups
        self.breaker = BreakerPolicy(
            settings.breaker_window_s, settings.breaker_min_executions, settings.breaker_failure_rate
        )
        self.results_topic = settings.topic(EXECUTION_RESULTS.name)
        self.decisions_topic = settings.topic(COPY_DECISIONS.name)
        self.results = make_consumer(settings, None)
        self.results_assigned: dict[int, int] = {}  # partition -> next offset to read
        self.partition_of: dict[str, int] = {}  # follower -> partition it came from
        self._counters: dict = {}
        # snapshots (None: off)
        snapshots_on = settings.decide_snapshot_every > 0 or settings.decide_snapshot_interval_s > 0
        self.snapshots = SnapshotStore.configured(settings) if snapshots_on else None
        self.decisions_next: dict[int, int] = {}  # partition -> copy.decisions offset after the last one folded
        self.changes: dict[int, int] = {}  # partition -> decisions and results folded since its last snapshot
        self.snapshot_at: dict[int, float] = {}  # partition -> monotonic time of its last snapshot (or assign)
        # follower -> (candidate id, decided at (us), COPY intent) of its recent decisions, oldest first: the
        # dedup window a snapshot keeps of `decided` (horus.domain.decide_snapshot)
        self.recent: dict[str, deque[Recent]] = {}
        self._recent_since_us = 0  # history older than this is not put into `recent`
        runtime.on_start.append(self.tails.start)
        runtime.extra_stop.append(self.close)

    # ------------------------------------------------------------------ the pure function, wrapped
    def fn(self, candidate: dict, state: DecideState, *, now_us: int):
        outputs, state = decide(candidate, state, now_us=now_us, view=self.view)
        for d in outputs:
            reason = d["reason_code"] or "COPY"
            counter = self._counters.get(reason)
            if counter is None:
                counter = self._counters[reason] = DECISIONS.labels(d["action"], d["reason_code"] or "")
            counter.inc()
            if self.snapshots is not None:
                self._remember(d, self.partition_of.get(d["follower"]))
        return outputs, state

    def _remember(self, decision: dict, partition: int | None) -> None:
        recent = self.recent.get(decision["follower"])
        if recent is None:
            recent = self.recent[decision["follower"]] = deque()
        recent.append((decision["candidate_id"], decision["envelope"]["produced_at_us"], decision["intent_id"]))
        if partition is not None:
            self.changes[partition] = self.changes.get(partition, 0) + 1

    def spec(self) -> StageSpec:
        return StageSpec(
            name=NAME,
            source=COPY_CANDIDATES,
            input_type="CopyCandidate",
            sink=COPY_DECISIONS,
            output_type="CopyDecision",
            fn=self.fn,
            state=self.state,
            lock=self.lock,
            tail=self.tails,
            on_assign=self.assign,
            on_revoke=self.revoke,
            before_batch=self.before_batch,
            after_batch=self.after_batch,
        )

    # ------------------------------------------------------------------ partitions
    def assign(self, partitions: list[int]) -> None:
        """Rebuild the books of the followers on these partitions from our own history: from each partition's
        snapshot if it has one, else from the beginning.

        After a snapshot, `decided` holds only the ids of its dedup window plus those folded after it, and that
        is enough: the candidates decided before the snapshot are behind the committed offset (it is taken right
        after a commit; on revoke, at close or after a rebuild a candidate whose commit was skipped was decided
        moments ago, so its id is in the window), and redelivery starts at the committed offset; a candidate plan
        produced twice arrives within the window, or so late that it is a SKIP FILL_TOO_OLD whatever the state
        says (horus.domain.decide_snapshot)."""
        started = time.monotonic()
        saved = self._load_snapshots(partitions)
        if self.snapshots is not None:
            self._recent_since_us = time.time_ns() // 1000 - self._dedup_window_us()
        counts = [0, 0]
        folded = dict.fromkeys(partitions, 0)
        restored: dict[int, int] = {}  # partition -> followers restored from its snapshot
        starts: dict[tuple[str, int], int] = {}
        topics = [self.decisions_topic, self.results_topic]
        with HistoryReader(self.settings) as reader:
            ends = reader.ends(topics, partitions)
            for p, (decisions_offset, results_offset, blob) in saved.items():
                followers = self._restore(p, decisions_offset, results_offset, blob, ends)
                if followers is not None:
                    starts[(self.decisions_topic, p)] = decisions_offset
                    starts[(self.results_topic, p)] = results_offset
                    restored[p] = followers
            for kind, topic in enumerate(topics):

                def fold(message, p: int, kind: int = kind) -> None:
                    n = self._fold_history(message, p)
                    counts[kind] += n
                    folded[p] += n

                reader.read(topic, partitions, starts, ends, fold)
        now = time.monotonic()
        for p in partitions:
            self.results_assigned[p] = ends[(self.results_topic, p)]
            self.decisions_next[p] = ends[(self.decisions_topic, p)]
            self.changes[p], self.snapshot_at[p] = folded[p], now
        self._assign_results()
        REBUILD_SECONDS.set(time.monotonic() - started)
        whole = sorted(set(partitions) - set(restored))
        log.info(
            "decide: partitions %s rebuilt from %d decisions and %d results in %.2fs; from snapshots: %s; "
            "whole history: %s",
            sorted(partitions),
            counts[0],
            counts[1],
            time.monotonic() - started,
            ", ".join(f"{p} ({n} followers, +{folded[p]} folded)" for p, n in sorted(restored.items())) or "none",
            whole or "none",
        )
        if self.snapshots is not None:  # a long fold is not repeated at the next assign
            self._snapshot([p for p in partitions if folded[p] >= max(self.settings.decide_snapshot_every, 1)])

    def _load_snapshots(self, partitions: list[int]) -> dict[int, tuple[int, int, bytes]]:
        if self.snapshots is None:
            return {}
        try:
            return self.snapshots.load(partitions)
        except Exception as exc:  # the whole history is always there
            log.warning("decide: cannot read snapshots (%s); folding the whole history", exc)
            return {}

    def _restore(self, partition: int, decisions_offset: int, results_offset: int, blob: bytes, ends) -> int | None:
        """Put a partition's snapshot into the state: the followers restored, None (and a warning) if it
        cannot be used."""
        if (
            decisions_offset > ends[(self.decisions_topic, partition)]
            or results_offset > ends[(self.results_topic, partition)]
        ):
            log.warning(
                "decide: the snapshot of partition %d covers offsets past the end of its topics (decisions "
                "%d, results %d): were they recreated? Folding the whole history",
                partition,
                decisions_offset,
                results_offset,
            )
            return None
        if self.snapshots is None:  # never: only a store loads snapshots
            return None
        try:  # authentic for this place, then every value checked: a forged or damaged row never lifts a cap
            state = self.snapshots.open(partition, decisions_offset, results_offset, blob)
            books = {
                follower: (book_from_json(data, f"follower {follower}"), recent_of(data))
                for follower, data in decode_books(state).items()
            }
        except SnapshotInvalid as exc:
            SNAPSHOTS.labels("refused").inc()
            log.warning(
                "decide: the snapshot of partition %d is refused (%s); folding the whole history", partition, exc
            )
            return None
        with self.lock:
            for follower, (book, recent) in books.items():
                self.state.books[follower] = book
                self.partition_of[follower] = partition
                self.recent[follower] = deque(recent)
        return len(books)

    def _decode_own(self, message) -> tuple[str, dict[str, Any]] | None:
        """A decision or result decide folds into its state (its type name and record). One it cannot read (a newer
        writer's schema: None) is left out of the caps and reservations, so it is logged and counted for the
        operator."""
        try:
            return self.runtime.codec.decode(message.value())
        except Exception as exc:
            UNREADABLE.inc()
            log.warning(
                "decide: cannot fold %s[%d]@%d into its state: %s",
                message.topic(),
                message.partition(),
                message.offset(),
                exc,
            )
            return None

    def _fold_history(self, message, partition: int) -> int:
        decoded = self._decode_own(message)
        if decoded is None:
            return 0
        name, record = decoded
        with self.lock:
            if name == "CopyDecision":
                book = self.state.books.get(record["follower"])
                new = book is None or record["candidate_id"] not in book.decided
                apply_decision(record, self.state)
                if new and self.snapshots is not None and record["envelope"]["produced_at_us"] >= self._recent_since_us:
                    self._remember(record, partition)
            elif name == "ExecutionResult":
                apply_result(record, self.state)
            else:
                return 0
        self.partition_of[record["follower"]] = partition
        return 1

    def revoke(self, partitions: list[int]) -> None:
        """Called between batches: the books are consistent, so a snapshot of each changed partition is written
        (waited for, so the next owner starts from it) before they are dropped."""
        gone = set(partitions)
        if self.snapshots is not None:
            self._snapshot([p for p in partitions if self.changes.get(p)])
            if not self.snapshots.flush(10.0):
                log.warning("decide: snapshots of partitions %s still not written after 10 s", sorted(gone))
        with self.lock:
            for follower, p in list(self.partition_of.items()):
                if p in gone:
                    self.state.books.pop(follower, None)
                    self.recent.pop(follower, None)
                    del self.partition_of[follower]
        for p in partitions:
            for owned in (self.results_assigned, self.decisions_next, self.changes, self.snapshot_at):
                owned.pop(p, None)
        self._assign_results()
        log.info("decide: partitions %s revoked", sorted(partitions))

    # ------------------------------------------------------------------ snapshots
    def after_batch(self, delivered: dict[int, int], committed: bool) -> None:
        """After the batch's commit: note where our decisions ended, and snapshot the partitions that are due.
        Right after a successful commit every candidate decided so far is behind the committed offset."""
        for p, offset in delivered.items():
            if p in self.decisions_next and offset > self.decisions_next[p]:
                self.decisions_next[p] = offset
        if not committed or self.snapshots is None:
            return
        every, interval = self.settings.decide_snapshot_every, self.settings.decide_snapshot_interval_s
        now = time.monotonic()
        self._snapshot(
            [
                p
                for p, at in self.snapshot_at.items()
                if self.changes.get(p) and ((every and self.changes[p] >= every) or (interval and now - at >= interval))
            ]
        )

    def _dedup_window_us(self) -> int:
        """How recent a decision must be for a snapshot to keep its candidate id: the setting, and never less
        than the oldest fill any follow may still copy (a candidate older than that can only be a SKIP)."""
        with self.lock:
            copyable_s = max((f.max_fill_age_s for f in self.view.config.follows.values()), default=0)
        return int(max(self.settings.decide_snapshot_dedup_s, copyable_s + CLOCK_SLACK_S) * 1_000_000)

    def _snapshot(self, partitions: list[int]) -> None:
        """Copy these partitions' books (on this thread: the state is not shared) and queue them for writing."""
        partitions = [p for p in partitions if p in self.results_assigned]  # owned
        snapshots = self.snapshots
        if not partitions or snapshots is None:  # None: never, every caller checks it first
            return
        try:
            since_us = time.time_ns() // 1000 - self._dedup_window_us()
            wanted = set(partitions)
            books: dict[int, dict] = {p: {} for p in partitions}
            for follower, p in self.partition_of.items():
                book = self.state.books.get(follower)
                if p not in wanted or book is None:
                    continue
                window = self.recent.get(follower, ())
                while window and window[0][1] < since_us:
                    window.popleft()
                recent = list(window)
                books[p][follower] = (snapshot_book(book, recent), recent)
                forget_before_window(book, recent)  # the live book keeps what a restore would
            taken_at, now = datetime.now(UTC), time.monotonic()
            for p in partitions:
                snapshots.save(
                    PartitionSnapshot(p, self.decisions_next[p], self.results_assigned[p], taken_at, books[p])
                )
                self.changes[p], self.snapshot_at[p] = 0, now
        except Exception:  # a bug here must not stop deciding: the whole history is the fallback
            SNAPSHOTS.labels("failed").inc()
            log.warning("decide: snapshot of partitions %s failed", sorted(partitions), exc_info=True)

    def _assign_results(self) -> None:
        self.results.assign([TopicPartition(self.results_topic, p, o) for p, o in self.results_assigned.items()])

    # ------------------------------------------------------------------ before each batch
    def before_batch(self, batch: list[tuple]) -> list[tuple[str, dict[str, Any]] | Exception]:
        """Fold new execution results, decode the batch (handed on to the runner) and fetch its market
        data and balances."""
        self._fold_new_results()
        decoded: list[tuple[str, dict[str, Any]] | Exception] = []
        candidates: list[dict[str, Any]] = []
        for _, partition, _, _, value in batch:
            try:
                if value is None:
                    raise ValueError("message value is null (tombstone)")
                name, record = self.runtime.codec.decode(value)
            except Exception as exc:  # the runner parks it
                decoded.append(exc)
                continue
            decoded.append((name, record))
            if name == "CopyCandidate":
                candidates.append(record)
                self.partition_of[record["follower"]] = partition
        # forged token ids are not sent to the venue (they are SKIP MARKET_UNKNOWN): only well-formed ones are looked up
        wanted = [c for c in candidates if token_id_wellformed(c["token_id"])]
        if wanted and self.lookups is not None:
            self.lookups.prefetch(wanted)
        return decoded

    def _fold_new_results(self) -> None:
        if not self.results_assigned:
            return
        while True:
            messages = poll_batch(self.results, 5000, 0)
            if not messages:
                break
            with self.lock:
                for message in messages:
                    p, offset = consumed_at(message)
                    decoded = self._decode_own(message)
                    if decoded is not None and decoded[0] == "ExecutionResult":
                        record = decoded[1]
                        apply_result(record, self.state, now_us=time.time_ns() // 1000)
                        self.partition_of[record["follower"]] = p
                        self.changes[p] = self.changes.get(p, 0) + 1
                    self.results_assigned[p] = offset + 1
        self._check_breaker()

    def _check_breaker(self) -> None:
        command = breaker_command(self.state, self.view.control, self.breaker, time.time_ns() // 1000)
        if command is None:
            return
        produce_reliably(
            self.runtime.producer,
            self.settings.topic(CONTROL_COMMANDS.name),
            self.runtime.codec.encode("ControlCommand", command),
            key="GLOBAL",
        )
        self.runtime.producer.flush(10)
        self.state.outcomes.clear()  # a resume starts a fresh window
        BREAKER_TRIPS.inc()
        log.error("%s: everything is paused until `horus resume --global`", command["reason"])

    def close(self) -> None:
        if self.snapshots is not None:  # normally revoked (and snapshotted) already when the consumer closed
            self._snapshot([p for p, changed in self.changes.items() if changed])
            self.snapshots.close()
        for tail in self.tails.tails:
            tail.stop()
        self.results.close()
        if self.lookups is not None:
            self.lookups.close()


def build(runtime: Runtime) -> StageSpec:
    stage = DecideStage(runtime)
    stage.lookups = VenueLookups(runtime, stage.view)
    return stage.spec()
