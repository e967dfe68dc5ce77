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

The service is the executor's one composition root: besides the consumer, ledger, venue and reconciler it folds
config.changes (follower accounts, follow and follower enables) and control.commands (kill, pauses) in two tails,
and starts consuming only once both have read their topic to the end; the executor asks them before every POST.
A decision that decodes but cannot be executed (safety review D10) is parked in dead.letters with its bytes. If
the ledger stays unreachable past `execute_ledger_down_exit_s`, `run` raises LedgerUnreachable and the process
exits 70 to be restarted (D3).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import Gauge

from horus.codec import Codec, default_codec
from horus.db.engine import refuses_a_value
from horus.domain.control import ControlState, apply_control, apply_control_tombstone
from horus.domain.copy_check import BadCopyDecision, check_copy_decision
from horus.domain.send_gate import (
    Blocked,
    ExecutorConfig,
    apply_executor_config,
    apply_executor_config_tombstone,
    blocked,
)
from horus.execution.accounts import Accounts
from horus.execution.crash import CrashPoints
from horus.execution.executor import Executor, Work
from horus.execution.lanes import KeyedLanes
from horus.execution.ledger import GroupWriter, Ledger, LedgerUnreachable, Row
from horus.execution.offsets import OffsetTracker
from horus.execution.reconcile import Reconciler
from horus.execution.venue_clock import VenueClock
from horus.kafka.client import fetch_available, make_consumer, produce_reliably
from horus.kafka.config_tail import ConfigTail
from horus.kafka.output import Output
from horus.settings import Settings
from horus.topics import CONTROL_COMMANDS, COPY_DECISIONS, EXECUTION_RESULTS
from horus.venue.guard import require_venue_async
from horus.venue.polymarket.evidence import ChainLookup, Lookup

log = logging.getLogger("horus.execution")

IN_FLIGHT = Gauge("horus_execute_in_flight", "Decisions consumed and not finished")
LANES = Gauge("horus_execute_lanes", "Followers with work in flight")
LEDGER_DOWN = Gauge("horus_execute_ledger_unreachable_seconds", "How long the ledger has been unreachable (0: up)")
REVOKE_GRACE_S = 10.0
VENUE_CLOCK_EVERY_S = 60.0  # clocks drift slowly; one /time a minute keeps the bounds honest
TAILS_READY_TIMEOUT_S = 120.0
# errors that mean "the ledger cannot be reached now": retried (unless the server refused a value: the batch's data);
# anything else in a batch is the batch's data
LEDGER_DOWN_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass
class Job:
    topic: str
    partition: int
    offset: int
    work: Work | None  # None: nothing to execute (SKIP, parked) but still ordered behind the follower
    generation: int  # assignment generation of its partition when consumed


class SwitchesUnknown(RuntimeError):
    """A tail of config.changes or control.commands died: the switches and enables it folds are unknown."""


class ExecuteService:
    """Runs until `stop` is set. Construct with everything the executor needs (tests pass fakes of nothing:
    the real ledger, Kafka and the simulator). `follower_account(address)` gives a FollowerConfig (an accounts
    file); None: the followers folded from config.changes."""

    def __init__(
        self,
        settings: Settings,
        *,
        follower_account: Callable[[str], Any] | None,
        secrets: Callable[[str], Any] | None,
        market_info: Callable[[str], Any] | None = None,
        venue: Any = None,
        chain: ChainLookup | None = None,
        output: Output | None = None,
        codec: Codec | None = None,
        group_id: str | None = None,
        reconcile: bool = True,
        resend_unknown: int = 1,
        backoff_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.codec = codec or default_codec()
        self.output = output or Output(settings, codec=self.codec)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.topic = settings.topic(COPY_DECISIONS.name)
        self.out_topic = settings.topic(EXECUTION_RESULTS.name)
        self.group_id = group_id or f"{settings.app_id}-execute"
        self.configs = ExecutorConfig()
        self.control = ControlState()
        self.follower_account = follower_account or (lambda address: self.configs.config.followers.get(address))
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
        # set by _setup before any use, as the ledger and the writer are
        self._loop: asyncio.AbstractEventLoop
        self.consumer: Consumer | None = None  # None: not consuming (`reconcile_only`)
        self.executor: Executor
        self.reconciler: Reconciler | None = None
        self.lanes: KeyedLanes
        self.tails: list[ConfigTail] = []
        self.fatal: BaseException | None = None  # set when the service must stop and its caller exit 70
        self.processed = 0

    # ------------------------------------------------------------------------------ wiring
    async def _setup(self, consume: bool = True) -> None:
        s = self.settings
        await require_venue_async(s)  # paper: the simulator or nothing (D1); live: a loud banner
        self._loop = asyncio.get_running_loop()
        self._start_tails()  # they read while the rest is set up (and the consumer group is joined)
        self.ledger = Ledger(s.database_url, connections=4, statement_timeout_s=max(30.0, s.venue_timeout_s))
        await self.ledger.open()
        self.writer = GroupWriter(self.ledger)
        self.writer.start()
        crash = CrashPoints.from_env()
        self._own_venue = self.venue is None and s.venue_mode != "dry-run"
        if self._own_venue:
            from horus.venue.polymarket.clob import ClobHttp

            # one aiohttp session; a socket per unfinished decision, so a POST never waits for a connection
            self.venue = ClobHttp(
                s.clob_url,
                chain_id=s.venue_chain_id,
                timeout_s=s.venue_timeout_s,
                max_connections=self.max_in_flight,
                on_post_sent=lambda: crash.reached("after_post_sent"),
            )
        if self.market_info_fn is None:
            import httpx

            from horus.venue.polymarket.metadata import MarketMetadata

            self._meta_client = httpx.AsyncClient(timeout=10.0)
            self.market_info_fn = MarketMetadata(s, self._meta_client).get
        accounts = Accounts(self.follower_account, self.secrets, mode=s.venue_mode, venue=self.venue)
        lookup = Lookup(self.venue, self.chain) if self.venue is not None else None
        self.venue_clock = VenueClock(self.venue)
        await self.venue_clock.measure()
        self.executor = Executor(
            mode=s.venue_mode,
            ledger=self.ledger,
            writer=self.writer,
            accounts=accounts,
            venue=self.venue,
            lookup=lookup,
            market_info=self.market_info_fn,
            emit=self.emit,
            owner=self.owner,
            chain_id=s.venue_chain_id,
            builder=s.builder_code.lower(),
            default_ttl_s=s.execute_default_ttl_s,
            lease_s=s.execute_lease_s,
            resend_unknown=self.resend_unknown,
            backoff_s=self.backoff_s,
            gate=self.gate,
            absent_after_s=s.venue_timeout_s + s.execute_lease_s + 1.0,
            recheck_base_s=s.reconcile_interval_s,
            recheck_cap_s=s.reconcile_max_backoff_s,
            crash=crash,
            venue_clock=self.venue_clock,
            send_margin_s=s.execute_send_margin_s,
        )
        if lookup is not None:
            self.reconciler = Reconciler(
                self.executor,
                self.ledger,
                min_age_s=s.reconcile_min_age_s,
                lease_s=s.execute_lease_s,
                alert_after_s=s.reconcile_alert_after_s,
            )
        self.lanes = KeyedLanes(self._run_job, self._job_done)
        if not consume:
            await self._tails_ready()
            return
        self.consumer = make_consumer(
            s,
            self.group_id,
            **{
                "partition.assignment.strategy": "cooperative-sticky",
                "max.poll.interval.ms": 300_000,
                "session.timeout.ms": int(s.session_timeout_s * 1000),
                "heartbeat.interval.ms": int(min(3.0, s.session_timeout_s / 3) * 1000),
            },
        )

    def _start_tails(self) -> None:
        """config.changes and control.commands, folded from the beginning on threads of their own; the executor
        sends nothing before both are read to the end (`_tails_ready`: a kill switch thrown before it started
        must already hold)."""
        s = self.settings
        lock = threading.Lock()
        self.tails = [
            ConfigTail(
                s,
                self.codec,
                self.configs,
                lock,
                dead_letters=self.output.dead_letters,
                stage="execute-config",
                apply=apply_executor_config,
                tombstone=apply_executor_config_tombstone,
            ),
            ConfigTail(
                s,
                self.codec,
                self.control,
                lock,
                dead_letters=self.output.dead_letters,
                stage="execute-control",
                apply=apply_control,
                tombstone=apply_control_tombstone,
                topic=CONTROL_COMMANDS,
            ),
        ]
        self.output.start()
        for tail in self.tails:
            tail.start()

    async def _tails_ready(self) -> None:
        deadline = time.monotonic() + TAILS_READY_TIMEOUT_S
        for tail in self.tails:
            ready = await asyncio.to_thread(tail.ready.wait, max(0.0, deadline - time.monotonic()))
            if tail.failed is not None:
                raise RuntimeError(f"execute: cannot fold {tail.topic}: {tail.failed}") from tail.failed
            if not ready:
                raise RuntimeError(f"execute: {tail.topic} was not read to its end within {TAILS_READY_TIMEOUT_S:g}s")

    def _stop_tails(self) -> None:
        for tail in self.tails:
            tail.stop()

    def gate(self, row: Row) -> Blocked | None:
        """What forbids POSTing this row now, as the tails last folded it (plain dict reads: no lock needed). A tail
        that died leaves the switches frozen: nothing may be sent on them, and the service stops (exit 70) so a
        restart folds them again."""
        dead = next((t for t in self.tails if t.failed is not None), None)
        if dead is not None:
            if self.fatal is None:
                log.critical("execute: %s is no longer folded (%s): stopping; nothing is sent", dead.topic, dead.failed)
                self.fatal = SwitchesUnknown(f"{dead.topic} is no longer folded: {dead.failed}")
            raise self.fatal
        account = self.follower_account(row.follower)
        return blocked(
            self.control,
            self.configs,
            follower=row.follower,
            follow_id=row.follow_id,
            condition_id=row.condition_id,
            token_id=row.token_id,
            follower_enabled=account is None or getattr(account, "enabled", True),
        )

    async def _kafka_call(self, fn, *args, **kwargs):
        return await self._loop.run_in_executor(self._kafka, lambda: fn(*args, **kwargs))

    # ------------------------------------------------------------------------------ main loop
    async def run(self, stop: threading.Event | asyncio.Event) -> None:
        try:
            await self._setup()
        except BaseException:
            self._stop_tails()
            raise
        done = asyncio.Event()
        tasks = [
            asyncio.create_task(self._commit_loop(done), name="execute-commits"),
            asyncio.create_task(self._renew_leases(done), name="execute-leases"),
            asyncio.create_task(self._watch_ledger(done), name="execute-ledger-watch"),
            asyncio.create_task(self._read_venue_clock(done), name="execute-venue-clock"),
        ]
        try:
            assert self.consumer is not None  # _setup made it: this service consumes
            await self._kafka_call(
                self.consumer.subscribe,
                [self.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_revoke,
            )
            await self._tails_ready()  # the group is joined meanwhile; nothing is sent before both are read
            if self.reconciler is not None and self.do_reconcile:
                tasks.append(
                    asyncio.create_task(
                        self.reconciler.run(done, self.settings.reconcile_interval_s), name="reconciler"
                    )
                )
            log.info("execute: mode %s, group %s, owner %s", self.settings.venue_mode, self.group_id, self.owner)
            while not stop.is_set() and self.fatal is None:
                await self._poll_once()
        finally:
            done.set()
            await self._shutdown(tasks)
        if self.fatal is not None:
            raise self.fatal

    async def _read_venue_clock(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), VENUE_CLOCK_EVERY_S)
            except TimeoutError:
                await self.venue_clock.measure()

    async def _watch_ledger(self, done: asyncio.Event) -> None:
        """Exit (through `fatal`) rather than hang when the ledger stays unreachable: nothing can be prewritten or
        recorded, and a restarted process starts from the committed offsets with a fresh pool."""
        bound = self.settings.execute_ledger_down_exit_s
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), 1.0)
            except TimeoutError:
                pass
            down = self.ledger.unreachable_for()
            LEDGER_DOWN.set(down)
            if down > bound and self.fatal is None:
                log.critical(
                    "execute: the ledger has been unreachable for %.0fs (bound %.0fs): exiting to be restarted",
                    down,
                    bound,
                )
                self.fatal = LedgerUnreachable(f"ledger unreachable for {down:.0f}s")

    async def reconcile_only(self, stop: asyncio.Event, *, once: bool) -> list:
        """Reconciliation rounds without consuming (`horus reconcile`); returns the last round's reports."""
        try:
            await self._setup(consume=False)
        except BaseException:
            self._stop_tails()
            raise
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
                except TimeoutError:
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
        copies = [r for _, r in decoded if r is not None and r.get("action") == "COPY"]
        prepared = iter(await self._prepare(copies, seen_at))  # one Work (or why not) per COPY, in order
        for m, record in decoded:
            tp = (m.topic(), m.partition())
            work = next(prepared) if record is not None and record.get("action") == "COPY" else None
            if isinstance(work, BaseException) or (work is not None and work.row is None):
                why = (
                    work
                    if isinstance(work, BaseException)
                    else RuntimeError(
                        f"intent {work.intent_id}: another ledger row holds follow {work.decision['follow_id']} and "
                        f"leader fill {work.decision['leader_fill_id']}"
                    )
                )
                await self._park(m, why)
                work = None
            job = Job(tp[0], tp[1], m.offset(), work, self._generation.get(tp, 0))
            key = record["follower"].lower() if record is not None else f"parked:{tp}"
            self.lanes.submit(key, job)
        self.processed += len(decoded)
        await self._apply_backpressure()

    async def _prepare(self, records: list[dict], seen_at: float) -> list[Work | BaseException]:
        """One Work per record, or the error that keeps that record from being prewritten (it is then parked).
        A ledger that cannot be reached is waited for (nothing was sent, nothing is committed past these); any
        other failure is a record's data: the batch is retried one record at a time so one bad record never
        holds the others (safety review D10)."""
        if not records:
            return []
        try:
            return list(await self._prewrite_when_reachable(records, seen_at))
        except LedgerUnreachable:
            raise
        except Exception:
            log.exception("prewrite of a batch of %d decisions failed; retrying them one by one", len(records))
        out: list[Work | BaseException] = []
        for record in records:
            try:
                out.extend(await self._prewrite_when_reachable([record], seen_at))
            except LedgerUnreachable:
                raise
            except Exception as exc:
                out.append(exc)
        return out

    async def _prewrite_when_reachable(self, records: list[dict], seen_at: float) -> list[Work]:
        delay = 0.5
        while True:
            try:
                return await self.executor.prepare(records, seen_at)
            except LEDGER_DOWN_ERRORS as exc:
                if refuses_a_value(exc):
                    raise
                if self.fatal is not None:
                    raise self.fatal from exc
                log.warning(
                    "prewrite of %d decisions: the ledger is unreachable; retrying in %.1fs",
                    len(records),
                    delay,
                    exc_info=True,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _decode(self, m) -> dict | None:
        try:
            if m.value() is None:
                raise ValueError("message value is null (tombstone)")
            name, record = self.codec.decode(m.value())
            if name != COPY_DECISIONS.event_type:
                raise ValueError(f"execute expects {COPY_DECISIONS.event_type} on this topic, got {name}")
            if record.get("action") == "COPY":
                check_copy_decision(record, time.time_ns() // 1000)
            elif record.get("action") != "SKIP":
                raise BadCopyDecision(f"action: {record.get('action')!r} is not COPY or SKIP")
            return record
        except Exception as exc:
            await self._park(m, exc)
            return None

    async def _park(self, m, error: BaseException) -> None:
        """The message in dead.letters with its bytes, once the broker has it (its offset may then be committed)."""
        future = self._loop.create_future()
        self.output.dead_letters.park(
            topic=m.topic(),
            partition=m.partition(),
            offset=m.offset(),
            key=m.key(),
            original=m.value(),
            error=error,
            stage="execute",
            on_delivery=self._resolver(future),
        )
        await future

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
        produce_reliably(
            self.output.producer, self.out_topic, data, key=record["follower"], on_delivery=self._resolver(future)
        )
        try:
            await future
        except RuntimeError as exc:  # the ledger keeps the result; exit and let the restart re-emit it
            self.output.output_lost(str(exc))

    # ------------------------------------------------------------------------------ lanes
    async def _run_job(self, job: Job) -> None:
        if job.work is None:
            return
        delay = 1.0
        retrying = False
        while True:
            try:
                if retrying:  # continue from the ledger's view of the row
                    job.work.row = await self.ledger.row(job.work.intent_id) or job.work.row
                    job.work.fresh = False
                await self.executor.run(job.work)
                return
            except Exception:
                # DB or venue plumbing failed mid-way (the reload above included: D9): try again from the ledger's
                # view, never re-signing -- the row exists, so the claim path re-sends its bytes or looks them up
                log.exception("intent %s failed; retrying in %.0fs", job.work.intent_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                retrying = True

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
        assert self.consumer is not None  # only a consuming service is paused
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
            assert self.consumer is not None  # only a consuming service has offsets to commit
            try:
                # confluent-kafka's overloads take a literal True or False for `asynchronous`, never a bool
                self.consumer.commit(offsets=offsets, asynchronous=asynchronous)  # type: ignore[call-overload]
            except Exception as exc:  # e.g. no longer a member: the next owner re-reads, the ledger dedupes
                log.warning("offset commit failed: %s", exc)

    async def _commit_loop(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), 0.5)
            except TimeoutError:
                pass
            await self._kafka_call(self._commit_now)

    async def _renew_leases(self, done: asyncio.Event) -> None:
        """Keep the lease taken at prewrite on every row still in a lane: a follower's backlog can outlast the
        lease, and a lapsed one lets a reconciler send the row meanwhile (twice, out of the follower's order)."""
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), self.settings.execute_lease_s / 3)
            except TimeoutError:
                pass
            held = [job.work.intent_id for job in self.lanes.jobs() if job.work is not None]
            at = time.monotonic()  # before the statement: each lease it refreshes lasts at least from here
            try:
                renewed = await self.ledger.renew(held, self.owner)
            except Exception:  # the ledger is unreachable: the leases lapse and the reconciler takes over (safe;
                # a lane then re-claims its row before its next POST)
                log.warning("could not renew the leases of %d rows in flight", len(held), exc_info=True)
                continue
            self.executor.leases_confirmed(held, renewed, at)

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
        self._stop_tails()
        self.output.close()
        if self._own_venue:
            await self.venue.aclose()
        if getattr(self, "_meta_client", None) is not None:
            await self._meta_client.aclose()
        if self.chain is not None:
            await self.chain.aclose()
        await self.ledger.close()
        self._kafka.shutdown(wait=False)
        log.info("execute: stopped cleanly (in-flight work drained, offsets committed)")
