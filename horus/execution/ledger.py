"""The ledger (`copy_trades`): prewrite before any POST, sign once, record every outcome.

Rules this module enforces (DESIGN invariants 1-4):
- `prewrite` inserts a group of intents in ONE transaction with `ON CONFLICT DO NOTHING` and returns
  the keys it inserted: only those may be POSTed by the caller as fresh orders. It commits before
  returning, so every POST follows its own committed row.
- The signed order and the exact body text are stored with the row and never replaced: retries and
  redeliveries re-send those bytes.
- Outcomes are written with compare-and-set on `result_seq`: each ExecutionResult sequence number
  is handed out once, and the record is kept (`last_result`) so a redelivery re-emits the same event.
- `locked_by` / `locked_at` form a lease: whoever holds a fresh lease is the one talking to the
  venue about that row; the reconciler only picks rows whose lease has lapsed.

Writes are group-committed (`GroupWriter`): many lanes' updates share one transaction, the fsync
cost DESIGN section 4 counts per order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast, overload

import psycopg
from psycopg.rows import DictRow, dict_row

from horus.db.engine import psycopg_conninfo, refuses_a_value
from horus.domain.events import OPEN
from horus.domain.execute import OrderShape, Outcome
from horus.venue.polymarket.orders import stored_amounts

log = logging.getLogger("horus.execution")

COLUMNS = (
    "id, idempotency_key, follow_id, leader_fill_id, follower, token_id, side, status, order_hash, "
    "signed_order, size_e6, price, filled_shares_e6, filled_collateral_e6, attempts, created_at, "
    "updated_at, locked_at, locked_by, last_error, decision_id, order_type, expires_at, signer, venue_mode, "
    "body_text, signature_generation, venue_status, fee_e6, sent_at, unknown_since, result_seq, last_result, "
    "result_sent_seq, occurred_at, condition_id, credentials_ref, fee_rate, fee_exponent, checks, final"
)
# what the reconciler works on: open rows, and fills recorded from a reply that are not settled on chain yet
RECONCILABLE = "(status = ANY(%(open)s) OR NOT final)"


def _ts(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1_000_000, tz=UTC)


@overload
def _us(value: datetime) -> int: ...
@overload
def _us(value: datetime | None) -> int | None: ...
def _us(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1_000_000)


@dataclass
class Row:
    """One ledger row as the executor sees it."""

    id: int
    idempotency_key: str
    follow_id: str
    leader_fill_id: str
    follower: str
    token_id: str
    side: str
    status: str
    order_hash: str | None
    signed_order: dict | None
    size_e6: int
    price: Decimal | None
    filled_shares_e6: int
    filled_collateral_e6: int
    attempts: int
    created_at: datetime
    updated_at: datetime
    locked_at: datetime | None
    locked_by: str | None
    last_error: str | None
    decision_id: str | None
    order_type: str | None
    expires_at: datetime | None
    signer: str | None
    venue_mode: str | None
    body_text: str | None
    signature_generation: int
    venue_status: str | None
    fee_e6: int
    sent_at: datetime | None
    unknown_since: datetime | None
    result_seq: int
    last_result: dict | None
    result_sent_seq: int
    occurred_at: datetime | None
    condition_id: str | None
    credentials_ref: str | None
    fee_rate: Decimal | None
    fee_exponent: Decimal | None
    checks: int
    final: bool

    @property
    def intent_id(self) -> str:
        return self.idempotency_key

    @property
    def open(self) -> bool:
        return self.status in OPEN

    @property
    def unconfirmed(self) -> bool:
        """Terminal from a `matched` reply, not yet confirmed by final evidence."""
        return not self.final and not self.open

    @property
    def expires_at_us(self) -> int | None:
        return _us(self.expires_at)

    @property
    def occurred_at_us(self) -> int:
        return _us(self.occurred_at) or _us(self.created_at)

    @property
    def shape(self) -> OrderShape:
        return OrderShape(self.side, self.order_type or "FOK", *stored_amounts(self.signed_order))


@dataclass(frozen=True)
class Prewrite:
    """A new ledger row: the intent, the signed order and the exact body to POST."""

    intent_id: str
    follow_id: str
    leader_fill_id: str
    follower: str
    token_id: str
    side: str
    size_e6: int
    price: Decimal | None
    decision_id: str
    occurred_at_us: int
    order_type: str
    expires_at_us: int
    signer: str | None
    venue_mode: str
    order_hash: str | None
    signed_order: dict | None
    body_text: str | None
    status: str = "PENDING"
    last_error: str | None = None
    condition_id: str | None = None
    credentials_ref: str | None = None
    fee_rate: Decimal | None = None
    fee_exponent: Decimal | None = None


@dataclass(frozen=True)
class Update:
    """An outcome to record for a row whose result sequence is `expect_seq` (compare-and-set)."""

    row_id: int
    expect_seq: int
    outcome: Outcome
    attempts: int
    result: dict | None  # the ExecutionResult to keep and emit (its seq = expect_seq + 1), None: no event
    owner: str | None = None  # release this lease
    sent: bool = False  # a POST was made


class LedgerUnreachable(RuntimeError):
    """The ledger could not be reached for longer than the executor may wait (it exits to be restarted)."""


class Ledger:
    """Async access to copy_trades over a few psycopg connections (one per concurrent writer).

    The pool holds `connections` slots; a slot is a live connection or None (connect on next use), and every
    use returns its slot, whatever happened: a failed reconnect during a Postgres restart never shrinks the
    pool (safety review D3). Connections time out on connect, probe the TCP peer (keepalives) and bound every
    statement, so a half-open socket or a stuck server cannot hold a slot forever. `unreachable_for()` says
    how long every use has failed for connection reasons: the executor exits (code 70, restartable) past its
    bound rather than hang."""

    def __init__(
        self,
        database_url: str,
        *,
        connections: int = 4,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 30.0,
    ) -> None:
        self._conninfo = psycopg_conninfo(database_url)
        self._options: dict[str, Any] = {
            "connect_timeout": max(1, round(connect_timeout_s)),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "options": f"-c statement_timeout={int(statement_timeout_s * 1000)}",
        }
        self._size = connections
        self._pool: asyncio.Queue[psycopg.AsyncConnection[DictRow] | None] | None = None
        self._live: set[psycopg.AsyncConnection[DictRow]] = set()
        self._failing_since: float | None = None

    async def _connect(self) -> psycopg.AsyncConnection[DictRow]:
        # autocommit: a single statement is its own transaction (one round trip); `_run` wraps several in one
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, row_factory=dict_row, autocommit=True, **self._options
        )
        self._live.add(conn)
        return conn

    async def open(self) -> None:
        """Make the slots and prove the database answers (a bad URL fails here, at start)."""
        if self._pool is not None:
            return
        self._pool = asyncio.Queue()
        for _ in range(self._size):
            self._pool.put_nowait(None)
        await self._run(lambda conn: conn.execute("SELECT 1"), atomic=False)

    async def close(self) -> None:
        for conn in list(self._live):
            await conn.close()
        self._live.clear()
        self._pool = None

    def unreachable_for(self) -> float:
        """Seconds every use has failed to reach the database (0 while it answers)."""
        return 0.0 if self._failing_since is None else time.monotonic() - self._failing_since

    async def _run(self, fn, *, atomic: bool = True):
        """fn(conn) inside one transaction; `atomic=False` for a single statement (no BEGIN/COMMIT trips)."""
        if self._pool is None:
            await self.open()
        pool = cast("asyncio.Queue[psycopg.AsyncConnection[DictRow] | None]", self._pool)  # open() made it
        slot = await pool.get()
        try:
            if slot is None or slot.closed or slot.broken:  # never connected, or the server went away
                if slot is not None:
                    self._live.discard(slot)
                slot = None
                slot = await self._connect()
            if atomic:
                async with slot.transaction():
                    result = await fn(slot)
            else:
                result = await fn(slot)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if self._failing_since is None and not refuses_a_value(exc):  # a refused value is no outage
                self._failing_since = time.monotonic()
            raise
        finally:
            pool.put_nowait(slot)  # the slot always goes back, connected or not
        self._failing_since = None
        return result

    # ------------------------------------------------------------------------------ reads
    async def rows(self, intent_ids: Sequence[str]) -> dict[str, Row]:
        if not intent_ids:
            return {}

        async def go(conn):
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM copy_trades WHERE idempotency_key = ANY(%s)", (list(intent_ids),)
            )
            return {r["idempotency_key"]: Row(**r) for r in await cur.fetchall()}

        return await self._run(go, atomic=False)

    async def row(self, intent_id: str) -> Row | None:
        return (await self.rows([intent_id])).get(intent_id)

    async def open_rows(self, *, min_age_s: float, lease_s: float, limit: int = 500) -> list[Row]:
        """Rows the reconciler should look at: open, due (`next_check_at`), untouched for `min_age_s`, no live
        lease; the longest-due first. A row looked at without progress is postponed (`postpone`), so rows that
        cannot be settled yet never keep the others out of a round (safety review D7)."""

        async def go(conn):
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM copy_trades WHERE {RECONCILABLE} AND next_check_at <= now() "
                "AND updated_at < now() - make_interval(secs => %(age)s) "
                "AND (locked_at IS NULL OR locked_at < now() - make_interval(secs => %(lease)s)) "
                "ORDER BY next_check_at LIMIT %(limit)s",
                {"open": sorted(OPEN), "age": min_age_s, "lease": lease_s, "limit": limit},
            )
            return [Row(**r) for r in await cur.fetchall()]

        return await self._run(go, atomic=False)

    async def unsent_results(self, *, min_age_s: float, limit: int = 500) -> list[Row]:
        """Rows whose latest ExecutionResult was committed but not confirmed on the broker (crash window)."""

        async def go(conn):
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM copy_trades WHERE result_sent_seq < result_seq AND last_result IS NOT NULL "
                "AND updated_at < now() - make_interval(secs => %s) ORDER BY updated_at LIMIT %s",
                (min_age_s, limit),
            )
            return [Row(**r) for r in await cur.fetchall()]

        return await self._run(go, atomic=False)

    async def stuck(self, *, older_than_s: float) -> list[Row]:
        """Open rows unsettled for longer than the bound (UNKNOWN since, else created), and fills still not settled
        on chain past it: the alert list. A resting (SUBMITTED) order is not stuck."""

        async def go(conn):
            cur = await conn.execute(
                f"SELECT {COLUMNS} FROM copy_trades WHERE {RECONCILABLE} "
                "AND status <> 'SUBMITTED' "
                "AND coalesce(unknown_since, created_at) < now() - make_interval(secs => %(age)s) ORDER BY created_at",
                {"open": sorted(OPEN), "age": older_than_s},
            )
            return [Row(**r) for r in await cur.fetchall()]

        return await self._run(go, atomic=False)

    # ------------------------------------------------------------------------------ writes
    async def prewrite(self, rows: Sequence[Prewrite], owner: str) -> dict[str, Row]:
        """Insert the rows in one statement (ON CONFLICT DO NOTHING), committed on return; the inserted
        rows come back (key -> Row) with a lease for `owner`. Keys that already existed are not touched."""
        if not rows:
            return {}
        columns = (
            "idempotency_key",
            "follow_id",
            "leader_fill_id",
            "follower",
            "token_id",
            "side",
            "status",
            "order_hash",
            "signed_order",
            "size_e6",
            "price",
            "decision_id",
            "order_type",
            "expires_at",
            "signer",
            "venue_mode",
            "body_text",
            "occurred_at",
            "last_error",
            "condition_id",
            "credentials_ref",
            "fee_rate",
            "fee_exponent",
            "locked_by",
        )
        types = (
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "jsonb",
            "bigint",
            "numeric",
            "text",
            "text",
            "timestamptz",
            "text",
            "text",
            "text",
            "timestamptz",
            "text",
            "text",
            "text",
            "numeric",
            "numeric",
            "text",
        )
        arrays: list[list[object]] = [[] for _ in columns]
        for r in rows:
            values = (
                r.intent_id,
                r.follow_id,
                r.leader_fill_id,
                r.follower,
                r.token_id,
                r.side,
                r.status,
                r.order_hash,
                json.dumps(r.signed_order) if r.signed_order is not None else None,
                r.size_e6,
                r.price,
                r.decision_id,
                r.order_type,
                _ts(r.expires_at_us),
                r.signer,
                r.venue_mode,
                r.body_text,
                _ts(r.occurred_at_us),
                r.last_error,
                r.condition_id,
                r.credentials_ref,
                r.fee_rate,
                r.fee_exponent,
                owner,
            )
            for array, value in zip(arrays, values):
                array.append(value)
        # binary parameters: the text array format escapes every element with a regex (long bodies: slow)
        unnest = ", ".join(f"%b::{t}[]" for t in types)
        sql = (
            f"INSERT INTO copy_trades ({', '.join(columns)}, locked_at) "
            f"SELECT *, now() FROM unnest({unnest}) "
            f"ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        )

        async def go(conn):
            cur = await conn.execute(sql, arrays)
            return {r["idempotency_key"]: Row(**r) for r in await cur.fetchall()}

        return await self._run(go, atomic=False)  # one INSERT: atomic by itself

    async def claim(self, intent_id: str, owner: str, lease_s: float, *, unconfirmed: bool = False) -> Row | None:
        """Take the lease on an open row (free, ours, or lapsed); None if another holder is live or it is settled.
        `unconfirmed`: also a row whose provisional fills await confirmation (the reconciler's work, never a
        lane's: a lookup there would hold up the follower's next orders)."""
        which = RECONCILABLE if unconfirmed else "status = ANY(%(open)s)"

        async def go(conn):
            cur = await conn.execute(
                "UPDATE copy_trades SET locked_by = %(owner)s, locked_at = now() WHERE idempotency_key = %(key)s "
                f"AND {which} AND (locked_by IS NULL OR locked_by = %(owner)s "
                f"OR locked_at < now() - make_interval(secs => %(lease)s)) RETURNING {COLUMNS}",
                {"owner": owner, "key": intent_id, "open": sorted(OPEN), "lease": lease_s},
            )
            row = await cur.fetchone()
            return Row(**row) if row else None

        return await self._run(go, atomic=False)

    async def release(self, intent_ids: Iterable[str], owner: str) -> None:
        ids = list(intent_ids)
        if not ids:
            return

        async def go(conn):
            await conn.execute(
                "UPDATE copy_trades SET locked_by = NULL, locked_at = NULL "
                "WHERE idempotency_key = ANY(%s) AND locked_by = %s",
                (ids, owner),
            )

        await self._run(go, atomic=False)

    async def postpone(self, intent_ids: Iterable[str], owner: str, *, base_s: float, cap_s: float) -> None:
        """Release `owner`'s lease on rows looked at without progress and make them due again later: after
        `base_s` doubled per inconclusive look, at most `cap_s`."""
        ids = list(intent_ids)
        if not ids:
            return

        async def go(conn):
            await conn.execute(
                "UPDATE copy_trades SET locked_by = CASE WHEN locked_by = %(owner)s THEN NULL ELSE locked_by END, "
                "locked_at = CASE WHEN locked_by = %(owner)s THEN NULL ELSE locked_at END, checks = checks + 1, "
                "next_check_at = now() + make_interval(secs => least(%(cap)s, %(base)s * power(2, least(checks, 30)))) "
                "WHERE idempotency_key = ANY(%(ids)s)",
                {"owner": owner, "cap": cap_s, "base": base_s, "ids": ids},
            )

        await self._run(go, atomic=False)

    async def renew(self, intent_ids: Iterable[str], owner: str) -> set[str]:
        """Refresh `owner`'s lease on those open rows it still holds (work waiting in its lanes); the keys
        refreshed (a lease that lapsed and was taken by another worker is not among them)."""
        ids = list(intent_ids)
        if not ids:
            return set()

        async def go(conn):
            cur = await conn.execute(
                "UPDATE copy_trades SET locked_at = now() WHERE idempotency_key = ANY(%s) "
                "AND locked_by = %s AND status = ANY(%s) RETURNING idempotency_key",
                (ids, owner, sorted(OPEN)),
            )
            return {r["idempotency_key"] for r in await cur.fetchall()}

        return await self._run(go, atomic=False)

    async def write_updates(self, updates: Sequence[Update]) -> list[bool]:
        """Apply outcome updates in ONE transaction; per update, whether its compare-and-set won."""
        if not updates:
            return []
        sql = (
            "UPDATE copy_trades SET status = %(status)s, filled_shares_e6 = %(shares)s, "
            "filled_collateral_e6 = %(collateral)s, fee_e6 = %(fee)s, "
            "venue_status = coalesce(%(venue)s, venue_status), "
            "last_error = %(error)s, attempts = greatest(attempts, %(attempts)s), updated_at = now(), "
            "next_check_at = now(), checks = 0, final = %(final)s, "
            "sent_at = CASE WHEN %(sent)s THEN coalesce(sent_at, now()) ELSE sent_at END, "
            "unknown_since = CASE WHEN %(status)s = 'UNKNOWN' THEN coalesce(unknown_since, now()) ELSE NULL END, "
            "result_seq = CASE WHEN %(result)s::jsonb IS NULL THEN result_seq ELSE result_seq + 1 END, "
            "last_result = coalesce(%(result)s::jsonb, last_result), "
            "locked_by = CASE WHEN locked_by = %(owner)s THEN NULL ELSE locked_by END, "
            "locked_at = CASE WHEN locked_by = %(owner)s THEN NULL ELSE locked_at END "
            "WHERE id = %(id)s AND result_seq = %(seq)s RETURNING id"
        )
        params = [
            {
                "status": u.outcome.status,
                "shares": u.outcome.filled_shares_e6,
                "collateral": u.outcome.filled_collateral_e6,
                "fee": u.outcome.fee_e6,
                "venue": u.outcome.venue_status,
                "error": u.outcome.error,
                "attempts": u.attempts,
                "sent": u.sent,
                "result": json.dumps(u.result) if u.result is not None else None,
                "owner": u.owner,
                "id": u.row_id,
                "seq": u.expect_seq,
                "final": u.outcome.final,
            }
            for u in updates
        ]

        async def go(conn):
            won = []
            async with conn.cursor() as cur:
                await cur.executemany(sql, params, returning=True)
                while True:
                    won.append(cur.rowcount == 1)
                    if not cur.nextset():
                        break
            return won

        return await self._run(go)

    async def mark_emitted(self, done: Sequence[tuple[int, int]]) -> None:
        """(row id, result seq) pairs the broker acknowledged."""
        if not done:
            return

        async def go(conn):
            await conn.execute(
                "UPDATE copy_trades AS c SET result_sent_seq = greatest(c.result_sent_seq, d.seq) "
                "FROM unnest(%s::bigint[], %s::int[]) AS d(id, seq) WHERE c.id = d.id",
                ([i for i, _ in done], [s for _, s in done]),
            )

        await self._run(go, atomic=False)


class GroupWriter:
    """Batches `Update`s from many lanes into one transaction (group commit). No timer by default: a lone
    update is written at once, and the updates that arrive while a transaction commits form the next one,
    so batches grow with the load by themselves. `max_wait_s` > 0 adds a fixed wait before each flush."""

    def __init__(self, ledger: Ledger, *, max_batch: int = 500, max_wait_s: float = 0.0) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: list[tuple[Update, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._emitted: list[tuple[int, int]] = []
        self.transactions = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="ledger-group-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._flush()

    async def write(self, update: Update) -> bool:
        """Queue one update; True once committed if its compare-and-set won."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((update, future))
        self._wake.set()
        return await future

    def emitted(self, row_id: int, seq: int) -> None:
        self._emitted.append((row_id, seq))
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.max_wait_s > 0 and len(self._queue) < self.max_batch:
                await asyncio.sleep(self.max_wait_s)  # let concurrent lanes join this transaction
            else:
                await asyncio.sleep(0)  # lanes whose replies are already in take the same transaction
            await self._flush()

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await self.ledger.write_updates([u for u, _ in batch])
                self.transactions += 1
            except Exception as exc:  # the lanes decide; nothing was committed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), won in zip(batch, results):
                if not future.done():
                    future.set_result(won)
        if self._emitted:
            done, self._emitted = self._emitted, []
            try:
                await self.ledger.mark_emitted(done)
            except Exception:  # only bookkeeping: the reconciler re-emits, ids dedupe
                log.warning("could not mark %d results as emitted", len(done), exc_info=True)
