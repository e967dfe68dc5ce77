"""One order book per token: price-time priority, integer prices (price_e6) and sizes (shares_e6)."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from horus.venue.simulator.clob.units import E6


@dataclass(slots=True)
class VenueOrder:
    """An order the venue accepted (resting, filled or killed); sizes are shares in 6-decimal units."""

    order_id: str
    owner: str  # the api key that posted it ("" for synthetic liquidity)
    maker: str  # funds holder, lowercase
    signer: str
    token_id: str
    market: str
    outcome: str
    side: str  # "BUY" | "SELL"
    price_e6: int  # limit price in micro-dollars per share (resting orders are on the tick grid)
    size_e6: int  # shares the order may fill: takerAmount for BUY, makerAmount for SELL
    maker_amount: int
    taker_amount: int
    order_type: str
    signature_type: int = 0
    metadata: str = "0x" + "00" * 32
    builder: str = "0x" + "00" * 32
    expiration: int = 0
    post_only: bool = False
    created_ms: int = 0
    received_us: int = 0  # when its POST reached the venue, before the simulated latency (latency benchmarks)
    matched_e6: int = 0  # matched in trades not FAILED (settled or still in flight)
    pending_e6: int = 0  # the part of matched_e6 whose trades are still in flight (trade status lag)
    status: str = "LIVE"
    trade_ids: list[str] = field(default_factory=list)
    reserved_e6: int = 0  # collateral (BUY) or tokens (SELL) still held for the resting remainder
    synthetic: bool = False
    post_count: int = 1  # how many times this hash was POSTed (re-posts are rejected as duplicates)

    @property
    def remaining_e6(self) -> int:
        return self.size_e6 - self.matched_e6


class Book:
    """Bids and asks as price -> FIFO queue of resting orders, plus sorted price lists."""

    def __init__(self, token_id: str):
        self.token_id = token_id
        self._levels: dict[str, dict[int, deque[VenueOrder]]] = {"BUY": {}, "SELL": {}}  # side -> price_e6 -> FIFO
        self._prices: dict[str, list[int]] = {"BUY": [], "SELL": []}  # ascending
        self.last_trade_price_e6 = 0

    def add(self, order: VenueOrder) -> None:
        levels = self._levels[order.side]
        queue = levels.get(order.price_e6)
        if queue is None:
            queue = levels[order.price_e6] = deque()
            bisect.insort(self._prices[order.side], order.price_e6)
        queue.append(order)

    def remove(self, order: VenueOrder) -> None:
        levels = self._levels[order.side]
        queue = levels.get(order.price_e6)
        if queue is None:
            return
        try:
            queue.remove(order)
        except ValueError:
            return
        if not queue:
            del levels[order.price_e6]
            prices = self._prices[order.side]
            del prices[bisect.bisect_left(prices, order.price_e6)]

    def resting(self, side: str) -> Iterator[VenueOrder]:
        """Orders of one side in priority order: best price first, then oldest."""
        prices = self._prices[side]
        ordered = reversed(prices) if side == "BUY" else iter(prices)
        for price in list(ordered):
            yield from list(self._levels[side].get(price, ()))

    def best(self, side: str) -> int | None:
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side == "BUY" else prices[0]

    def depth(self, side: str) -> list[tuple[int, int]]:
        """(price_e6, shares_e6) per level, best first."""
        prices = self._prices[side]
        ordered = reversed(prices) if side == "BUY" else prices
        return [(p, sum(o.remaining_e6 for o in self._levels[side][p])) for p in ordered]


def crosses(taker_side: str, level_price_e6: int, maker_amount: int, taker_amount: int) -> bool:
    """Whether a resting level at `level_price_e6` is within the taker's signed worst price.

    The limit is the exact ratio of the signed amounts (cross-multiplied, as the exchange does):
    BUY pays at most makerAmount/takerAmount per share, SELL receives at least takerAmount/makerAmount.
    """
    if taker_side == "BUY":
        return level_price_e6 * taker_amount <= maker_amount * E6
    return level_price_e6 * maker_amount >= taker_amount * E6


def plan_fills(book: Book, taker: VenueOrder, want_e6: int, now_s: float) -> list[tuple[VenueOrder, int]]:
    """Maker orders and share quantities that would fill `want_e6` of the taker, best price first.

    Pure: nothing is changed. Expired GTD makers are skipped (the caller expires them).
    """
    fills: list[tuple[VenueOrder, int]] = []
    opposite = "SELL" if taker.side == "BUY" else "BUY"
    left = want_e6
    for maker in book.resting(opposite):
        if left <= 0:
            break
        if not crosses(taker.side, maker.price_e6, taker.maker_amount, taker.taker_amount):
            break
        if maker.expiration and maker.expiration <= now_s:
            continue
        qty = min(left, maker.remaining_e6)
        if qty > 0:
            fills.append((maker, qty))
            left -= qty
    return fills
