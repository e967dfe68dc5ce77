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
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from decimal import Decimal

import httpx
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from prometheus_client import Counter, Gauge

from horus.domain.config import ConfigState, apply_config, apply_config_tombstone
from horus.domain.control import ControlState, apply_control, apply_control_tombstone, control_command
from horus.domain.decide import DecideState, StaticView, apply_decision, apply_result, decide, failure_rate
from horus.kafka.client import make_consumer, poll_batch, produce_reliably, watermarks
from horus.kafka.config_tail import ConfigTail
from horus.topics import CONTROL_COMMANDS, COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS
from horus.venue.polymarket.metadata import MarketMetadata
from horus.venue.polymarket.quotes import FixedBalances, QuoteSource, VenueBalances
from streams.runtime import Runtime, StageSpec

log = logging.getLogger("horus.streams.decide")

NAME = "decide"
DECISIONS = Counter("horus_decisions_total", "Decisions made", ["action", "reason"])
REBUILD_SECONDS = Gauge("horus_decide_rebuild_seconds", "Time the last partition rebuild took")
UNREADABLE = Counter("horus_decide_unreadable_state_total",
                     "Own decisions/results decide could not fold into its state (e.g. a newer writer's schema)")
BREAKER_TRIPS = Counter("horus_circuit_breaker_trips_total", "Times the circuit breaker paused everything")


class VenueLookups:
    """Market data and balances, fetched on a private asyncio loop thread for each batch."""

    def __init__(self, runtime: Runtime, view: StaticView) -> None:
        settings = runtime.settings
        self.view, self.timeout_s = view, settings.decide_lookup_timeout_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="horus-decide-venue", daemon=True)
        self.thread.start()
        self.balances = None
        self.settings = settings

        async def build():
            from horus.venue.polymarket.clob import ClobHttp

            self.http = httpx.AsyncClient(timeout=settings.venue_timeout_s)
            self.metadata = MarketMetadata(settings, self.http)
            self.clob = ClobHttp(settings.clob_url, chain_id=settings.venue_chain_id, timeout_s=settings.venue_timeout_s)
            self.quotes = QuoteSource(self.clob, settings.quote_ttl_s)
            if settings.balance_source == "fixed":
                self.balances = FixedBalances(int(Decimal(settings.fixed_balance) * 1_000_000))
            else:
                self.balances = VenueBalances(self.clob, self._accounts().get, settings.balance_ttl_s)

        asyncio.run_coroutine_threadsafe(build(), self.loop).result(10)

    def _accounts(self):
        """Signer and API credentials per follower, as the executor resolves them (paper: derived via L1)."""
        from horus.credentials import CredentialStore
        from horus.execution.accounts import Accounts

        store = CredentialStore(self.settings) if self.settings.credentials_key else None
        return Accounts(self.view.config.followers.get, store.get if store else None,
                        mode=self.settings.venue_mode, venue=self.clob)

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
            async def market(t):
                self.view.markets[t] = await self.metadata.get(t)

            async def quote(t):
                self.view.quotes[t] = await self.quotes.get(t)

            async def balance(a):
                self.view.balances[a.follower] = await self.balances.get(a, sorted(sells.get(a.follower, ())))

            await asyncio.gather(*(market(t) for t in tokens), *(quote(t) for t in tokens),
                                 *(balance(a) for a in accounts.values()))

        future = asyncio.run_coroutine_threadsafe(gather(), self.loop)
        try:
            future.result(self.timeout_s)
        except TimeoutError:  # decide with what arrived: a missing price or balance is a SKIP, never a guess
            future.cancel()
            log.warning("market data / balances for %d tokens, %d followers took over %.1fs", len(tokens),
                        len(accounts), self.timeout_s)

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


class DecideStage:
    def __init__(self, runtime: Runtime, lookups: VenueLookups | None = None) -> None:
        settings = runtime.settings
        self.runtime, self.settings = runtime, settings
        self.state = DecideState()
        # configs and switches kept current by the tails; markets, quotes, balances refilled before each batch
        self.view = StaticView(ConfigState(), ControlState(), quote_ttl_us=int(settings.quote_ttl_s * 1_000_000))
        self.lock = threading.Lock()
        config_tail = ConfigTail(settings, runtime.codec, self.view.config, self.lock, dead_letters=runtime.dead_letters,
                                 stage="decide-config", apply=apply_config, tombstone=apply_config_tombstone)
        control_tail = ConfigTail(settings, runtime.codec, self.view.control, self.lock, stage="decide-control",
                                  dead_letters=runtime.dead_letters, apply=apply_control,
                                  tombstone=apply_control_tombstone, topic=CONTROL_COMMANDS)
        self.tails = _Ready(config_tail, control_tail)
        self.lookups = lookups
        self.results_topic = settings.topic(EXECUTION_RESULTS.name)
        self.decisions_topic = settings.topic(COPY_DECISIONS.name)
        self.results = make_consumer(settings, None)
        self.results_assigned: dict[int, int] = {}  # partition -> next offset to read
        self.partition_of: dict[str, int] = {}  # follower -> partition it came from
        self._counters: dict = {}
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
        return outputs, state

    def spec(self) -> StageSpec:
        return StageSpec(name=NAME, source=COPY_CANDIDATES, input_type="CopyCandidate", sink=COPY_DECISIONS,
                         output_type="CopyDecision", fn=self.fn, state=self.state, lock=self.lock, tail=self.tails,
                         on_assign=self.assign, on_revoke=self.revoke, before_batch=self.before_batch)

    # ------------------------------------------------------------------ partitions
    def assign(self, partitions: list[int]) -> None:
        """Rebuild the books of the followers on these partitions from our own history."""
        started = time.monotonic()
        reader = make_consumer(self.settings, None)
        counts = [0, 0]
        try:
            ends = {}
            for topic in (self.decisions_topic, self.results_topic):
                for p in partitions:
                    ends[(topic, p)] = watermarks(reader, topic, p)[1]
            for kind, topic in enumerate((self.decisions_topic, self.results_topic)):
                todo = {p for p in partitions if ends[(topic, p)] > 0}
                reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
                while todo:
                    for message in poll_batch(reader, 5000, 1.0):
                        p = message.partition()
                        if p in todo and message.offset() < ends[(topic, p)]:
                            counts[kind] += self._fold_history(message, p)
                        if message.offset() + 1 >= ends[(topic, p)]:
                            todo.discard(p)
        finally:
            reader.close()
        for p in partitions:
            self.results_assigned[p] = ends[(self.results_topic, p)]
        self._assign_results()
        REBUILD_SECONDS.set(time.monotonic() - started)
        log.info("decide: partitions %s rebuilt from %d decisions and %d results in %.2fs", sorted(partitions),
                 counts[0], counts[1], time.monotonic() - started)

    def _decode_own(self, message) -> tuple[str | None, dict | None]:
        """A decision or result decide folds into its state. One it cannot read (a newer writer's schema) is
        left out of the caps and reservations, so it is logged and counted for the operator."""
        try:
            return self.runtime.codec.decode(message.value())
        except Exception as exc:
            UNREADABLE.inc()
            log.warning("decide: cannot fold %s[%d]@%d into its state: %s", message.topic(), message.partition(),
                        message.offset(), exc)
            return None, None

    def _fold_history(self, message, partition: int) -> int:
        name, record = self._decode_own(message)
        with self.lock:
            if name == "CopyDecision":
                apply_decision(record, self.state)
            elif name == "ExecutionResult":
                apply_result(record, self.state)
            else:
                return 0
        self.partition_of[record["follower"]] = partition
        return 1

    def revoke(self, partitions: list[int]) -> None:
        gone = set(partitions)
        with self.lock:
            for follower, p in list(self.partition_of.items()):
                if p in gone:
                    self.state.books.pop(follower, None)
                    del self.partition_of[follower]
        for p in partitions:
            self.results_assigned.pop(p, None)
        self._assign_results()
        log.info("decide: partitions %s revoked", sorted(partitions))

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
        if candidates and self.lookups is not None:
            self.lookups.prefetch(candidates)
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
                    name, record = self._decode_own(message)
                    if name == "ExecutionResult":
                        apply_result(record, self.state, now_us=time.time_ns() // 1000)
                    self.results_assigned[message.partition()] = message.offset() + 1
        self._check_breaker()

    def _check_breaker(self) -> None:
        settings = self.settings
        now_us = time.time_ns() // 1000
        failed, total = failure_rate(self.state, now_us, int(settings.breaker_window_s * 1_000_000))
        if total < settings.breaker_min_executions or failed < total * settings.breaker_failure_rate \
                or self.view.control.global_paused:
            return
        reason = (f"circuit breaker: {failed} of the last {total} executions failed within "
                  f"{settings.breaker_window_s:g}s (threshold {settings.breaker_failure_rate:.0%})")
        command = control_command("GLOBAL", "PAUSE", reason=reason, issued_by="circuit-breaker", occurred_at_us=now_us)
        produce_reliably(self.runtime.producer, self.settings.topic(CONTROL_COMMANDS.name),
                         self.runtime.codec.encode("ControlCommand", command), key="GLOBAL")
        self.runtime.producer.flush(10)
        self.state.outcomes.clear()  # a resume starts a fresh window
        BREAKER_TRIPS.inc()
        log.error("%s: everything is paused until `horus resume --global`", reason)

    def close(self) -> None:
        for tail in self.tails.tails:
            tail.stop()
        self.results.close()
        if self.lookups is not None:
            self.lookups.close()


def build(runtime: Runtime) -> StageSpec:
    stage = DecideStage(runtime)
    stage.lookups = VenueLookups(runtime, stage.view)
    return stage.spec()
