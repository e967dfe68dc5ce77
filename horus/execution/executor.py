"""The executor core: prewrite a group of COPY decisions (signed once), then POST, classify and record.

`Executor.prepare(decisions)` runs per consumed batch: it reads the ledger rows that already exist,
resolves accounts and markets for the new intents, signs them (in a worker thread, so the event
loop keeps serving HTTP), and inserts them all in ONE committed transaction. Only intents this call
inserted are posted as fresh orders; the others are handled from their stored row:

- terminal row -> its stored ExecutionResult is re-emitted (same event id and bytes);
- PENDING / UNKNOWN -> take the lease, re-send the SAME stored bytes (within expiry) or look the
  hash up; never re-sign;
- a lease held by another live worker -> left to it (the reconciler is the backstop).

`Executor.run(work)` is called by the follower's lane, in decision order for that follower.

Before every POST, fresh or re-send, three things are checked (DESIGN invariant 8): the intent has not expired,
no switch or config forbids it (`gate`: kill, pauses, disables), and this worker still holds the row's lease.
Once any attempt of the bytes may have reached the venue, no refusal is believed without a lookup, and
"absent" proves NOT_FILLED only once a request started before the expiry can no longer be in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Histogram

from horus.domain.decide import fee_schedule
from horus.domain.events import TERMINAL
from horus.domain.execute import (
    DRY_RUN_ATTEMPT,
    Outcome,
    classify_reply,
    decision_timestamp_ms,
    expires_at_us,
    result_record,
    settle_from_evidence,
    with_reply_fee,
)
from horus.domain.send_gate import Blocked
from horus.execution.accounts import Account, AccountError, Accounts
from horus.execution.crash import CrashPoints
from horus.execution.ledger import GroupWriter, Ledger, Prewrite, Row, Update
from horus.execution.venue_clock import VenueClock
from horus.venue.polymarket.clob import serialize_body
from horus.venue.polymarket.evidence import Evidence, Lookup
from horus.venue.polymarket.orders import (
    BYTES32_ZERO,
    exchange_for,
    order_body,
    order_for_intent,
    sign_order,
    stored_order,
)
from horus.venue.polymarket.replies import reply_facts

log = logging.getLogger("horus.execution")

ORDERS_SENT = Counter("horus_execute_posts_total", "POST /order attempts", ["mode"])
OUTCOMES = Counter("horus_execute_outcomes_total", "Recorded execution outcomes", ["status"])
SIGN_SECONDS = Histogram(
    "horus_execute_sign_seconds", "Signing time per order", buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01)
)
CORRECTIONS = Counter(
    "horus_execute_corrections_total",
    "Results recorded over an earlier one of the same order "
    "(the next sequence number): a lost race with more fills, or settled evidence that differs "
    "from a matched reply",
)
SEEN_TO_SENT = Histogram(
    "horus_execute_seen_to_sent_seconds",
    "Decision consumed -> first POST sent",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

MODES = ("paper", "live", "dry-run")
TRADES_CLOCK_MARGIN_S = 300  # the database's and the venue's clocks may disagree; trades before that are not ours
MARKET_RETRIES = 3


@dataclass
class Work:
    """One consumed COPY decision and what prepare() found or made for it."""

    decision: dict
    intent_id: str
    follower: str
    seen_at: float  # monotonic, when consumed
    row: Row | None = None
    fresh: bool = False  # this worker inserted the row (and holds its lease)
    account: Account | None = None


def _now_us() -> int:
    return time.time_ns() // 1000


def _no_gate(_row: Row) -> Blocked | None:
    return None


class Executor:
    def __init__(
        self,
        *,
        mode: str,
        ledger: Ledger,
        writer: GroupWriter,
        accounts: Accounts,
        venue: Any,
        lookup: Lookup | None,
        market_info: Callable[[str], Awaitable[Any]],
        emit: Callable[[dict], Awaitable[None]],
        owner: str,
        chain_id: int = 137,
        builder: str = BYTES32_ZERO,
        default_ttl_s: float = 60.0,
        lease_s: float = 30.0,
        resend_unknown: int = 1,
        backoff_s: float = 1.0,
        backoff_cap_s: float = 8.0,
        gate: Callable[[Row], Blocked | None] = _no_gate,
        absent_after_s: float = 45.0,
        recheck_base_s: float = 5.0,
        recheck_cap_s: float = 60.0,
        crash: CrashPoints | None = None,
        now_us: Callable[[], int] = _now_us,
        venue_clock: VenueClock | None = None,
        send_margin_s: float = 1.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"venue_mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.ledger = ledger
        self.writer = writer
        self.accounts = accounts
        self.venue = venue
        self.lookup = lookup
        self.market_info = market_info
        self.emit = emit
        self.owner = owner
        self.chain_id = chain_id
        self.builder = builder
        self.default_ttl_s = default_ttl_s
        self.lease_s = lease_s
        self.resend_unknown = resend_unknown
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.gate = gate  # the switches and configs that may forbid a POST (kill, pauses, disables)
        self.absent_after_s = absent_after_s  # past the expiry: no request of ours can still be in flight
        self.recheck_base_s, self.recheck_cap_s = recheck_base_s, recheck_cap_s
        self.crash = crash or CrashPoints()
        self._now_us = now_us  # timestamps of the results we write
        self.venue_clock = venue_clock or VenueClock(local_us=now_us)  # expiries are judged by the venue's clock
        self.send_margin_s = send_margin_s  # no POST starts closer to the expiry than this
        self._leases: dict[str, float] = {}  # intent -> monotonic time its lease was last confirmed held
        self.sign_seconds = 0.0
        self.signed = 0

    # ------------------------------------------------------------------------------ prepare (batch)
    async def prepare(self, decisions: Sequence[dict], seen_at: float | None = None) -> list[Work]:
        """Prewrite every new COPY of the batch in one transaction; SKIPs are dropped."""
        seen_at = time.monotonic() if seen_at is None else seen_at
        work = []
        for decision in decisions:
            if decision.get("action") != "COPY":
                continue
            intent = decision.get("intent_id")
            if not intent:
                raise ValueError(f"COPY decision {decision['envelope']['event_id']}: intent_id is missing")
            work.append(Work(decision, intent, decision["follower"].lower(), seen_at))
        if not work:
            return work
        existing = await self.ledger.rows(sorted({w.intent_id for w in work}))
        new: dict[str, Work] = {}
        for w in work:
            w.row = existing.get(w.intent_id)
            if w.row is None and w.intent_id not in new:
                new[w.intent_id] = w
        if new:
            prewrites = await self._build(list(new.values()))
            leased_at = time.monotonic()  # before the statement: the lease it takes lasts at least from here
            inserted = await self.ledger.prewrite(prewrites, self.owner)
            if inserted:
                self.crash.reached("after_prewrite_commit")
            raced = sorted(set(new) - set(inserted))  # inserted meanwhile by another worker
            rows = {**(await self.ledger.rows(raced) if raced else {}), **inserted}
            for w in work:
                if w.row is None:
                    w.row = rows.get(w.intent_id)  # None: another row holds its (follow, leader fill)
                    w.fresh = w.intent_id in inserted and new.get(w.intent_id) is w
                    if w.fresh:
                        self._leases[w.intent_id] = leased_at
        return work

    async def _build(self, work: list[Work]) -> list[Prewrite]:
        """Accounts and markets for each new intent, then sign them all off the event loop."""
        accounts = await asyncio.gather(*(self._account(w.follower) for w in work))
        infos = await asyncio.gather(*(self._market(w.decision["token_id"]) for w in work))
        jobs, prewrites = [], []
        for w, account, info in zip(work, accounts, infos):
            if isinstance(account, str):
                prewrites.append(self._rejected(w, account))
            elif isinstance(info, str):
                prewrites.append(self._rejected(w, info))
            else:
                w.account = account
                jobs.append((w, account, info))
        if jobs:
            started = time.perf_counter()
            signed = await asyncio.to_thread(self._sign_all, jobs)
            self.sign_seconds += time.perf_counter() - started
            self.signed += len(jobs)
            prewrites.extend(signed)
        return prewrites

    async def _account(self, follower: str) -> Account | str:
        try:
            return await self.accounts.get(follower)
        except AccountError as exc:
            return str(exc)
        except Exception as exc:  # one follower's broken account never stalls the batch (D10)
            log.exception("account of follower %s", follower)
            return f"account of follower {follower} unavailable: {type(exc).__name__}"

    async def _market(self, token_id: str) -> Any:
        for attempt in range(MARKET_RETRIES):
            try:
                info = await self.market_info(token_id)
            except Exception:  # a metadata failure is this token's problem (D10)
                log.warning("market metadata for token %s failed", token_id, exc_info=True)
                info = None
            if info is not None and info.tick_size is not None:
                return info
            if attempt + 1 < MARKET_RETRIES:
                await asyncio.sleep(0.2 * (attempt + 1))
        return f"market metadata for token {token_id} is unavailable (unknown token or no tick size)"

    def _base(self, w: Work, account: Account | None = None, info: Any = None) -> dict:
        d = w.decision
        price = d.get("worst_price")
        schedule = fee_schedule(info) if info is not None else None
        return dict(
            intent_id=w.intent_id,
            follow_id=d["follow_id"],
            leader_fill_id=d["leader_fill_id"],
            follower=w.follower,
            token_id=d["token_id"],
            side=d["side"],
            size_e6=d["size_e6"],
            price=Decimal(price) if price else None,
            decision_id=d["envelope"]["event_id"],
            occurred_at_us=d["envelope"]["occurred_at_us"],
            order_type=d.get("order_type") or "FOK",
            expires_at_us=expires_at_us(d, self.default_ttl_s),
            venue_mode=self.mode,
            condition_id=d.get("condition_id") or getattr(info, "condition_id", None),
            credentials_ref=getattr(account, "credentials_ref", None),
            fee_rate=schedule[0] if schedule else None,
            fee_exponent=schedule[1] if schedule else None,
        )

    def _rejected(self, w: Work, reason: str) -> Prewrite:
        return Prewrite(
            **self._base(w),
            signer=None,
            order_hash=None,
            signed_order=None,
            body_text=None,
            status="REJECTED",
            last_error=reason,
        )

    def _sign_all(self, jobs) -> list[Prewrite]:  # worker thread: pure CPU, no shared state touched
        out = []
        for w, account, info in jobs:
            base = self._base(w, account, info)
            try:
                started = time.perf_counter()
                fields = order_for_intent(
                    w.intent_id,
                    token_id=base["token_id"],
                    side=base["side"],
                    size_e6=base["size_e6"],
                    worst_price=base["price"],
                    tick_size=info.tick_size,
                    order_type=base["order_type"],
                    maker=account.follower,
                    signer=account.order_signer,
                    signature_type=account.signature_type,
                    builder=self.builder,
                    timestamp_ms=decision_timestamp_ms(w.decision),
                )
                domain = exchange_for(info.version, bool(info.neg_risk), self.chain_id)
                signed = sign_order(fields, domain, account.private_key)
                SIGN_SECONDS.observe(time.perf_counter() - started)
                expiration = base["expires_at_us"] // 1_000_000 if base["order_type"] == "GTD" else 0
                owner = account.creds.api_key if account.creds else "dry-run"
                body = order_body(signed, owner=owner, order_type=base["order_type"], expiration=expiration)
            except Exception as exc:  # noqa: BLE001 - this intent only, never the batch (D10)
                out.append(self._rejected(w, f"order not built: {exc}"))
                continue
            stored = stored_order(body, signed, domain)
            out.append(
                Prewrite(
                    **base,
                    signer=account.signer,
                    order_hash=signed.order_hash,
                    signed_order=stored,
                    body_text=serialize_body(body),
                    status="DRY_RUN" if self.mode == "dry-run" else "PENDING",
                )
            )
        return out

    # ------------------------------------------------------------------------------ run (per lane)
    async def run(self, w: Work) -> None:
        row = w.row
        if row is None:  # the runner parks decisions without a row; reaching here is a bug upstream
            raise RuntimeError(f"intent {w.intent_id}: no ledger row after prewrite")
        if row.status in TERMINAL:
            await self._terminal(row)
            return
        if w.fresh and row.status == "PENDING" and w.account is not None:  # a fresh PENDING row has its account
            await self._send_new(row, w.account, w.seen_at)
            return
        if row.status == "SUBMITTED" and row.last_result is not None:
            await self._reemit(row, row.last_result)  # resting at the venue: the reconciler follows it
            return
        claimed = await self.ledger.claim(row.idempotency_key, self.owner, self.lease_s)
        if claimed is None:  # another live worker holds it, or it settled meanwhile
            fresh = await self.ledger.row(row.idempotency_key)
            if fresh is not None and fresh.status in TERMINAL:
                await self._terminal(fresh)
            return
        await self.resume(claimed)

    async def _send_new(self, row: Row, account: Account, seen_at: float) -> None:
        """A row this worker has just inserted: nothing of it can be at the venue yet, so an intent that may not
        be sent (expired, killed, paused, disabled) ends here as NOT_FILLED, without a lookup."""
        stop = self._stop_reason(row)
        if stop is not None:
            await self._record(row, Outcome("NOT_FILLED", error=stop), row.attempts, sent=False)
            return
        await self._submit_and_record(row, account, seen_at, landed=False)

    def _stop_reason(self, row: Row) -> str | None:
        """Why these bytes must not be POSTed now (DESIGN invariant 8), checked before every POST: the intent's
        expiry (safety review D2), then the operator's switches and the configs (D4)."""
        if row.expires_at_us is not None and self._last_send_us(row.expires_at_us) <= self.venue_clock.latest_us():
            late_s = (self.venue_clock.latest_us() - row.expires_at_us) / 1e6
            return (
                f"EXPIRED: not sent: the intent expires at {row.expires_at} and may not be sent within "
                f"{self.send_margin_s:g}s of it ({late_s:+.1f}s by the venue's clock)"
            )
        stop = self.gate(row)
        return None if stop is None else stop.error

    def _last_send_us(self, expires_at_us: int) -> int:
        """The last moment (venue clock) a POST of a row expiring at `expires_at_us` may start: its expiry less the
        time a request can take to reach the venue on a loaded host (`send_margin_s`)."""
        return expires_at_us - int(self.send_margin_s * 1e6)

    def _absent_settles(self, row: Row) -> bool:
        """True once 'the venue has no trace' proves NOT_FILLED: past the expiry by more than a POST started before
        it can take to land (venue timeout) plus a lease, so no worker's request is still in flight (D6)."""
        return row.expires_at_us is not None and self.venue_clock.earliest_us() >= row.expires_at_us + int(
            self.absent_after_s * 1e6
        )

    async def resume(self, row: Row) -> None:
        """An open row whose lease we have just taken: re-send the same bytes while it may still be sent, else settle
        it from the evidence (or leave it for a later round)."""
        self._leases[row.idempotency_key] = time.monotonic()  # claimed moments ago (a third of the lease is margin)
        try:
            account = await self.accounts.for_row(row.follower, row.signer, row.credentials_ref)
        except AccountError as exc:
            log.warning("intent %s: cannot resume: %s", row.idempotency_key, exc)
            await self.postpone(row)
            return
        if row.unconfirmed:
            await self.confirm(row, account)
            return
        stop = self._stop_reason(row)
        if row.status == "PENDING" and stop is None and self.mode != "dry-run":
            # a worker that died may have sent it: any refusal now is checked against the venue (D5)
            await self._submit_and_record(row, account, time.monotonic(), landed=True)
            return
        await self.settle(row, account, resend=stop is None)

    async def postpone(self, row: Row) -> None:
        """Release the row, due again later (backoff): this look settled nothing."""
        self._leases.pop(row.idempotency_key, None)
        await self.ledger.postpone(
            [row.idempotency_key], self.owner, base_s=self.recheck_base_s, cap_s=self.recheck_cap_s
        )

    async def settle(self, row: Row, account: Account, *, resend: bool) -> bool:
        """Look the hash up and record what happened; True if the row reached a new state."""
        outcome, ev = await self._look_up(row, account, absent_settles=self._absent_settles(row))
        if outcome is None:
            if resend and ev.complete and row.status in ("PENDING", "UNKNOWN"):
                await self._submit_and_record(row, account, time.monotonic(), landed=True)  # the same stored bytes
                return True
            if row.status == "PENDING":  # we looked and know nothing: it may have been sent
                outcome = Outcome("UNKNOWN", error="unconfirmed: " + ("; ".join(ev.failures) or "no trace yet"))
            else:
                await self.postpone(row)
                return False
        if (
            outcome.status == row.status
            and outcome.filled_shares_e6 == row.filled_shares_e6
            and row.last_result is not None
        ):
            await self.postpone(row)
            return False
        await self._record(row, outcome, row.attempts, sent=False)
        return True

    async def confirm(self, row: Row, account: Account) -> bool:
        """Fills recorded from a `matched` reply, once final evidence speaks: settled as recorded (the same
        result again, final), or otherwise (a correction: a trade FAILED, or the trades' own fees differ from the
        reply's estimate); still in flight: looked at again later. True if the row changed."""
        outcome, _ = await self._look_up(row, account)
        if outcome is None or not outcome.terminal:
            await self.postpone(row)
            return False
        if (outcome.status, outcome.filled_shares_e6, outcome.filled_collateral_e6, outcome.fee_e6) != (
            row.status,
            row.filled_shares_e6,
            row.filled_collateral_e6,
            row.fee_e6,
        ):
            CORRECTIONS.inc()
            log.warning(
                "intent %s: the reply said %s with %d shares, the settled evidence %s with %d: correcting",
                row.idempotency_key,
                row.status,
                row.filled_shares_e6,
                outcome.status,
                outcome.filled_shares_e6,
            )
        # the next result either way: the same fills now final, or what settled; decide needs to know which
        await self._record(row, outcome, row.attempts, sent=False)
        return True

    # ------------------------------------------------------------------------------ submission
    async def _submit_and_record(self, row: Row, account: Account, seen_at: float, *, landed: bool) -> None:
        outcome, attempts = await self._submit(row, account, seen_at, landed)
        if outcome is None:  # the lease went to another worker before we could send: it carries on
            return
        await self._record(row, outcome, attempts, sent=attempts > row.attempts)

    async def _submit(self, row: Row, account: Account, seen_at: float, landed: bool) -> tuple[Outcome | None, int]:
        """POST the stored bytes until a definitive answer, re-sending the same bytes after 425/429/post-only
        and once after an unknown reply. `landed`: an earlier attempt of these bytes may have reached the venue,
        so a refusal can no longer be believed without a lookup (safety review D5)."""
        attempts = row.attempts
        delay = self.backoff_s
        resends = self.resend_unknown
        shape = row.shape
        while True:
            if not await self._holds_lease(row):
                return None, attempts
            stop = self._stop_reason(row)  # the last thing before the POST: nothing slow between the two
            if stop is not None:
                if not landed:  # not one attempt of these bytes can have been processed
                    return Outcome("NOT_FILLED", error=stop), attempts
                said = Outcome("UNKNOWN", error=f"not re-sent: {stop}")
                return await self._confirm(row, account, said), attempts
            attempts += 1
            if attempts == row.attempts + 1:
                SEEN_TO_SENT.observe(time.monotonic() - seen_at)
            ORDERS_SENT.labels(self.mode).inc()
            reply = await self.venue.post_order(row.body_text, account.creds, account.signer)
            self.crash.reached("after_reply")
            facts = reply_facts(reply.status_code, reply.body, reply.error, reply.transport_error)
            outcome = classify_reply(facts, shape, may_have_landed=landed)
            schedule = (row.fee_rate, row.fee_exponent or Decimal(1)) if row.fee_rate is not None else None
            outcome = with_reply_fee(outcome, row.side, schedule)
            if outcome.retry:  # 425 / 429 / post-only window: not processed; the same bytes later, within expiry
                wait = min(delay, self.backoff_cap_s) * random.uniform(0.8, 1.2)
                delay *= 2
                if row.expires_at_us is not None:
                    wait = min(
                        wait, max(0.0, (self._last_send_us(row.expires_at_us) - self.venue_clock.latest_us()) / 1e6)
                    )
                await asyncio.sleep(wait)
                continue
            landed = True
            if outcome.status == "UNKNOWN" and not outcome.confirm and resends > 0 and self._stop_reason(row) is None:
                resends -= 1  # once more with the same bytes: a duplicate reply then proves it landed
                await asyncio.sleep(0.2)
                continue
            if outcome.confirm:
                outcome = await self._confirm(row, account, outcome)
            return outcome, attempts

    async def _holds_lease(self, row: Row) -> bool:
        """Verify, immediately before a POST, that this worker still holds the row's lease (D6): confirmed within
        a third of the lease by the prewrite, a claim or a renewal, else claimed again now."""
        key = row.idempotency_key
        confirmed = self._leases.get(key)
        now = time.monotonic()
        if confirmed is not None and now - confirmed < self.lease_s / 3:
            return True
        claimed = await self.ledger.claim(key, self.owner, self.lease_s)
        if claimed is None or claimed.result_seq != row.result_seq:
            log.warning("intent %s: lease lost before a POST; left to its new holder", key)
            if claimed is not None:
                await self.ledger.release([key], self.owner)
            self._leases.pop(key, None)
            return False
        self._leases[key] = now
        return True

    def leases_confirmed(self, asked: Sequence[str], renewed: set[str], at: float) -> None:
        """The runner asked to renew the leases of `asked` with a statement sent at `at` (monotonic); `renewed`
        came back. A lease not renewed is no longer believed held: the next POST claims it first."""
        for key in asked:
            if key in renewed:
                if key in self._leases:
                    self._leases[key] = at
            else:
                self._leases.pop(key, None)

    async def _look_up(
        self, row: Row, account: Account, *, absent_settles: bool = False
    ) -> tuple[Outcome | None, Evidence]:
        """What the venue's and the chain's records say happened to this row's order (None: not settled yet), and
        the evidence. `absent_settles`: no trace at all proves NOT_FILLED (past expiry and grace), when every source
        answered. Its trades can only come after the row was written (less a margin for the two clocks), which
        keeps a busy follower's trade history short."""
        if self.lookup is None or row.order_hash is None or account.creds is None:
            # never: only a venue's rows are looked up (dry-run rows are terminal from the start), a row that may be
            # at the venue was prewritten with its order's hash, and every resolved account has API credentials
            raise RuntimeError(f"intent {row.idempotency_key}: no venue, order hash or credentials to look it up with")
        ev = await self.lookup.evidence(
            row.order_hash,
            creds=account.creds,
            address=account.signer,
            maker=row.follower,
            token_id=row.token_id,
            after_s=int(row.created_at.timestamp()) - TRADES_CLOCK_MARGIN_S,
        )
        outcome = settle_from_evidence(
            row.shape,
            venue_order=ev.venue_order,
            trades=ev.trades,
            chain_fills=ev.chain_fills,
            expired=absent_settles and ev.complete,
        )
        return outcome, ev

    async def _confirm(self, row: Row, account: Account, said: Outcome) -> Outcome:
        """Duplicate, killed and after-a-lost-reply replies: believe only the order's trace at the venue (and
        chain)."""
        settled, ev = await self._look_up(row, account)
        if settled is not None:
            return settled
        if said.status == "NOT_FILLED" and ev.complete:  # killed, and no source shows a fill
            return Outcome("NOT_FILLED", error=said.error, venue_status=said.venue_status, evidence=("absent",))
        reason = "; ".join(ev.failures) or "no trace of the order yet"
        return Outcome("UNKNOWN", error=f"{said.error or said.venue_status}; unconfirmed: {reason}")

    # ------------------------------------------------------------------------------ results
    async def _record(self, row: Row, outcome: Outcome, attempts: int, *, sent: bool) -> None:
        """Commit the outcome (compare-and-set on the row's result sequence), then emit its ExecutionResult.
        Losing the compare-and-set never discards fills (D6): if what the winner recorded shows fewer, this
        outcome is recorded on top of it as a correction (the next sequence number)."""
        while True:
            seq = row.result_seq + 1
            record = result_record(
                intent_id=row.idempotency_key,
                follow_id=row.follow_id,
                follower=row.follower,
                leader_fill_id=row.leader_fill_id,
                decision_id=row.decision_id or "",
                occurred_at_us=row.occurred_at_us,
                status=outcome.status,
                seq=DRY_RUN_ATTEMPT if outcome.status == "DRY_RUN" else seq,
                now_us=self._now_us(),
                order_hash=row.order_hash,
                filled_shares_e6=outcome.filled_shares_e6,
                filled_collateral_e6=outcome.filled_collateral_e6,
                fee_e6=outcome.fee_e6,
                error=outcome.error,
                attempts=attempts,
                final=outcome.final,
            )
            if await self.writer.write(Update(row.id, row.result_seq, outcome, attempts, record, self.owner, sent)):
                break
            current = await self.ledger.row(row.idempotency_key)
            if current is None or outcome.filled_shares_e6 <= current.filled_shares_e6:
                log.info("intent %s: outcome %s lost the race to another writer", row.idempotency_key, outcome.status)
                self._leases.pop(row.idempotency_key, None)
                return
            CORRECTIONS.inc()
            log.warning(
                "intent %s: %s was recorded with %d shares while this worker saw %s with %d: correcting",
                row.idempotency_key,
                current.status,
                current.filled_shares_e6,
                outcome.status,
                outcome.filled_shares_e6,
            )
            row, attempts = current, max(attempts, current.attempts)
        self._leases.pop(row.idempotency_key, None)
        self.crash.reached("after_ledger_commit")
        OUTCOMES.labels(outcome.status).inc()
        await self.emit(record)
        self.writer.emitted(row.id, seq)

    async def _terminal(self, row: Row) -> None:
        if row.last_result is not None:
            await self._reemit(row, row.last_result)
            return
        # prewritten as REJECTED / DRY_RUN, crashed before its result was recorded: record it now
        outcome = Outcome(
            row.status, row.filled_shares_e6, row.filled_collateral_e6, row.fee_e6, row.last_error, row.venue_status
        )
        await self._record(row, outcome, row.attempts, sent=False)

    async def _reemit(self, row: Row, result: dict[str, Any]) -> None:
        await self.emit(result)
        self.writer.emitted(row.id, row.result_seq)
