"""Polymarket's order replies, order records and trades, read into the domain's facts (horus/domain/execute.py:
ReplyFacts, VenueOrder, TradePart). The executor's rules decide on those facts; the CLOB's JSON keys, status
spellings and error texts are known here only (platform notes 3.8, 4, 5).

Amounts are venue decimals ("5.3", 5.3) read into 1e-6 units. In a reply a missing amount means "none"; in an
order record or a trade it means "unknown" (None), never zero, since evidence settlement must not guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from horus.domain.amounts import E6, AmountError, json_decimal
from horus.domain.execute import Accepted, OrderState, ReplyFacts, TradePart, TradeState, VenueOrder

# substrings of venue error texts (platform notes 3.8), lowercase
_DUPLICATE = ("duplicated", "invalid_order_duplicated", "already been placed")
_KILLED = (
    "fok_order_not_filled",
    "fully filled or killed",
    "no orders found to match with fak",
    "partially filled or killed",
    "couldn't be fully filled",
)
_RETRY_LATER = ("post-only mode", "market is not yet ready", "market_not_ready")  # engine restart aftermath


_ACCEPTED = {a.value: a for a in Accepted if a is not Accepted.OTHER}  # POST /order `status`, any case
# order record `status` (ORDER_STATUS_ prefix removed); a dead status may carry a suffix
# (CANCELED_MARKET_RESOLVED), so dead ones match by prefix
_DEAD_ORDER_STATUSES = ("CANCELED", "CANCELLED", "UNMATCHED", "INVALID", "EXPIRED")
_RESTING_ORDER_STATUSES = ("LIVE", "DELAYED", "OPEN")
_TRADE_STATES = {"CONFIRMED": TradeState.CONFIRMED, "FAILED": TradeState.FAILED}  # the rest are in flight


def venue_decimal(value: Any) -> Decimal | None:
    """A venue decimal ("5.3", 5.3) as a finite Decimal >= 0 (read by the one JSON decimal reader); None when absent,
    empty or unreadable ("1,000", "abc", "NaN", "-1"): evidence never guesses a number."""
    try:
        number = json_decimal(value)
    except AmountError:
        return None
    return None if number < 0 else number


def amount_e6(value: Any) -> int | None:
    """A venue decimal amount in 1e-6 units; None when absent, empty or unreadable: unknown, never 0."""
    number = venue_decimal(value)
    return None if number is None else int((number * E6).to_integral_value(ROUND_HALF_EVEN))


def _error_text(body: Any, error: str | None) -> str:
    parts = []
    if isinstance(body, Mapping):
        for key in ("errorMsg", "error", "message", "detail"):
            value = body.get(key)
            if value:
                parts.append(str(value))
    if error:
        parts.append(error)
    return "; ".join(parts)


def reply_facts(status_code: int | None, body: Any, error: str | None, transport_error: bool) -> ReplyFacts:
    """One reply to POST /order (status, parsed body, error text, whether the transport failed) as facts."""
    text = _error_text(body, error)
    lowered = text.lower()
    facts = ReplyFacts(
        status_code=status_code,
        transport_error=transport_error,
        text=text,
        duplicate=any(s in lowered for s in _DUPLICATE),
        killed=any(s in lowered for s in _KILLED),
        retry_later=any(s in lowered for s in _RETRY_LATER),
    )
    if not isinstance(body, Mapping):
        return facts
    raw = body.get("status")
    status = str(raw or "").lower()
    return replace(
        facts,
        object_body=True,
        success=body["success"] if isinstance(body.get("success"), bool) else None,
        accepted=_ACCEPTED.get(status, Accepted.OTHER),
        status_text=raw if raw is None or isinstance(raw, str) else str(raw),
        # a missing or unreadable amount in a reply means "none"
        making_e6=amount_e6(body.get("makingAmount")) or 0,
        taking_e6=amount_e6(body.get("takingAmount")) or 0,
    )


def venue_order(body: Mapping[str, Any]) -> VenueOrder:
    """The venue's order record (GET /data/order/{hash})."""
    status = str(body.get("status") or "").upper().removeprefix("ORDER_STATUS_")
    if status in _RESTING_ORDER_STATUSES:
        state = OrderState.RESTING
    elif status == "MATCHED":
        state = OrderState.MATCHED
    elif status.startswith(_DEAD_ORDER_STATUSES):
        state = OrderState.DEAD
    else:
        state = OrderState.OTHER
    return VenueOrder(state, status, amount_e6(body.get("size_matched")))


def order_trades(order_hash: str, trades: Iterable[Any]) -> list[TradePart]:
    """The order's parts in venue trades (GET /data/trades): where it was the taker (`taker_order_id`), its
    trade's size, price and fee rate; where it was a maker, its `maker_orders` entry's. Other trades are left out."""
    wanted = order_hash.lower()
    parts = []
    for trade in trades:
        if not isinstance(trade, Mapping):
            continue
        if str(trade.get("taker_order_id", "")).lower() == wanted:
            size, price, bps = trade.get("size"), trade.get("price"), trade.get("fee_rate_bps")
        else:
            maker = next(
                (
                    m
                    for m in trade.get("maker_orders") or ()
                    if isinstance(m, Mapping) and str(m.get("order_id", "")).lower() == wanted
                ),
                None,
            )
            if maker is None:
                continue
            size, price, bps = maker.get("matched_amount"), maker.get("price"), maker.get("fee_rate_bps")
        status = str(trade.get("status") or "").upper().removeprefix("TRADE_STATUS_")
        parts.append(
            TradePart(
                _TRADE_STATES.get(status, TradeState.IN_FLIGHT),
                amount_e6(size),
                venue_decimal(price),
                venue_decimal(bps),
            )
        )
    return parts
