"""The chain source: OrderFilled logs of the followed leaders -> leader.fills, exactly once.

One asyncio loop over web3's AsyncWeb3 + WebSocketProvider (ws:// on the RPC port). Each (re)connect:

1. ``sink.recover()`` (pending claims of a crash), read the cursor (last fully emitted block, in Postgres);
2. subscribe ``newHeads`` and ``logs`` (exchanges x OrderFilled x followed leaders as maker) FIRST, then
   backfill from the cursor with chunked ``eth_getLogs`` up to head - confirmations, so nothing falls
   between the backfill and the live stream;
3. live: a head (or, with 0 confirmations, a log) for block N makes the source fetch blocks
   cursor+1..N-confirmations with ``eth_getLogs``: whole blocks, so every log of a transaction is summed
   into one LeaderFill. The stream is the trigger; the range query is the truth. The cursor moves only
   after the sink returned.

Reorgs: a log the node reports ``removed``, or a new head that replaces a block already announced (same
height with another hash, or another parent), rewinds the cursor to the fork and emits a LeaderFillRetracted
(+ ERROR log, counter) for each emitted fill that is not on the new chain (the fills emitted per block are
remembered in memory for the last few hundred blocks; a restart forgets them). Undecodable logs are parked in
dead.letters with their raw JSON, and so are the fills of one LeaderFill whose summed amounts do not fit it (as
JSON), so no range is retried forever; a fill dated in the future is refused by the sink. The follow graph
(config.changes tail) gives the leader set; a change resubscribes and catches up from the cursor. A watchdog drops a socket that is silent while the head moves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from eth_typing import HexStr
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from web3 import AsyncWeb3, WebSocketProvider
from web3.types import FilterParams, LogReceipt, LogsSubscriptionArg

from horus.codec import default_codec
from horus.db.models import IngestCursor
from horus.domain.fills import aggregate_apart
from horus.domain.follow_graph import FollowGraph, apply_config_change, apply_tombstone, enabled_leaders
from horus.ingest import logic
from horus.ingest.sink import FillSink
from horus.kafka.config_tail import ConfigTail
from horus.settings import Settings
from horus.venue.polymarket.exchanges import ExchangeBook

log = logging.getLogger("horus.ingest.chain")

SOURCE = "chain"

LAG = Histogram(
    "horus_ingest_detection_lag_seconds",
    "Block timestamp -> fill emitted",
    ["source"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 3600),
)
CURSOR = Gauge("horus_ingest_cursor_block", "Last block fully emitted", ["source"])
RECONNECTS = Counter("horus_ingest_reconnects_total", "WebSocket (re)connections after the first", ["source"])
STALLS = Counter("horus_ingest_stalls_total", "Silent sockets dropped by the watchdog", ["source"])
BAD_LOGS = Counter("horus_ingest_bad_logs_total", "Logs parked as dead letters", ["source", "reason"])
REORGS = Counter("horus_ingest_removed_logs_total", "Logs reported removed by a reorg", ["source"])


class Reconnect(Exception):
    """Drop this connection and start over (watchdog, dropped socket)."""


class SourceFailed(RuntimeError):
    """Not worth a reconnect (the follow graph is gone): the source stops and the command exits non-zero."""


def _hex(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value).lower()


# ---------------------------------------------------------------------------------------- cursors
def read_cursor(engine, source: str) -> tuple[int, int] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(IngestCursor.block_number, IngestCursor.log_index).where(IngestCursor.source == source)
        ).first()
    return None if row is None else (row.block_number, row.log_index)


def write_cursor(engine, source: str, position: tuple[int, int]) -> None:
    block, index = position
    stmt = insert(IngestCursor).values(source=source, block_number=block, log_index=index)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source"],
        set_={
            "block_number": stmt.excluded.block_number,
            "log_index": stmt.excluded.log_index,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    with engine.begin() as conn:
        conn.execute(stmt)


# ---------------------------------------------------------------------------------------- source
class ChainSource:
    def __init__(
        self,
        settings: Settings,
        book: ExchangeBook,
        *,
        leaders: Callable[[], frozenset[str]],
        confirmations: int | None = None,
        from_block: int | None = None,
        source: str = SOURCE,
        sink: FillSink | None = None,
    ) -> None:
        self.settings = settings
        self.book = book
        self.leaders_fn = leaders
        self.confirmations = settings.confirmations if confirmations is None else confirmations
        self.from_block = from_block
        self.source = source
        # the cursor belongs to one chain: set to source@chain-id:genesis-hash on connect, so a reset dev
        # chain (a new anvil) or another network never resumes from a foreign position
        self.cursor_key = source
        self.sink = sink or FillSink(settings, source)
        self.url = logic.ws_url(settings.eth_rpc_url)
        self.chunk = settings.backfill_chunk_blocks
        self.stop_event: asyncio.Event | None = None
        self.w3: AsyncWeb3 | None = None
        self.cursor: tuple[int, int] | None = None
        self.leaders: frozenset[str] = frozenset()
        self.block_times: dict[int, int] = {}
        self.connections = 0
        self.emitted = 0
        self._backoff = 0.2
        self._subs: dict[str, HexStr] = {}  # kind -> subscription id
        # reorg detection from newHeads: block -> hash announced, and the fills emitted from each block
        self.heads: dict[int, str] = {}
        self.emitted_by_block: dict[int, list] = {}

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        self.stop_event = stop
        while not stop.is_set():
            try:
                await self._session()
            except (asyncio.CancelledError, SourceFailed):
                raise
            except Exception as exc:  # noqa: BLE001 - every other failure means: reconnect and backfill
                if stop.is_set():
                    break
                log.warning("chain source: %s: %s; reconnecting in %.1fs", type(exc).__name__, exc, self._backoff)
                try:
                    await asyncio.wait_for(stop.wait(), self._backoff)
                except TimeoutError:
                    pass
                self._backoff = min(self._backoff * 2, 5.0)
            finally:
                await self._disconnect()

    def drop_socket(self) -> None:
        """Debug hook: close the WebSocket under the running session (the source must reconnect)."""
        ws = getattr(getattr(self.w3, "provider", None), "_ws", None)
        if ws is not None:
            log.warning("debug: dropping the WebSocket")
            asyncio.ensure_future(ws.close())

    def silence(self) -> None:
        """Debug hook: unsubscribe everything server-side, leaving the socket open but silent."""
        if self.w3 is not None:
            log.warning("debug: unsubscribing (socket stays open)")
            asyncio.ensure_future(self._unsubscribe_all())

    async def _unsubscribe_all(self) -> None:
        assert self.w3 is not None  # only a session's debug hook gets here
        for sub in list(self._subs.values()):
            await self.w3.eth.unsubscribe(sub)

    async def _disconnect(self) -> None:
        w3, self.w3 = self.w3, None
        if w3 is not None:
            try:
                await asyncio.wait_for(w3.provider.disconnect(), 5)
            except Exception:  # noqa: BLE001 - it is going away anyway
                pass

    # ------------------------------------------------------------------ one connection
    async def _session(self) -> None:
        provider = WebSocketProvider(self.url, max_connection_retries=1, request_timeout=30)
        self.w3 = w3 = AsyncWeb3(provider)
        await w3.provider.connect()
        if self.connections:
            RECONNECTS.labels(self.source).inc()
        self.connections += 1
        self._backoff = 0.2  # connected: the next failure starts the backoff again
        self.sink.recover()
        self._subs = {}
        self._subs["heads"] = await w3.eth.subscribe("newHeads")
        self.leaders = self.leaders_fn()
        await self._subscribe_logs()
        head = await w3.eth.block_number
        self.seen_head: int = head
        self.last_head_at = time.time()
        if self.cursor_key == self.source:
            genesis = await w3.eth.get_block(0)
            self.cursor_key = f"{self.source}@{await w3.eth.chain_id}:{genesis['hash'].hex()}"
        stored = read_cursor(self.sink.engine, self.cursor_key)
        if stored is None:
            first = logic.start_block(None, self.from_block, head, self.confirmations)
            self._set_cursor((first - 1, logic.NO_LOG))
        else:
            self.cursor = stored
            CURSOR.labels(self.source).set(stored[0])
        log.info(
            "chain source connected to %s (connection %d): head %d, cursor %s, %d leaders, confirmations %d",
            self.url,
            self.connections,
            head,
            self.cursor,
            len(self.leaders),
            self.confirmations,
        )
        await self._catch_up(logic.safe_head(head, self.confirmations))
        await self._live()

    async def _subscribe_logs(self) -> None:
        assert self.w3 is not None  # called within a session
        old = self._subs.pop("logs", None)
        if old is not None:
            await self.w3.eth.unsubscribe(old)
        if self.leaders:
            # logs_filter's dict is web3's filter: the exchanges' addresses and the topics
            subscription = cast(LogsSubscriptionArg, logic.logs_filter(self.book, self.leaders))
            self._subs["logs"] = await self.w3.eth.subscribe("logs", subscription)

    async def _live(self) -> None:
        assert self.w3 is not None and self.stop_event is not None  # called within a session, started by run()
        w3 = self.w3
        queue: asyncio.Queue = asyncio.Queue()

        async def reader() -> None:
            try:
                async for message in w3.socket.process_subscriptions():
                    queue.put_nowait(message)
                queue.put_nowait(Reconnect("subscription stream ended"))
            except BaseException as exc:  # noqa: BLE001 - handed to the loop below
                queue.put_nowait(exc)

        task = asyncio.create_task(reader())
        last_message_at = time.time()
        last_probe_at = 0.0
        try:
            while not self.stop_event.is_set():
                try:
                    message = await asyncio.wait_for(queue.get(), 0.2)
                except TimeoutError:
                    message = None
                now = time.time()
                if isinstance(message, BaseException):
                    raise Reconnect(f"socket: {type(message).__name__}: {message}") from message
                if message is not None:
                    last_message_at = now
                    await self._on_message(message)
                leaders = self.leaders_fn()
                if leaders != self.leaders:
                    log.info("leader set changed: %d -> %d leaders; resubscribing", len(self.leaders), len(leaders))
                    self.leaders = leaders
                    await self._subscribe_logs()
                    await self._catch_up(logic.safe_head(self.seen_head, self.confirmations))
                if (
                    now - last_message_at >= self.settings.stall_seconds
                    and now - last_probe_at >= 1.0
                    or (
                        self.settings.max_head_age_seconds
                        and now - self.last_head_at >= self.settings.max_head_age_seconds
                    )
                ):
                    last_probe_at = now
                    try:
                        probed = await asyncio.wait_for(self.w3.eth.block_number, 5)
                    except Exception:  # noqa: BLE001 - a failed probe is evidence of a stall
                        probed = None
                    reason = logic.stall_reason(
                        now=now,
                        last_message_at=last_message_at,
                        stall_seconds=self.settings.stall_seconds,
                        seen_head=self.seen_head,
                        probed_head=probed,
                        last_head_at=self.last_head_at,
                        max_head_age=self.settings.max_head_age_seconds,
                    )
                    if reason:
                        STALLS.labels(self.source).inc()
                        raise Reconnect(f"stall: {reason}")
        finally:
            task.cancel()

    async def _on_message(self, message: Any) -> None:
        sub = message.get("subscription")
        result = message.get("result")
        if sub == self._subs.get("heads"):
            number = int(result["number"])
            await self._check_reorg(number, _hex(result.get("hash")), _hex(result.get("parentHash")))
            self.last_head_at = time.time()
            self.seen_head = max(self.seen_head, number)
            stamp = result.get("timestamp")
            if stamp is not None:
                self.block_times[number] = int(stamp)
            await self._catch_up(logic.safe_head(self.seen_head, self.confirmations))
        elif sub == self._subs.get("logs"):
            if result.get("removed"):
                await self._on_removed(result)
            elif self.confirmations == 0:
                block, _ = logic.log_position(result)
                self.seen_head = max(self.seen_head, block)
                await self._catch_up(block)

    async def _on_removed(self, raw: Any) -> None:
        REORGS.labels(self.source).inc()
        batch = logic.decode_batch([raw], self.book)
        for fill in batch.removed:
            block = fill.block_number or 0
            if self.cursor is not None and block <= self.cursor[0]:
                self._set_cursor((block - 1, logic.NO_LOG))  # re-read the new chain from the fork
            if self.sink.is_claimed(fill.event_id):
                self.sink.retract(
                    fill.event_id,
                    fill.leader,
                    fill.tx_hash,
                    block,
                    fill.block_hash,
                    f"reorg: log {fill.log_index} of block {block} ({fill.block_hash}) removed",
                )
            else:
                log.error(
                    "REORG: removed log of leader %s tx %s block %d (its fill was not produced)",
                    fill.leader,
                    fill.tx_hash,
                    block,
                )

    async def _check_reorg(self, number: int, block_hash: str | None, parent: str | None) -> None:
        """A head that replaces a block we saw (same height, other hash; or another parent) is a reorg.
        Nodes that send ``removed`` logs are handled in :meth:`_on_removed`; this catches the rest (anvil)."""
        if block_hash is None:
            return
        same, before = self.heads.get(number), self.heads.get(number - 1)
        if (same is not None and same != block_hash) or (
            before is not None and parent is not None and before != parent
        ):
            await self._handle_reorg(number)
        self.heads[number] = block_hash
        if len(self.heads) > 512:
            for block in sorted(self.heads)[:256]:
                del self.heads[block]

    async def _handle_reorg(self, number: int) -> None:
        assert self.w3 is not None  # called within a session
        fork = number - 1  # the newest block both chains share
        while fork in self.heads and fork > number - 256:
            canonical = _hex((await self.w3.eth.get_block(fork))["hash"])
            if canonical == self.heads[fork]:
                break
            fork -= 1
        REORGS.labels(self.source).inc()
        replaced = [fill for block, fills in self.emitted_by_block.items() if block > fork for fill in fills]
        log.error("REORG: head %d replaced blocks after %d; %d emitted fills to re-check", number, fork, len(replaced))
        if replaced:
            still = set()
            if self.leaders:
                logs = await self.w3.eth.get_logs(
                    cast(
                        FilterParams, logic.logs_filter(self.book, self.leaders, fork + 1, max(number, self.seen_head))
                    )
                )
                still = {f.event_id for f in logic.decode_batch(logs, self.book).fills}
            for fill in replaced:
                if fill.event_id not in still:
                    self.sink.retract(
                        fill.event_id,
                        fill.leader,
                        fill.tx_hash,
                        fill.block_number or 0,
                        fill.block_hash,
                        f"reorg: block {fill.block_number} ({fill.block_hash}) left the chain "
                        f"(fork after block {fork})",
                    )
        for table in (self.heads, self.emitted_by_block, self.block_times):
            for block in [b for b in table if b > fork]:
                del table[block]
        if self.cursor is not None and self.cursor[0] > fork:
            self._set_cursor((fork, logic.NO_LOG))

    # ------------------------------------------------------------------ catch up
    async def _catch_up(self, target: int) -> None:
        if self.cursor is None or target <= self.cursor[0]:
            return
        assert self.w3 is not None  # called within a session
        for lo, hi in logic.block_ranges(self.cursor[0] + 1, target, self.chunk):
            logs: list[LogReceipt] = []
            if self.leaders:
                logs = await self.w3.eth.get_logs(
                    cast(FilterParams, logic.logs_filter(self.book, self.leaders, lo, hi))
                )
            await self._emit_range(logs, hi)

    async def _emit_range(self, logs: list[LogReceipt], range_end: int) -> None:
        batch = logic.decode_batch(logs, self.book)
        for raw, error in batch.bad:
            self._park(raw, error)
        for block in batch.blocks_needing_time() - self.block_times.keys():
            if self.w3 is None:
                raise RuntimeError(f"block {block}: its time needs the node, and no session is open")
            self.block_times[block] = int((await self.w3.eth.get_block(block))["timestamp"])
        records, apart = aggregate_apart(batch.fills, self.leaders, source=self.source, block_time=self.block_times)
        for fills, overflow in apart:  # a sum beyond the schema: parked, or the range would be retried forever
            self._park_fills(fills, overflow)
        if records:
            emitted = {r["envelope"]["event_id"] for r in records}
            for fill in batch.fills:
                if fill.event_id in emitted and fill.block_number is not None:
                    self.emitted_by_block.setdefault(fill.block_number, []).append(fill)
            produced = self.sink.emit(records)
            self.emitted += len(produced)
            now = time.time()
            for record in records:
                LAG.labels(self.source).observe(max(0.0, now - record["envelope"]["occurred_at_us"] / 1e6))
        elif batch.bad or apart:
            self.sink.flush()
        self._set_cursor(logic.cursor_after(range_end, batch))
        if len(self.block_times) > 10_000:
            for block in sorted(self.block_times)[:5_000]:
                del self.block_times[block]
        if len(self.emitted_by_block) > 512:
            for block in sorted(self.emitted_by_block)[:256]:
                del self.emitted_by_block[block]

    def _park(self, raw: Any, error: Exception) -> None:
        reason = getattr(error, "reason", "invalid")
        BAD_LOGS.labels(self.source, reason).inc()
        try:
            block, index = logic.log_position(raw)
        except (KeyError, TypeError, ValueError):
            block, index = 0, 0
        tx = raw.get("transactionHash") if hasattr(raw, "get") else None
        tx = ("0x" + bytes(tx).hex()) if isinstance(tx, (bytes, bytearray)) else tx
        self.sink.dead_letters.park(
            topic=f"chain:{self.settings.chain_id}",
            partition=index,
            offset=block,
            key=tx,
            original=logic.raw_log_json(raw),
            error=error,
            stage="ingest-chain",
        )

    def _park_fills(self, fills: list, error: Exception) -> None:
        """The decoded fills of one LeaderFill that cannot be produced, as JSON, at the first log's position."""
        BAD_LOGS.labels(self.source, "bad-sum").inc()
        first = min(fills, key=lambda f: (f.block_number or 0, f.log_index or 0))
        original = json.dumps([dataclasses.asdict(f) for f in fills], sort_keys=True, default=str).encode()
        self.sink.dead_letters.park(
            topic=f"chain:{self.settings.chain_id}",
            partition=first.log_index or 0,
            offset=first.block_number or 0,
            key=first.tx_hash,
            original=original,
            error=error,
            stage="ingest-chain",
        )

    def _set_cursor(self, position: tuple[int, int]) -> None:
        write_cursor(self.sink.engine, self.cursor_key, position)
        self.cursor = position
        CURSOR.labels(self.source).set(position[0])


# ---------------------------------------------------------------------------------------- leader set
class LeaderSet:
    """The followed leaders, from a config.changes tail (folded from the beginning, then live)."""

    def __init__(self, settings: Settings) -> None:
        self.graph = FollowGraph()
        self.lock = threading.Lock()
        self.tail = ConfigTail(
            settings,
            default_codec(),
            self.graph,
            self.lock,
            apply=apply_config_change,
            tombstone=apply_tombstone,
            stage="ingest-config",
        )

    def start(self, timeout: float = 60.0) -> None:
        self.tail.start()
        if not self.tail.ready.wait(timeout):
            raise TimeoutError("config.changes was not read to its end in time")
        if self.tail.failed is not None:
            raise SourceFailed(f"config tail failed: {self.tail.failed}") from self.tail.failed

    def __call__(self) -> frozenset[str]:
        if self.tail.failed is not None:
            raise SourceFailed(f"config tail failed: {self.tail.failed}")
        with self.lock:
            return enabled_leaders(self.graph)

    def stop(self) -> None:
        self.tail.stop()
