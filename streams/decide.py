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

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import psycopg
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from prometheus_client import Counter, Gauge

from horus.db.engine import psycopg_conninfo
from horus.domain.clock import CLOCK_SLACK_S  # the slack FILL_IN_FUTURE allows: the dedup window keeps this much more
from horus.domain.config import ConfigState, apply_config, apply_config_tombstone
from horus.domain.control import ControlState, apply_control, apply_control_tombstone, control_command
from horus.domain.decide import (
    DecideState,
    FollowerBook,
    StaticView,
    apply_decision,
    apply_result,
    decide,
    failure_rate,
    token_id_wellformed,
)
from horus.domain.decide_snapshot import (
    FORMAT,
    SnapshotInvalid,
    SnapshotPlace,
    book_from_json,
    decode_books,
    encode_books,
    forget_before_window,
    mac_key,
    open_sealed,
    recent_of,
    seal,
    snapshot_book,
)
from horus.kafka.client import make_consumer, poll_batch, produce_reliably, watermarks
from horus.kafka.config_tail import ConfigTail
from horus.topics import CONTROL_COMMANDS, COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS
from horus.venue.guard import require_venue
from horus.venue.polymarket.metadata import MarketMetadata
from horus.venue.polymarket.quotes import FixedBalances, QuoteSource, VenueBalances
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
SNAPSHOTS = Counter(
    "horus_decide_snapshots_total",
    "Partition snapshots of decide's state, by outcome "
    "(written, failed: the next rebuild folds more history; refused: a stored snapshot that is not "
    "authentic or not valid, the whole history folded instead)",
    ["outcome"],
)
SNAPSHOT_BYTES = Gauge("horus_decide_snapshot_bytes", "Size of the last snapshot written")


class VenueLookups:
    """Market data and balances, fetched on a private asyncio loop thread for each batch."""

    def __init__(self, runtime: Runtime, view: StaticView) -> None:
        settings = runtime.settings
        # paper reads market data and balances from the simulator only, never a real venue
        identity = require_venue(settings)
        self.view, self.timeout_s = view, settings.decide_lookup_timeout_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="horus-decide-venue", daemon=True)
        self.thread.start()
        self.balances = None
        self.paper_markets = None  # paper: the simulator's markets follow the leaders' fills (horus.venue.paper)
        self.settings = settings

        async def build():
            from horus.venue.polymarket.clob import ClobHttp

            self.http = httpx.AsyncClient(timeout=settings.venue_timeout_s)
            self.metadata = MarketMetadata(settings, self.http)
            self.clob = ClobHttp(
                settings.clob_url, chain_id=settings.venue_chain_id, timeout_s=settings.venue_timeout_s
            )
            self.quotes = QuoteSource(self.clob, settings.quote_ttl_s)
            if identity is not None and identity.get("follow_leaders") is True:  # an empty paper venue
                from horus.venue.paper import PaperMarkets

                self.paper_markets = PaperMarkets(settings.clob_url, self.http)
            if settings.balance_source == "fixed":
                self.balances = FixedBalances(int(Decimal(settings.fixed_balance) * 1_000_000))
            else:
                self.balances = VenueBalances(self.clob, self._accounts().get, settings.balance_ttl_s)

        asyncio.run_coroutine_threadsafe(build(), self.loop).result(10)

    def _accounts(self):
        """Signer and API credentials per follower, from the store's API-credentials records only: decide reads
        balances, it never signs, so it never decrypts a signing key (in paper mode the records hold the
        simulator's credentials, derived when the credentials were stored)."""
        from horus.credentials import ApiAccounts, CredentialStore

        store = CredentialStore(self.settings) if self.settings.credentials_key else None
        return ApiAccounts(self.view.config.followers.get, store)

    def prefetch(self, candidates: list[dict]) -> None:
        tokens = {c["token_id"] for c in candidates}
        accounts = {}
        sells: dict[str, set[str]] = {}
        for c in candidates:
            account = self.view.config.followers.get(c["follower"])
            if account is not None:
                accounts[account.follower] = account
                if c["side"] == "SELL":
                    sells.setdefault(account.follower, set()).add(c["token_id"])

        self.view.balances.clear()  # never decide on a balance read for an earlier batch: missing -> SKIP

        async def gather():
            if self.paper_markets is not None:  # first, so the lookups below see the market where the leader traded
                for moved in await self.paper_markets.follow(candidates):
                    self.quotes.cache.forget(moved)

            async def market(t):
                self.view.markets[t] = await self.metadata.get(t)

            async def quote(t):
                self.view.quotes[t] = await self.quotes.get(t)

            async def balance(a):
                self.view.balances[a.follower] = await self.balances.get(a, sorted(sells.get(a.follower, ())))

            await asyncio.gather(
                *(market(t) for t in tokens), *(quote(t) for t in tokens), *(balance(a) for a in accounts.values())
            )

        future = asyncio.run_coroutine_threadsafe(gather(), self.loop)
        try:
            future.result(self.timeout_s)
        except TimeoutError:  # decide with what arrived: a missing price or balance is a SKIP, never a guess
            future.cancel()
            log.warning(
                "market data / balances for %d tokens, %d followers took over %.1fs",
                len(tokens),
                len(accounts),
                self.timeout_s,
            )

    def close(self) -> None:
        async def shut():
            await self.http.aclose()
            await self.clob.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        except Exception:  # pragma: no cover - best effort at shutdown
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


class _Ready:
    """Both tails have read their topic to the end (and neither failed)."""

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
        self.conn = None
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
        self.tails = _Ready(config_tail, control_tail)
        self.lookups = lookups
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
        self.recent: dict[str, deque] = {}
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
        # a fetch waits up to fetch.wait.max.ms at the end of copy.decisions before results can be fetched
        reader = make_consumer(self.settings, None, **{"fetch.wait.max.ms": 10})
        counts = [0, 0]
        folded = dict.fromkeys(partitions, 0)
        restored: dict[int, int] = {}  # partition -> followers restored from its snapshot
        starts: dict[tuple[str, int], int] = {}
        try:
            ends = {}
            for topic in (self.decisions_topic, self.results_topic):
                for p in partitions:
                    ends[(topic, p)] = watermarks(reader, topic, p)[1]
            for p, (decisions_offset, results_offset, blob) in saved.items():
                followers = self._restore(p, decisions_offset, results_offset, blob, ends)
                if followers is not None:
                    starts[(self.decisions_topic, p)], starts[(self.results_topic, p)] = (
                        decisions_offset,
                        results_offset,
                    )
                    restored[p] = followers
            for kind, topic in enumerate((self.decisions_topic, self.results_topic)):
                todo = {p for p in partitions if ends[(topic, p)] > starts.get((topic, p), 0)}
                # consume() waits for the full count or its timeout: ask for no more than is left (exact unless
                # a partition's log no longer starts at 0), so a short tail costs no second
                left = sum(ends[(topic, p)] - starts.get((topic, p), 0) for p in todo)
                reader.assign([TopicPartition(topic, p, starts.get((topic, p), OFFSET_BEGINNING)) for p in todo])
                while todo:
                    for message in poll_batch(reader, max(1, min(5000, left)), 1.0):
                        left -= 1
                        p = message.partition()
                        if p in todo and message.offset() < ends[(topic, p)]:
                            n = self._fold_history(message, p)
                            counts[kind] += n
                            folded[p] += n
                        if message.offset() + 1 >= ends[(topic, p)]:
                            todo.discard(p)
        finally:
            reader.close()
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

    def _decode_own(self, message) -> tuple[str | None, dict | None]:
        """A decision or result decide folds into its state. One it cannot read (a newer writer's schema) is
        left out of the caps and reservations, so it is logged and counted for the operator."""
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
            return None, None

    def _fold_history(self, message, partition: int) -> int:
        name, record = self._decode_own(message)
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
        if not partitions:
            return
        try:
            since_us = time.time_ns() // 1000 - self._dedup_window_us()
            wanted = set(partitions)
            books: dict[int, dict] = {p: {} for p in partitions}
            for follower, p in self.partition_of.items():
                book = self.state.books.get(follower)
                if p not in wanted or book is None:
                    continue
                recent = self.recent.get(follower, ())
                while recent and recent[0][1] < since_us:
                    recent.popleft()
                recent = list(recent)
                books[p][follower] = (snapshot_book(book, recent), recent)
                forget_before_window(book, recent)  # the live book keeps what a restore would
            taken_at, now = datetime.now(UTC), time.monotonic()
            for p in partitions:
                self.snapshots.save(
                    PartitionSnapshot(p, self.decisions_next[p], self.results_assigned[p], taken_at, books[p])
                )
                self.changes[p], self.snapshot_at[p] = 0, now
        except Exception:  # a bug here must not stop deciding: the whole history is the fallback
            SNAPSHOTS.labels("failed").inc()
            log.warning("decide: snapshot of partitions %s failed", sorted(partitions), exc_info=True)

    def _assign_results(self) -> None:
        self.results.assign([TopicPartition(self.results_topic, p, o) for p, o in self.results_assigned.items()])

    # ------------------------------------------------------------------ before each batch
    def before_batch(self, batch: list[tuple]) -> list:
        """Fold new execution results, decode the batch (handed on to the runner) and fetch its market
        data and balances."""
        self._fold_new_results()
        decoded, candidates = [], []
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
                    p = message.partition()
                    name, record = self._decode_own(message)
                    if name == "ExecutionResult":
                        apply_result(record, self.state, now_us=time.time_ns() // 1000)
                        self.partition_of[record["follower"]] = p
                        self.changes[p] = self.changes.get(p, 0) + 1
                    self.results_assigned[p] = message.offset() + 1
        self._check_breaker()

    def _check_breaker(self) -> None:
        settings = self.settings
        now_us = time.time_ns() // 1000
        failed, total = failure_rate(self.state, now_us, int(settings.breaker_window_s * 1_000_000))
        if (
            total < settings.breaker_min_executions
            or failed < total * settings.breaker_failure_rate
            or self.view.control.global_paused
        ):
            return
        reason = (
            f"circuit breaker: {failed} of the last {total} executions failed within "
            f"{settings.breaker_window_s:g}s (threshold {settings.breaker_failure_rate:.0%})"
        )
        command = control_command("GLOBAL", "PAUSE", reason=reason, issued_by="circuit-breaker", occurred_at_us=now_us)
        produce_reliably(
            self.runtime.producer,
            self.settings.topic(CONTROL_COMMANDS.name),
            self.runtime.codec.encode("ControlCommand", command),
            key="GLOBAL",
        )
        self.runtime.producer.flush(10)
        self.state.outcomes.clear()  # a resume starts a fresh window
        BREAKER_TRIPS.inc()
        log.error("%s: everything is paused until `horus resume --global`", reason)

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
