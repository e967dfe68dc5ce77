"""execute, the pure part: classify what the venue said, and build ExecutionResult records.

No I/O here, and no wire format: the venue adapter (horus/venue/polymarket/replies.py, evidence.py) reads the
venue's replies, order records and trades into the facts declared below. The executor (horus.execution)
prewrites, signs once, POSTs and reconciles; it asks this module two questions:

- `classify_reply`: one reply to `POST /order` -> an `Outcome` (ledger status, fills, error, and
  whether to back off and re-send the same bytes, or to look the order up before believing it);
- `settle_from_evidence`: what the venue order record, its trades and the chain's `OrderFilled`
  logs say about one order hash -> an `Outcome` (SUBMITTED with venue_status "in-flight" while its
  trades are not final), or None while the truth is still unknown.

Statuses (ledger and ExecutionResult): SUBMITTED (resting at the venue), FILLED, PARTIAL,
NOT_FILLED, REJECTED (never accepted: the reason is in `error`), UNKNOWN (no definitive answer yet:
the reconciler settles it), DRY_RUN (signed and recorded, not sent). PENDING is ledger-only: the
prewrite before any POST. Nothing here ever answers FAILED for a missing reply (DESIGN invariant 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from horus.domain.events import TERMINAL, envelope
from horus.domain.fees import fee_at_rate_e6, taker_fee_e6
from horus.domain.ids import result_id

STAGE = "execute"
DRY_RUN_ATTEMPT = 0  # result sequence 0 is the dry run's; venue outcomes count from 1

MAX_FEE_RATE = Decimal("0.05")  # the exchange's maxFeeRateBps default (500 bps), taken per share: never too low
PRICE_PLACES = Decimal("0.000001")


# ------------------------------------------------------------------------------------- the venue's facts
# The venue adapter (horus/venue/polymarket/replies.py) reads Polymarket's replies, order records and trades into
# these; the rules below decide on them and never see the wire format.
class Accepted(StrEnum):
    """What an accepted POST /order says became of the order."""

    LIVE = "live"  # rests on the book (possibly after crossing part of it)
    MATCHED = "matched"  # filled at once (the fills settle on chain later)
    DELAYED = "delayed"  # sports taker delay: the outcome comes later
    UNMATCHED = "unmatched"  # nothing matched: a FOK/FAK was killed, or a post-only order did not rest
    OTHER = "other"  # a status this engine does not know


@dataclass(frozen=True)
class ReplyFacts:
    """One reply to POST /order. `text` is every error text the venue gave (and the transport's)."""

    status_code: int | None  # None: no reply at all
    transport_error: bool = False
    text: str = ""
    object_body: bool = False  # the body is a JSON object (an accepted order always is)
    success: bool | None = None  # the body's own success flag, when it has one
    accepted: Accepted | None = None  # the body's order status, when it has one
    status_text: str | None = None  # that status as the venue wrote it (for messages)
    making_e6: int = 0  # what the order gave / got so far (absent: none)
    taking_e6: int = 0
    duplicate: bool = False  # the venue says this order was placed before: it exists
    killed: bool = False  # a FOK/FAK that could not fill (it may still hide a partial fill)
    retry_later: bool = False  # the engine's restart aftermath (post-only window, market not ready)


class OrderState(StrEnum):
    """Where the venue's order record puts the order."""

    RESTING = "resting"  # live on the book (or delayed)
    MATCHED = "matched"  # matched in full (its trades may still be settling)
    DEAD = "dead"  # canceled, unmatched, invalid or expired: it can fill no more
    OTHER = "other"  # a status this engine does not know


@dataclass(frozen=True)
class VenueOrder:
    """The venue's record of an order: its state, its status as written, and its matched shares (None: unreadable,
    which is unknown, never zero)."""

    state: OrderState
    status_text: str
    size_matched_e6: int | None


class TradeState(StrEnum):
    CONFIRMED = "confirmed"  # settled on chain: a final fill
    FAILED = "failed"  # matched, then its settlement failed: no fill
    IN_FLIGHT = "in-flight"  # matched, mined, retrying, or a status we do not know: may still fill or fail


@dataclass(frozen=True)
class TradePart:
    """The order's own part in one venue trade (as the taker, or as one of the makers). An amount, price or fee
    rate the adapter could not read is None."""

    state: TradeState
    shares_e6: int | None
    price: Decimal | None
    fee_rate_bps: Decimal | None  # the rate of the order's role, in basis points


@dataclass(frozen=True)
class ChainFill:
    """One on-chain `OrderFilled` of the order (amounts in 1e-6 units)."""

    shares_e6: int
    collateral_e6: int
    fee_e6: int = 0
    removed: bool = False


@dataclass(frozen=True)
class Outcome:
    """What one reply or one lookup established about an order."""

    status: str  # SUBMITTED | FILLED | PARTIAL | NOT_FILLED | REJECTED | UNKNOWN
    filled_shares_e6: int = 0
    filled_collateral_e6: int = 0  # shares x fill price, before fees
    fee_e6: int = 0  # platform fee: a BUY paid collateral + fee, a SELL received collateral - fee
    error: str | None = None
    venue_status: str | None = None
    retry: bool = False  # 425 / 429 / post-only window: back off and re-send the SAME bytes
    confirm: bool = False  # duplicate or killed reply: look the hash up before trusting this outcome
    evidence: tuple[str, ...] = field(default=())  # which sources spoke (venue-order, trades, chain)
    # False: fills the venue matched but that have not settled on chain (a `matched` reply): the row is recorded
    # at once (decide books it), and the reconciler confirms it from final evidence, or corrects it (D11)
    final: bool = True

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class OrderShape:
    """The amounts of the signed order, to tell a full fill from a partial one."""

    side: str  # BUY | SELL
    order_type: str  # GTC | GTD | FOK | FAK
    maker_amount: int
    taker_amount: int

    @property
    def shares_e6(self) -> int:
        return self.taker_amount if self.side == "BUY" else self.maker_amount

    @property
    def marketable(self) -> bool:
        return self.order_type in ("FOK", "FAK")


# ------------------------------------------------------------------------------------- numbers
def avg_price(shares_e6: int, collateral_e6: int) -> str | None:
    if shares_e6 <= 0:
        return None
    return str((Decimal(collateral_e6) / Decimal(shares_e6)).quantize(PRICE_PLACES, ROUND_HALF_EVEN).normalize())


def _fill_status(shares_e6: int, shape: OrderShape) -> str:
    if shares_e6 <= 0:
        return "NOT_FILLED"
    return "FILLED" if shares_e6 >= shape.shares_e6 else "PARTIAL"


def with_reply_fee(outcome: Outcome, side: str, schedule: tuple[Decimal, Decimal] | None) -> Outcome:
    """A reply's fills priced with the market's fee `schedule` (rate, exponent), since a reply carries no fee
    (safety review D8). The reply's amounts, as the V2 flows: a BUY's `makingAmount` is the fill before its fee;
    a SELL's `takingAmount` is its proceeds after the fee, so the gross collateral is that plus the fee. An unknown
    schedule prices the fee at the maximum rate the exchange accepts (5 %), an over-estimate, never an
    under-one: a provisional figure the reconciler replaces with the trades' own fees when it confirms the fill."""
    shares = outcome.filled_shares_e6
    if shares <= 0 or outcome.fee_e6:
        return outcome
    rate, exponent = schedule if schedule is not None else (MAX_FEE_RATE, Decimal(0))
    price = min(Decimal(1), Decimal(outcome.filled_collateral_e6) / Decimal(shares))
    fee = taker_fee_e6(shares, price, rate, exponent)
    collateral = outcome.filled_collateral_e6 + (fee if side == "SELL" else 0)
    return replace(outcome, filled_collateral_e6=collateral, fee_e6=fee)


def _reply_fills(reply: ReplyFacts, shape: OrderShape) -> tuple[int, int]:
    """(shares, collateral) from what the order made and took: the maker side gives what it makes."""
    making, taking = reply.making_e6, reply.taking_e6
    return (taking, making) if shape.side == "BUY" else (making, taking)


# ------------------------------------------------------------------------------------- replies
def classify_reply(reply: ReplyFacts, shape: OrderShape, *, may_have_landed: bool = False) -> Outcome:
    """One reply to POST /order -> Outcome.

    Definitive: a success body (live/matched/delayed/unmatched) or a 4xx naming why. Ambiguous
    (UNKNOWN): no status, a transport error, a 5xx. 425 (engine restart), 429 and the post-only window
    after a restart ask for the same bytes again later. A duplicate means the order exists and a
    FOK/FAK kill may hide a partial fill: both need a lookup by hash (`confirm`).

    `may_have_landed`: an earlier attempt of these same bytes may have been processed (its reply was lost, or a
    worker died mid-POST). Then a refusal proves nothing about the order -- a venue that checks the balance
    before duplicates answers "not enough balance" to the re-send of an order that filled -- so every refusal
    becomes UNKNOWN, to be settled from the venue's and the chain's records (safety review D5)."""
    status_code, text = reply.status_code, reply.text
    if reply.transport_error or status_code is None:
        return Outcome("UNKNOWN", error=f"no reply: {text or 'transport error'}")
    if status_code in (425, 429):
        return Outcome("UNKNOWN", error=f"HTTP {status_code}: {text or 'try later'}", retry=True)
    if status_code >= 500:
        return Outcome("UNKNOWN", error=f"HTTP {status_code}: {text or 'server error'}")
    if reply.duplicate:
        return Outcome("UNKNOWN", error=f"duplicate: {text}", confirm=True)
    if status_code >= 300 or not reply.object_body or reply.success is False:
        return _refused(reply, status_code, may_have_landed)
    return _accepted(reply, shape)


def _refused(reply: ReplyFacts, status_code: int, may_have_landed: bool) -> Outcome:
    """A reply that did not accept the order (a 4xx, an unreadable 2xx body, or success false)."""
    text = reply.text
    if reply.killed:
        return Outcome("NOT_FILLED", error=f"killed: {text}", venue_status="killed", confirm=True)
    if reply.retry_later:
        return Outcome("UNKNOWN", error=f"HTTP {status_code}: {text}", retry=True)
    if 200 <= status_code < 300 and not reply.object_body:
        return Outcome("UNKNOWN", error=f"HTTP {status_code} with an unreadable body")
    if may_have_landed:
        return Outcome("UNKNOWN", error=f"HTTP {status_code} to a re-send: {text or 'refused'}", confirm=True)
    return Outcome("REJECTED", error=f"HTTP {status_code}: {text or 'rejected without a reason'}")


def _accepted(reply: ReplyFacts, shape: OrderShape) -> Outcome:
    """A reply that accepted the order: what became of it."""
    accepted, venue_status = reply.accepted, (reply.status_text or "").lower()
    shares, collateral = _reply_fills(reply, shape)
    if accepted is Accepted.MATCHED:
        return Outcome(_fill_status(shares, shape), shares, collateral, venue_status=venue_status, final=shares == 0)
    if accepted is Accepted.LIVE:
        if shares > 0:  # crossed part of the book, rests with the remainder
            return Outcome("SUBMITTED", shares, collateral, venue_status=venue_status)
        return Outcome("SUBMITTED", venue_status=venue_status)
    if accepted is Accepted.DELAYED:  # sports taker delay: the outcome comes later
        return Outcome("SUBMITTED", venue_status=venue_status)
    if accepted is Accepted.UNMATCHED:
        if shape.marketable:  # killed: may still hide a fill
            return Outcome("NOT_FILLED", venue_status=venue_status, confirm=True)
        return Outcome("SUBMITTED", venue_status=venue_status)
    return Outcome("UNKNOWN", error=f"accepted with an unknown status {reply.status_text!r}", confirm=True)


# ------------------------------------------------------------------------------------- lookups
@dataclass
class _Trades:
    """What the venue's trades say about one order (amounts in 1e-6 units)."""

    shares: int = 0  # CONFIRMED: final fills
    collateral: int = 0  # shares x trade price, before fees
    fee: int = 0  # the order's own fee in those fills (taker or maker rate of its entry)
    in_flight: int = 0  # MATCHED / MINED / RETRYING / any other status: may still fill or fail
    failed: int = 0  # FAILED: matched, then the settlement failed: no fill
    seen: bool = False  # any trade of the order, whatever its status
    unreadable: bool = False  # a trade of the order with an amount, price or fee rate we cannot read


def _trade_fills(parts: Iterable[TradePart]) -> _Trades:
    """The order's part in venue trades (platform notes 3.8, 4, 5).

    Only CONFIRMED is a final fill; FAILED is no fill; the rest are in flight. The fee of each fill is its shares
    x the rate the venue reports for the order's role. That rate is read as the effective rate at the trade's
    price, r x (p(1-p))^e in basis points (the simulator writes it so; taker-only markets report "0" for makers),
    so fee = shares x bps / 10^4 rounded to 5 decimals."""
    out = _Trades()
    for part in parts:
        out.seen = True
        shares, price, bps = part.shares_e6, part.price, part.fee_rate_bps
        if shares is None or price is None or price > 1 or bps is None:
            out.unreadable = True
            continue
        if part.state is TradeState.FAILED:
            out.failed += shares
        elif part.state is TradeState.CONFIRMED:
            out.shares += shares
            out.collateral += int((Decimal(shares) * price).to_integral_value(ROUND_HALF_EVEN))
            out.fee += fee_at_rate_e6(shares, bps.scaleb(-4))
        else:
            out.in_flight += shares
    return out


def settle_from_evidence(
    shape: OrderShape,
    *,
    venue_order: VenueOrder | None,
    trades: Iterable[TradePart],
    chain_fills: Iterable[ChainFill],
    expired: bool,
) -> Outcome | None:
    """What really happened to an order, from its venue record, its parts in venue trades and the chain's
    `OrderFilled` logs of its hash: a terminal Outcome only once the evidence is final, a
    SUBMITTED one while the order rests or its trades are in flight, None while nothing settles it.

    Final fills come from on-chain `OrderFilled` logs (not removed: authoritative, with their exact fee)
    and CONFIRMED venue trades (fee from each trade's rate, see `_trade_fills`); the larger wins, as both
    only ever grow. Not final, so never terminal:
    - trades MATCHED / MINED / RETRYING: SUBMITTED with venue_status "in-flight" and only the confirmed
      fills, until each trade is CONFIRMED (a fill) or FAILED (no fill);
    - the order record's `size_matched` counts matched shares whether or not they settled, so it is
      checked, not believed: more matched than the trades explain (confirmed + in flight + failed) means
      trades we cannot see yet: "in-flight" as well;
    - an order record whose `size_matched` is missing or unreadable, or a trade of the order with an
      unreadable amount, price or fee rate: unknown (None), never zero. So is a record saying MATCHED
      with 0 matched and no FAILED trade to explain it: the venue contradicts itself.
    Zero fills settle as NOT_FILLED only when the venue knows the order as dead (or MATCHED with only
    FAILED trades), or (`expired`) when the venue has no order, no trade and the chain no fill after the
    intent's expiry: then the order can never fill. A resting order stays SUBMITTED.

    Amounts: `filled_collateral_e6` is shares x fill price before fees and `fee_e6` the order's fee: a BUY
    paid collateral + fee, a SELL received collateral - fee."""
    evidence = []
    chain = [c for c in chain_fills if not c.removed]
    if chain:
        evidence.append("chain")
    chain_fill = (sum(c.shares_e6 for c in chain), sum(c.collateral_e6 for c in chain), sum(c.fee_e6 for c in chain))
    traded = _trade_fills(trades)
    if traded.seen:
        evidence.append("trades")
    if traded.unreadable:
        return None
    state = None
    matched = None
    if venue_order is not None:
        evidence.append("venue-order")
        state, matched = venue_order.state, venue_order.size_matched_e6
        if matched is None:
            return None
    # chain first: it is what settled on-chain, fee included
    shares, collateral, fee = max([chain_fill, (traded.shares, traded.collateral, traded.fee)], key=lambda c: c[0])
    ev = tuple(evidence)
    resting = state is OrderState.RESTING
    venue_status = venue_order.status_text.lower() if venue_order is not None and venue_order.status_text else None
    unexplained = matched is not None and matched > max(shares, traded.shares + traded.in_flight + traded.failed)
    if traded.in_flight > 0 or (unexplained and not resting):
        return Outcome("SUBMITTED", shares, collateral, fee, venue_status="in-flight", evidence=ev)
    dead = state in (OrderState.DEAD, OrderState.MATCHED)
    if state is OrderState.MATCHED and shares == 0 and traded.failed == 0:
        return None  # MATCHED with nothing matched: the venue contradicts itself
    if shares > 0:
        status = _fill_status(shares, shape)
        if status == "PARTIAL" and resting:
            return Outcome("SUBMITTED", shares, collateral, fee, venue_status=venue_status, evidence=ev)
        if status == "PARTIAL" and not shape.marketable and not dead and not expired:
            return None  # a resting order the venue no longer lists: wait for more evidence
        return Outcome(status, shares, collateral, fee, venue_status=venue_status, evidence=ev)
    if resting:
        return Outcome("SUBMITTED", venue_status=venue_status, evidence=ev)
    if dead:
        return Outcome("NOT_FILLED", venue_status=venue_status, evidence=ev)
    if expired and not chain and venue_order is None and traded.shares == traded.in_flight == 0:
        if traded.failed:
            return Outcome(
                "NOT_FILLED", error="its trades FAILED and no order is left at the venue after expiry", evidence=ev
            )
        return Outcome(
            "NOT_FILLED", error="not at the venue: no order, no trade, no chain fill after expiry", evidence=("absent",)
        )
    return None


# ------------------------------------------------------------------------------------- results
def result_record(
    *,
    intent_id: str,
    follow_id: str,
    follower: str,
    leader_fill_id: str,
    decision_id: str,
    occurred_at_us: int,
    status: str,
    seq: int,
    now_us: int,
    order_hash: str | None,
    filled_shares_e6: int = 0,
    filled_collateral_e6: int = 0,
    fee_e6: int = 0,
    error: str | None = None,
    attempts: int = 0,
    final: bool = True,
) -> dict[str, Any]:
    """One ExecutionResult. Its id is result_id(intent, seq): the ledger hands out each seq once and
    keeps the record, so a redelivery re-emits the very same event."""
    return {
        "envelope": envelope(
            result_id(intent_id, seq), STAGE, occurred_at_us, causation_id=decision_id, produced_at_us=now_us
        ),
        "intent_id": intent_id,
        "follow_id": follow_id,
        "follower": follower,
        "leader_fill_id": leader_fill_id,
        "status": status,
        "order_hash": order_hash,
        "filled_shares_e6": filled_shares_e6,
        "filled_collateral_e6": filled_collateral_e6,
        "avg_price": avg_price(filled_shares_e6, filled_collateral_e6),
        "fee_e6": fee_e6,
        "error": error,
        "attempts": attempts,
        "final": final,
        "seq": seq,
    }


def decision_timestamp_ms(decision: Mapping[str, Any]) -> int:
    """The signed order's timestamp: fixed by the decision (produced_at, else occurred_at), so a
    re-signing of the same intent could only ever give the same bytes."""
    env = decision["envelope"]
    produced = env.get("produced_at_us")
    return int((produced if produced else env["occurred_at_us"]) // 1000)


def expires_at_us(decision: Mapping[str, Any], default_ttl_s: float) -> int:
    """No POST (or same-bytes retry) after this: the decision's expiry, else decided-at + default window."""
    if decision.get("expires_at_us"):
        return int(decision["expires_at_us"])
    return decision_timestamp_ms(decision) * 1000 + int(default_ttl_s * 1_000_000)


def execute(decision: dict[str, Any], state: object = None, *, now_us: int) -> tuple[list[dict[str, Any]], object]:
    """(CopyDecision, state) -> ([ExecutionResult], state) for the broker-free dry run: a COPY gives
    one DRY_RUN result (nothing signed, sent or filled); a SKIP gives nothing. The executor's dry-run
    mode signs and records as well, and emits the same event (sequence 0)."""
    if decision["action"] != "COPY":
        return [], state
    env = decision["envelope"]
    intent = decision["intent_id"]
    if not intent:
        raise ValueError(f"COPY decision {env['event_id']} has no intent_id")
    return [
        result_record(
            intent_id=intent,
            follow_id=decision["follow_id"],
            follower=decision["follower"],
            leader_fill_id=decision["leader_fill_id"],
            decision_id=env["event_id"],
            occurred_at_us=env["occurred_at_us"],
            status="DRY_RUN",
            seq=DRY_RUN_ATTEMPT,
            now_us=now_us,
            order_hash=None,
            attempts=DRY_RUN_ATTEMPT,
        )
    ], state
