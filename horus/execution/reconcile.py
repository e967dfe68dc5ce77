"""The reconciler: settle every open ledger row from what really happened (DESIGN invariant 4).

On start and every `reconcile_interval_s`:
1. open rows (PENDING, UNKNOWN, SUBMITTED) untouched for `reconcile_min_age_s` whose lease has lapsed
   are claimed and resumed: a PENDING row still inside its expiry is sent (the same stored bytes);
   anything else is looked up by order hash (venue order, venue trades, chain `OrderFilled`) and
   recorded as what the evidence shows. An order is declared NOT_FILLED without a trace only when
   every source answered, none knows the hash, and the intent's expiry has passed: it can never fill.
2. results committed to the ledger but not acknowledged by the broker (a crash in between) are
   re-emitted: same event id, same bytes.
3. rows open longer than `reconcile_alert_after_s` set the `horus_execute_stuck_rows` gauge and are
   listed by `horus reconcile --report`. Nothing is failed by guesswork.

A new signature for an intent (generation + 1) is never made here: an intent whose order is proven
unfillable is past its expiry, so it settles as NOT_FILLED instead of being re-sent late.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import Counter, Gauge

from horus.execution.executor import Executor
from horus.execution.ledger import Ledger, Row

log = logging.getLogger("horus.execution")

STUCK = Gauge("horus_execute_stuck_rows", "Ledger rows open (PENDING/UNKNOWN) past the alert bound")
OPEN_ROWS = Gauge("horus_execute_open_rows", "Ledger rows the last reconciliation round looked at")
SETTLED = Counter("horus_execute_reconciled_total", "Rows the reconciler moved to a new state")
CONFIRMED = Counter(
    "horus_execute_confirmed_total",
    "Provisional fills (a matched reply) the reconciler found settled on chain as recorded",
)
REEMITTED = Counter("horus_execute_reemitted_total", "Results re-emitted after a crash window")


@dataclass
class RoundReport:
    looked_at: int = 0
    settled: int = 0  # rows that reached a new outcome (corrections of provisional fills included)
    confirmed: int = 0  # provisional fills that settled on chain as recorded
    reemitted: int = 0
    stuck: list[Row] | None = None


class Reconciler:
    def __init__(
        self,
        executor: Executor,
        ledger: Ledger,
        *,
        min_age_s: float,
        lease_s: float,
        alert_after_s: float,
        concurrency: int = 32,
    ) -> None:
        self.executor = executor
        self.ledger = ledger
        self.min_age_s = min_age_s
        self.lease_s = lease_s
        self.alert_after_s = alert_after_s
        self._gate = asyncio.Semaphore(concurrency)

    async def round(self) -> RoundReport:
        report = RoundReport()
        rows = await self.ledger.open_rows(min_age_s=self.min_age_s, lease_s=self.lease_s)
        report.looked_at = len(rows)
        OPEN_ROWS.set(len(rows))
        outcomes = await asyncio.gather(*(self._one(row) for row in rows), return_exceptions=True)
        for row, outcome in zip(rows, outcomes):
            if isinstance(outcome, Exception):
                log.warning("reconcile %s: %s: %s", row.idempotency_key, type(outcome).__name__, outcome)
            elif outcome == "settled":
                report.settled += 1
            elif outcome == "confirmed":
                report.confirmed += 1
        SETTLED.inc(report.settled)
        CONFIRMED.inc(report.confirmed)
        for row in await self.ledger.unsent_results(min_age_s=max(self.min_age_s, 1.0)):
            await self.executor.emit(cast(dict[str, Any], row.last_result))  # the query takes only rows with one
            self.executor.writer.emitted(row.id, row.result_seq)
            report.reemitted += 1
        REEMITTED.inc(report.reemitted)
        report.stuck = await self.ledger.stuck(older_than_s=self.alert_after_s)
        STUCK.set(len(report.stuck))
        return report

    async def _one(self, row: Row) -> str | None:
        """Resume one row; "settled" (a new outcome), "confirmed" (a provisional fill final as recorded) or None."""
        async with self._gate:
            claimed = await self.ledger.claim(row.idempotency_key, self.executor.owner, self.lease_s, unconfirmed=True)
            if claimed is None:
                return None
            await self.executor.resume(claimed)
            after = await self.ledger.row(claimed.idempotency_key)
            if after is None or after.result_seq == claimed.result_seq:
                return None
            same = (after.status, after.filled_shares_e6) == (claimed.status, claimed.filled_shares_e6)
            return "confirmed" if claimed.unconfirmed and after.final and same else "settled"

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = await self.round()
                if report.settled or report.reemitted or report.stuck:
                    log.info(
                        "reconcile: %d open looked at, %d settled, %d confirmed, %d re-emitted, %d stuck past %.0fs",
                        report.looked_at,
                        report.settled,
                        report.confirmed,
                        report.reemitted,
                        len(report.stuck or ()),
                        self.alert_after_s,
                    )
            except Exception:
                log.exception("reconciliation round failed; retrying next interval")
            try:
                await asyncio.wait_for(stop.wait(), max(0.05, interval_s - (time.monotonic() - started)))
            except TimeoutError:
                pass
