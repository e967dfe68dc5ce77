"""The execute stage's runner: copy.decisions -> (ledger, venue) -> execution.results.

One asyncio loop; the confluent-kafka consumer is only ever touched from one dedicated thread.

    poll a batch ─► decode (bad bytes: dead letters) ─► Executor.prepare (ONE prewrite transaction)
      ─► each COPY onto its follower's lane (KeyedLanes: one follower in order, followers concurrently)
      ─► lane: POST / classify / record (group-committed) / emit result (await broker ack) ─► offset done

Offsets: per partition an OffsetTracker; the commit task commits the lowest unfinished offset, so a
crash (SIGKILL included) re-delivers every message whose work might not be complete; the ledger makes
the redelivery safe (no second order, the same result re-emitted). Back-pressure: above
`execute_max_in_flight` unfinished messages the assigned partitions are paused, resumed below half.
Rebalance: on revoke the partitions stop feeding lanes, in-flight work gets a bounded time to finish,
the finished prefix is committed, and anything still running finishes here: the leases of rows in lanes are
renewed (every third of `execute_lease_s`), so the next owner and the reconciler leave them alone until this
process dies and they lapse. Safety never comes from the offset.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from confluent_kafka import TopicPartition
from prometheus_client import Gauge

from horus.codec import Codec, default_codec
from horus.execution.accounts import Accounts
from horus.execution.lanes import KeyedLanes
from horus.execution.ledger import GroupWriter, Ledger
from horus.execution.lookup import ChainLookup, Lookup
from horus.execution.offsets import OffsetTracker
from horus.execution.reconcile import Reconciler
from horus.execution.submit import Executor, Work
from horus.kafka.client import fetch_available, make_consumer, produce_reliably
from horus.settings import Settings
from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS
from horus.venue.guard import require_venue_async
from streams.runtime import Runtime

log = logging.getLogger("horus.execution")

IN_FLIGHT = Gauge("horus_execute_in_flight", "Decisions consumed and not finished")
LANES = Gauge("horus_execute_lanes", "Followers with work in flight")
REVOKE_GRACE_S = 10.0


@dataclass
class Job:
    topic: str
    partition: int
    offset: int
    work: Work | None  # None: nothing to execute (SKIP, parked) but still ordered behind the follower
    generation: int  # assignment generation of its partition when consumed


class ExecuteService:
    """Runs until `stop` is set. Construct with everything the executor needs (tests pass fakes of nothing:
    the real ledger, Kafka and the simulator)."""

    def __init__(self, settings: Settings, *, follower_account: Callable[[str], Any],
                 secrets: Callable[[str], Any] | None, market_info: Callable[[str], Any] | None = None,
                 venue: Any = None, chain: ChainLookup | None = None, runtime: Runtime | None = None,
                 codec: Codec | None = None, group_id: str | None = None, reconcile: bool = True,
                 resend_unknown: int = 1, backoff_s: float = 1.0) -> None:
        self.settings = settings
        self.codec = codec or default_codec()
        self.runtime = runtime or Runtime(settings, codec=self.codec)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.topic = settings.topic(COPY_DECISIONS.name)
        self.out_topic = settings.topic(EXECUTION_RESULTS.name)
        self.group_id = group_id or f"{settings.app_id}-execute"
        self.follower_account = follower_account
        self.secrets = secrets
        self.market_info_fn = market_info
        self.venue = venue
        self.chain = chain
        self.do_reconcile = reconcile
        self.resend_unknown = resend_unknown
        self.backoff_s = backoff_s
        self.max_in_flight = settings.execute_max_in_flight
        self.batch_size = settings.execute_batch_size
        self._kafka = ThreadPoolExecutor(1, thread_name_prefix="execute-consumer")
        self._trackers: dict[tuple[str, int], OffsetTracker] = {}
        self._generation: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._paused = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.consumer = None
        self.executor: Executor | None = None
        self.reconciler: Reconciler | None = None
        self.lanes: KeyedLanes | None = None
        self.processed = 0

    # ------------------------------------------------------------------------------ wiring
    async def _setup(self, consume: bool = True) -> None:
        s = self.settings
        await require_venue_async(s)  # paper: the simulator or nothing (D1); live: a loud banner
        self._loop = asyncio.get_running_loop()
        self.ledger = Ledger(s.database_url, connections=4)
        await self.ledger.open()
        self.writer = GroupWriter(self.ledger)
        self.writer.start()
        self._own_venue = self.venue is None and s.venue_mode != "dry-run"
        if self._own_venue:
            from horus.venue.polymarket.clob import ClobHttp

            # one aiohttp session; a socket per unfinished decision, so a POST never waits for a connection
            self.venue = ClobHttp(s.clob_url, chain_id=s.venue_chain_id, timeout_s=s.venue_timeout_s,
                                  max_connections=self.max_in_flight)
        if self.market_info_fn is None:
            import httpx

            from horus.venue.polymarket.metadata import MarketMetadata

            self._meta_client = httpx.AsyncClient(timeout=10.0)
            self.market_info_fn = MarketMetadata(s, self._meta_client).get
        accounts = Accounts(self.follower_account, self.secrets, mode=s.venue_mode, venue=self.venue)
        lookup = Lookup(self.venue, self.chain) if self.venue is not None else None
        self.executor = Executor(
            mode=s.venue_mode, ledger=self.ledger, writer=self.writer, accounts=accounts, venue=self.venue,
            lookup=lookup, market_info=self.market_info_fn, emit=self.emit, owner=self.owner,
            chain_id=s.venue_chain_id, builder=s.builder_code.lower(), default_ttl_s=s.execute_default_ttl_s,
            lease_s=s.execute_lease_s, resend_unknown=self.resend_unknown, backoff_s=self.backoff_s)
        if lookup is not None:
            self.reconciler = Reconciler(self.executor, self.ledger, min_age_s=s.reconcile_min_age_s,
                                         lease_s=s.execute_lease_s, alert_after_s=s.reconcile_alert_after_s)
        self.lanes = KeyedLanes(self._run_job, self._job_done)
        self.runtime.start()
        if not consume:
            return
        self.consumer = make_consumer(s, self.group_id, **{
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": 300_000,
            "session.timeout.ms": int(s.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(min(3.0, s.session_timeout_s / 3) * 1000),
        })

    async def _kafka_call(self, fn, *args, **kwargs):
        return await self._loop.run_in_executor(self._kafka, lambda: fn(*args, **kwargs))

    # ------------------------------------------------------------------------------ main loop
    async def run(self, stop: threading.Event | asyncio.Event) -> None:
        await self._setup()
        done = asyncio.Event()
        tasks = [asyncio.create_task(self._commit_loop(done), name="execute-commits"),
                 asyncio.create_task(self._renew_leases(done), name="execute-leases")]
        if self.reconciler is not None and self.do_reconcile:
            tasks.append(asyncio.create_task(self.reconciler.run(done, self.settings.reconcile_interval_s),
                                             name="reconciler"))
        try:
            await self._kafka_call(self.consumer.subscribe, [self.topic], on_assign=self._on_assign,
                                   on_revoke=self._on_revoke, on_lost=self._on_revoke)
            log.info("execute: mode %s, group %s, owner %s", self.settings.venue_mode, self.group_id, self.owner)
            while not stop.is_set():
                await self._poll_once()
        finally:
            done.set()
            await self._shutdown(tasks)

    async def reconcile_only(self, stop: asyncio.Event, *, once: bool) -> list:
        """Reconciliation rounds without consuming (`horus reconcile`); returns the last round's reports."""
        await self._setup(consume=False)
        reports = []
        try:
            if self.reconciler is None:
                raise RuntimeError("reconciliation needs the venue (venue_mode paper or live)")
            while True:
                reports = [await self.reconciler.round()]
                if once or stop.is_set():
                    return reports
                try:
                    await asyncio.wait_for(stop.wait(), self.settings.reconcile_interval_s)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._shutdown([])

    async def _poll_once(self) -> None:
        messages = await self._kafka_call(fetch_available, self.consumer, self.batch_size, 0.05)
        if not messages:
            await self._apply_backpressure()
            return
        seen_at = time.monotonic()
        decoded: list[tuple[Any, dict | None]] = []
        for m in messages:
            if m.error() is not None:
                if m.error().code() != -191:  # _PARTITION_EOF
                    log.warning("consumer: %s", m.error())
                continue
            tp = (m.topic(), m.partition())
            tracker = self._trackers.get(tp)
            if tracker is None:  # consumed for a partition no longer ours: its next owner re-reads it
                continue
            tracker.add(m.offset())
            decoded.append((m, await self._decode(m)))
        records = [r for _, r in decoded if r is not None]
        prepared = iter(await self._prepare(records, seen_at))  # one Work per COPY, in order
        for m, record in decoded:
            tp = (m.topic(), m.partition())
            work = next(prepared) if record is not None and record.get("action") == "COPY" else None
            job = Job(tp[0], tp[1], m.offset(), work, self._generation.get(tp, 0))
            key = record["follower"].lower() if record is not None else f"parked:{tp}"
            self.lanes.submit(key, job)
        self.processed += len(decoded)
        await self._apply_backpressure()

    async def _prepare(self, records: list[dict], seen_at: float) -> list[Work]:
        delay = 0.5
        while True:
            try:
                return await self.executor.prepare(records, seen_at)
            except Exception:  # the ledger is unreachable: nothing was sent, nothing is committed past these
                log.exception("prewrite of %d decisions failed; retrying in %.1fs", len(records), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _decode(self, m) -> dict | None:
        try:
            if m.value() is None:
                raise ValueError("message value is null (tombstone)")
            name, record = self.codec.decode(m.value())
            if name != COPY_DECISIONS.event_type:
                raise ValueError(f"execute expects {COPY_DECISIONS.event_type} on this topic, got {name}")
            if record.get("action") == "COPY" and not record.get("intent_id"):
                raise ValueError(f"COPY decision {record['envelope']['event_id']}: intent_id is missing")
            return record
        except Exception as exc:
            future = self._loop.create_future()
            self.runtime.dead_letters.park(topic=m.topic(), partition=m.partition(), offset=m.offset(), key=m.key(),
                                           original=m.value(), error=exc, stage="execute",
                                           on_delivery=self._resolver(future))
            await future
            return None

    def _resolver(self, future: asyncio.Future):
        loop = self._loop

        def on_delivery(err, msg) -> None:  # librdkafka's poll thread
            def resolve():
                if future.done():
                    return
                if err is not None:
                    future.set_exception(RuntimeError(f"{msg.topic()}: {err}"))
                else:
                    future.set_result(None)
            try:
                loop.call_soon_threadsafe(resolve)
            except RuntimeError:  # loop closed at shutdown
                pass
        return on_delivery

    async def emit(self, record: dict) -> None:
        """Produce one ExecutionResult (key = follower) and wait for the broker's ack."""
        future = self._loop.create_future()
        data = self.codec.encode(EXECUTION_RESULTS.event_type, record)
        produce_reliably(self.runtime.producer, self.out_topic, data, key=record["follower"],
                         on_delivery=self._resolver(future))
        try:
            await future
        except RuntimeError as exc:  # the ledger keeps the result; exit and let the restart re-emit it
            self.runtime.output_lost(str(exc))

    # ------------------------------------------------------------------------------ lanes
    async def _run_job(self, job: Job) -> None:
        if job.work is None:
            return
        delay = 1.0
        while True:
            try:
                await self.executor.run(job.work)
                return
            except Exception:
                # DB or venue plumbing failed mid-way: try again from the ledger's view (never re-sign:
                # the row exists now, so the claim path re-sends the stored bytes or looks them up)
                log.exception("intent %s failed; retrying in %.0fs", job.work.intent_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                job.work.fresh = False
                job.work.row = await self.ledger.row(job.work.intent_id) or job.work.row

    def _job_done(self, job: Job, error: BaseException | None) -> None:
        tp = (job.topic, job.partition)
        if error is not None:  # cannot happen (_run_job retries); never commit past it
            log.error("job at %s:%d failed: %r", job.topic, job.offset, error)
            return
        tracker = self._trackers.get(tp)
        if tracker is not None and self._generation.get(tp) == job.generation:
            tracker.done(job.offset)

    def in_flight(self) -> int:
        return sum(t.in_flight for t in self._trackers.values())

    async def _apply_backpressure(self) -> None:
        n = self.in_flight()
        IN_FLIGHT.set(n)
        LANES.set(self.lanes.lanes)
        if not self._paused and n >= self.max_in_flight:
            await self._kafka_call(self._pause, True)
        elif self._paused and n <= self.max_in_flight // 2:
            await self._kafka_call(self._pause, False)

    def _pause(self, pause: bool) -> None:  # consumer thread
        assignment = self.consumer.assignment()
        if assignment:
            (self.consumer.pause if pause else self.consumer.resume)(assignment)
        self._paused = pause

    # ------------------------------------------------------------------------------ offsets
    def _commit_now(self, tps=None, asynchronous: bool = True) -> None:  # consumer thread
        offsets = []
        for tp, tracker in list(self._trackers.items()):
            if tps is not None and tp not in tps:
                continue
            offset = tracker.committable()
            if offset is not None and offset > self._committed.get(tp, -1):
                offsets.append(TopicPartition(tp[0], tp[1], offset))
                self._committed[tp] = offset
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
            except Exception as exc:  # e.g. no longer a member: the next owner re-reads, the ledger dedupes
                log.warning("offset commit failed: %s", exc)

    async def _commit_loop(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            await self._kafka_call(self._commit_now)

    async def _renew_leases(self, done: asyncio.Event) -> None:
        """Keep the lease taken at prewrite on every row still in a lane: a follower's backlog can outlast the
        lease, and a lapsed one lets a reconciler send the row meanwhile (twice, out of the follower's order)."""
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), self.settings.execute_lease_s / 3)
            except asyncio.TimeoutError:
                pass
            held = [job.work.intent_id for job in self.lanes.jobs() if job.work is not None]
            try:
                await self.ledger.renew(held, self.owner)
            except Exception:  # the ledger is unreachable: the leases lapse and the reconciler takes over (safe)
                log.warning("could not renew the leases of %d rows in flight", len(held), exc_info=True)

    # ------------------------------------------------------------------------------ rebalances
    def _on_assign(self, consumer, partitions) -> None:  # consumer thread
        for p in partitions:
            tp = (p.topic, p.partition)
            self._trackers[tp] = OffsetTracker()
            self._generation[tp] = self._generation.get(tp, 0) + 1
            self._committed.pop(tp, None)
        if self._paused and partitions:
            consumer.pause(partitions)
        log.info("execute: assigned %s", [p.partition for p in partitions])

    def _on_revoke(self, consumer, partitions) -> None:  # consumer thread, inside consume()
        tps = {(p.topic, p.partition) for p in partitions}
        if not tps:
            return
        drained = asyncio.run_coroutine_threadsafe(self._drain(tps, REVOKE_GRACE_S), self._loop)
        try:
            drained.result(REVOKE_GRACE_S + 5)
        except Exception:
            log.warning("execute: revoke drain did not finish; abandoning in-flight work to the ledger")
        self._commit_now(tps, asynchronous=False)
        for tp in tps:
            self._trackers.pop(tp, None)
            self._generation[tp] = self._generation.get(tp, 0) + 1  # late finishers no longer count
            self._committed.pop(tp, None)
        log.info("execute: revoked %s", sorted(p for _, p in tps))

    async def _drain(self, tps, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if all(self._trackers[tp].in_flight == 0 for tp in tps if tp in self._trackers):
                return
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------------------ shutdown
    async def _shutdown(self, tasks) -> None:
        if self.lanes is not None:
            await self.lanes.wait_idle(REVOKE_GRACE_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.consumer is not None:
            await self._kafka_call(self._commit_now, None, False)
            await self._kafka_call(self.consumer.close)
        if self.lanes is not None:
            await self.lanes.cancel()
        await self.writer.stop()
        self.runtime.close()
        if self._own_venue:
            await self.venue.aclose()
        if getattr(self, "_meta_client", None) is not None:
            await self._meta_client.aclose()
        if self.chain is not None:
            await self.chain.aclose()
        await self.ledger.close()
        self._kafka.shutdown(wait=False)
        log.info("execute: stopped cleanly (in-flight work drained, offsets committed)")
