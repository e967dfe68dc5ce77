"""execute, the pure part: classify what the venue said, and build ExecutionResult records.

No I/O here. The executor (horus.execution) prewrites, signs once, POSTs and reconciles; it asks
this module two questions:

- `classify_reply`: one reply to `POST /order` -> an `Outcome` (ledger status, fills, error, and
  whether to back off and re-send the same bytes, or to look the order up before believing it);
- `settle_from_evidence`: what the venue order record, its trades and the chain's `OrderFilled`
  logs say about one order hash -> an `Outcome`, or None while the truth is still unknown.

Statuses (ledger and ExecutionResult): SUBMITTED (resting at the venue), FILLED, PARTIAL,
NOT_FILLED, REJECTED (never accepted: the reason is in `error`), UNKNOWN (no definitive answer yet:
the reconciler settles it), DRY_RUN (signed and recorded, not sent). PENDING is ledger-only: the
prewrite before any POST. Nothing here ever answers FAILED for a missing reply (DESIGN invariant 4).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from horus.codec import envelope
from horus.domain.ids import result_id

STAGE = "execute"
DRY_RUN_ATTEMPT = 0  # result sequence 0 is the dry run's; venue outcomes count from 1

TERMINAL = frozenset({"FILLED", "PARTIAL", "NOT_FILLED", "REJECTED", "FAILED", "DRY_RUN"})
OPEN = frozenset({"PENDING", "UNKNOWN", "SUBMITTED"})  # the reconciler's work
E6 = Decimal(10**6)
PRICE_PLACES = Decimal("0.000001")

# substrings of venue error texts (platform notes 3.8), lowercase
_DUPLICATE = ("duplicated", "invalid_order_duplicated", "already been placed")
_KILLED = ("fok_order_not_filled", "fully filled or killed", "no orders found to match with fak",
           "partially filled or killed", "couldn't be fully filled")
_RETRY_LATER = ("post-only mode", "market is not yet ready", "market_not_ready")  # engine restart aftermath
_DEAD_ORDER_STATUSES = ("CANCELED", "CANCELLED", "UNMATCHED", "INVALID", "EXPIRED")
_LIVE_ORDER_STATUSES = ("LIVE", "DELAYED", "OPEN")
_FAILED_TRADE = "FAILED"


@dataclass(frozen=True)
class Outcome:
    """What one reply or one lookup established about an order."""

    status: str  # SUBMITTED | FILLED | PARTIAL | NOT_FILLED | REJECTED | UNKNOWN
    filled_shares_e6: int = 0
    filled_collateral_e6: int = 0
    fee_e6: int = 0
    error: str | None = None
    venue_status: str | None = None
    retry: bool = False  # 425 / 429 / post-only window: back off and re-send the SAME bytes
    confirm: bool = False  # duplicate or killed reply: look the hash up before trusting this outcome
    evidence: tuple[str, ...] = field(default=())  # which sources spoke (venue-order, trades, chain)

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
def _e6(value: Any) -> int:
    """A venue decimal amount ("5.3", 5.3 as text, "") in 1e-6 units; 0 when absent or garbage."""
    if value is None or value == "":
        return 0
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return 0
    if not number.is_finite() or number < 0:
        return 0
    return int((number * E6).to_integral_value(ROUND_HALF_EVEN))


def avg_price(shares_e6: int, collateral_e6: int) -> str | None:
    if shares_e6 <= 0:
        return None
    return str((Decimal(collateral_e6) / Decimal(shares_e6)).quantize(PRICE_PLACES, ROUND_HALF_EVEN).normalize())


def _text(body: Mapping | None, error: str | None) -> str:
    parts = []
    if isinstance(body, Mapping):
        for key in ("errorMsg", "error", "message", "detail"):
            value = body.get(key)
            if value:
                parts.append(str(value))
    if error:
        parts.append(error)
    return "; ".join(parts)


def _fill_status(shares_e6: int, shape: OrderShape) -> str:
    if shares_e6 <= 0:
        return "NOT_FILLED"
    return "FILLED" if shares_e6 >= shape.shares_e6 else "PARTIAL"


def _reply_fills(body: Mapping, shape: OrderShape) -> tuple[int, int]:
    """(shares, collateral) from makingAmount / takingAmount: the maker side gives what it makes."""
    making, taking = _e6(body.get("makingAmount")), _e6(body.get("takingAmount"))
    return (taking, making) if shape.side == "BUY" else (making, taking)


# ------------------------------------------------------------------------------------- replies
def classify_reply(status_code: int | None, body: Mapping | None, error: str | None, transport_error: bool,
                   shape: OrderShape, *, may_have_landed: bool = False) -> Outcome:
    """One reply to POST /order (V's VenueReply fields) -> Outcome.

    Definitive: a success body (live/matched/delayed/unmatched) or a 4xx naming why. Ambiguous
    (UNKNOWN): no status, a transport error, a 5xx. 425 (engine restart), 429 and the post-only window
    after a restart ask for the same bytes again later. A duplicate means the order exists and a
    FOK/FAK kill may hide a partial fill: both need a lookup by hash (`confirm`).

    `may_have_landed`: an earlier attempt of these same bytes may have been processed (its reply was lost, or a
    worker died mid-POST). Then a refusal proves nothing about the order -- a venue that checks the balance
    before duplicates answers "not enough balance" to the re-send of an order that filled -- so every refusal
    becomes UNKNOWN, to be settled from the venue's and the chain's records (safety review D5)."""
    text = _text(body, error)
    lowered = text.lower()
    if transport_error or status_code is None:
        return Outcome("UNKNOWN", error=f"no reply: {text or 'transport error'}")
    if status_code in (425, 429):
        return Outcome("UNKNOWN", error=f"HTTP {status_code}: {text or 'try later'}", retry=True)
    if status_code >= 500:
        return Outcome("UNKNOWN", error=f"HTTP {status_code}: {text or 'server error'}")
    if any(s in lowered for s in _DUPLICATE):
        return Outcome("UNKNOWN", error=f"duplicate: {text}", confirm=True)
    if status_code >= 300 or not isinstance(body, Mapping) or body.get("success") is False:
        if any(s in lowered for s in _KILLED):
            return Outcome("NOT_FILLED", error=f"killed: {text}", venue_status="killed", confirm=True)
        if any(s in lowered for s in _RETRY_LATER):
            return Outcome("UNKNOWN", error=f"HTTP {status_code}: {text}", retry=True)
        if 200 <= status_code < 300 and not isinstance(body, Mapping):
            return Outcome("UNKNOWN", error=f"HTTP {status_code} with an unreadable body")
        if may_have_landed:
            return Outcome("UNKNOWN", error=f"HTTP {status_code} to a re-send: {text or 'refused'}", confirm=True)
        return Outcome("REJECTED", error=f"HTTP {status_code}: {text or 'rejected without a reason'}")
    venue_status = str(body.get("status") or "").lower()
    shares, collateral = _reply_fills(body, shape)
    if venue_status == "matched":
        return Outcome(_fill_status(shares, shape), shares, collateral, venue_status=venue_status)
    if venue_status == "live":
        if shares > 0:  # crossed part of the book, rests with the remainder
            return Outcome("SUBMITTED", shares, collateral, venue_status=venue_status)
        return Outcome("SUBMITTED", venue_status=venue_status)
    if venue_status == "delayed":  # sports taker delay: the outcome comes later
        return Outcome("SUBMITTED", venue_status=venue_status)
    if venue_status == "unmatched":
        if shape.marketable:  # killed: may still hide a fill
            return Outcome("NOT_FILLED", venue_status=venue_status, confirm=True)
        return Outcome("SUBMITTED", venue_status=venue_status)
    return Outcome("UNKNOWN", error=f"accepted with an unknown status {body.get('status')!r}", confirm=True)


# ------------------------------------------------------------------------------------- lookups
@dataclass(frozen=True)
class ChainFill:
    """One on-chain `OrderFilled` of the order (amounts in 1e-6 units)."""

    shares_e6: int
    collateral_e6: int
    fee_e6: int = 0
    removed: bool = False


def _trade_fills(order_hash: str, trades: Iterable[Mapping]) -> tuple[int, int, int, bool]:
    """(shares, collateral, fee, any) of the order in venue trades, as taker or as one of the makers."""
    shares = collateral = fee = 0
    found = False
    wanted = order_hash.lower()
    for trade in trades:
        if str(trade.get("status", "")).upper().removeprefix("TRADE_STATUS_") == _FAILED_TRADE:
            continue
        if str(trade.get("taker_order_id", "")).lower() == wanted:
            size = _e6(trade.get("size"))
            price = Decimal(str(trade.get("price") or 0))
            shares += size
            collateral += int((Decimal(size) * price).to_integral_value(ROUND_HALF_EVEN))
            fee += _e6(trade.get("fee"))
            found = True
            continue
        for maker in trade.get("maker_orders") or ():
            if str(maker.get("order_id", "")).lower() == wanted:
                size = _e6(maker.get("matched_amount"))
                price = Decimal(str(maker.get("price") or 0))
                shares += size
                collateral += int((Decimal(size) * price).to_integral_value(ROUND_HALF_EVEN))
                found = True
    return shares, collateral, fee, found


def settle_from_evidence(order_hash: str, shape: OrderShape, *, venue_order: Mapping | None,
                         trades: Iterable[Mapping], chain_fills: Iterable[ChainFill], expired: bool) -> Outcome | None:
    """What really happened to `order_hash`, or None when the evidence does not settle it yet.

    Every source is a lower bound on what filled (fills only accumulate), in order of authority: chain,
    trades, the order record; the largest wins. Zero fills settle as NOT_FILLED only when the venue
    knows the order as dead, or (`expired`) when the venue has no order, no trade and the chain no fill
    after the intent's expiry: then the order can never fill. A resting order stays SUBMITTED."""
    evidence = []
    chain = [c for c in chain_fills if not c.removed]
    chain_shares = sum(c.shares_e6 for c in chain)
    chain_collateral = sum(c.collateral_e6 for c in chain)
    chain_fee = sum(c.fee_e6 for c in chain)
    if chain:
        evidence.append("chain")
    trade_shares, trade_collateral, trade_fee, traded = _trade_fills(order_hash, trades)
    if traded:
        evidence.append("trades")
    order_shares = 0
    order_status = None
    if venue_order:
        evidence.append("venue-order")
        order_shares = _e6(venue_order.get("size_matched"))
        order_status = str(venue_order.get("status") or "").upper().removeprefix("ORDER_STATUS_")
        price = venue_order.get("price")
        order_collateral = (int((Decimal(order_shares) * Decimal(str(price))).to_integral_value(ROUND_HALF_EVEN))
                            if price not in (None, "") else 0)
    candidates = [(chain_shares, chain_collateral, chain_fee), (trade_shares, trade_collateral, trade_fee)]
    if venue_order:
        candidates.append((order_shares, order_collateral, 0))
    shares, collateral, fee = max(candidates, key=lambda c: c[0])
    fee = max(fee, chain_fee, trade_fee)
    resting = order_status in _LIVE_ORDER_STATUSES
    dead = order_status is not None and (order_status.startswith(_DEAD_ORDER_STATUSES) or order_status == "MATCHED")
    ev = tuple(evidence)
    if shares > 0:
        status = _fill_status(shares, shape)
        if status == "PARTIAL" and resting:
            return Outcome("SUBMITTED", shares, collateral, fee, venue_status=order_status.lower(), evidence=ev)
        if status == "PARTIAL" and not shape.marketable and not dead and not expired:
            return None  # a resting order the venue no longer lists: wait for more evidence
        return Outcome(status, shares, collateral, fee, venue_status=(order_status or "").lower() or None,
                       evidence=ev)
    if resting:
        return Outcome("SUBMITTED", venue_status=order_status.lower(), evidence=ev)
    if dead:
        return Outcome("NOT_FILLED", venue_status=order_status.lower(), evidence=ev)
    if expired and not evidence:
        return Outcome("NOT_FILLED", error="not at the venue: no order, no trade, no chain fill after expiry",
                       evidence=("absent",))
    return None


# ------------------------------------------------------------------------------------- results
def result_record(*, intent_id: str, follow_id: str, follower: str, leader_fill_id: str, decision_id: str,
                  occurred_at_us: int, status: str, seq: int, now_us: int, order_hash: str | None,
                  filled_shares_e6: int = 0, filled_collateral_e6: int = 0, fee_e6: int = 0,
                  error: str | None = None, attempts: int = 0) -> dict:
    """One ExecutionResult. Its id is result_id(intent, seq): the ledger hands out each seq once and
    keeps the record, so a redelivery re-emits the very same event."""
    return {
        "envelope": envelope(result_id(intent_id, seq), STAGE, occurred_at_us, causation_id=decision_id,
                             produced_at_us=now_us),
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
    }


def decision_timestamp_ms(decision: Mapping) -> int:
    """The signed order's timestamp: fixed by the decision (produced_at, else occurred_at), so a
    re-signing of the same intent could only ever give the same bytes."""
    env = decision["envelope"]
    produced = env.get("produced_at_us")
    return int((produced if produced else env["occurred_at_us"]) // 1000)


def expires_at_us(decision: Mapping, default_ttl_s: float) -> int:
    """No POST (or same-bytes retry) after this: the decision's expiry, else decided-at + default window."""
    if decision.get("expires_at_us"):
        return int(decision["expires_at_us"])
    return decision_timestamp_ms(decision) * 1000 + int(default_ttl_s * 1_000_000)


def execute(decision: dict, state: object = None, *, now_us: int) -> tuple[list[dict], object]:
    """(CopyDecision, state) -> ([ExecutionResult], state) for the broker-free dry run: a COPY gives
    one DRY_RUN result (nothing signed, sent or filled); a SKIP gives nothing. The executor's dry-run
    mode signs and records as well, and emits the same event (sequence 0)."""
    if decision["action"] != "COPY":
        return [], state
    env = decision["envelope"]
    intent = decision["intent_id"]
    if not intent:
        raise ValueError(f"COPY decision {env['event_id']} has no intent_id")
    return [result_record(intent_id=intent, follow_id=decision["follow_id"], follower=decision["follower"],
                          leader_fill_id=decision["leader_fill_id"], decision_id=env["event_id"],
                          occurred_at_us=env["occurred_at_us"], status="DRY_RUN", seq=DRY_RUN_ATTEMPT,
                          now_us=now_us, order_hash=None, attempts=DRY_RUN_ATTEMPT)], state
