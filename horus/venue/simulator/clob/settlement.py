"""Trade settlement lag (faults `trade_mined_seconds`, `trade_confirmed_seconds`, `trade_failed_rate`).

A match moves balances and `size_matched` at once, as the venue's book-keeping does, and its trade starts
MATCHED; on every request (lazily, by the clock: MatchingEngine.advance) trades whose time has come become
MINED (or RETRYING when they will fail), then CONFIRMED or FAILED. Which ones fail is rolled at the match from
the seeded RNG. A FAILED trade never happened: its balance effects are reversed for the taker and every maker
(fees included), and `size_matched` of each order goes down by its part. An order left with a remainder
keeps its status: a LIVE one rests with the larger remainder (its reservation grows to cover it); one the
trade had filled (MATCHED) or a killed taker stays off the book, as re-adding it could cross the book.
Balances may then go below what was since spent or sold (the venue's books were ahead of the chain).
The order log (`/_sim/orders`) shows per order `size_matched_e6` (matched, not failed),
`pending_matched_e6` (still in flight) and `confirmed_matched_e6` (final): once nothing is pending,
`size_matched_e6 == confirmed_matched_e6` is the final truth. With all three faults at 0, trades are
born CONFIRMED.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from horus.venue.simulator.clob.book import VenueOrder
from horus.venue.simulator.clob.faults import Faults


@dataclass
class Settlement:
    """An in-flight trade's effects, kept until it is final so a FAILED one can be reversed exactly."""

    taker: VenueOrder
    shares: int
    notional: int
    fee: int  # the taker's
    makers: list[tuple[VenueOrder, int, int, int]]  # (order, shares, notional, maker fee)
    fails: bool = False

    def parts(self) -> list[tuple[VenueOrder, int]]:
        return [(self.taker, self.shares)] + [(maker, qty) for maker, qty, _, _ in self.makers]


class SettlementClock:
    """The trades still in flight, and when each next changes status."""

    def __init__(self, faults: Faults):
        self._faults = faults
        self._in_flight: dict[str, Settlement] = {}  # by trade id
        self._clock: list[tuple[float, int, bool, str]] = []  # (at, seq, final?, trade id)
        self._seq = itertools.count(1)

    def track(self, trade_id: str, settlement: Settlement, now: float) -> str:
        """The new trade's status: CONFIRMED at once, or MATCHED and in flight under the settlement-lag faults."""
        settings = self._faults.settings
        settlement.fails = self._faults.roll(settings.trade_failed_rate)
        final_in = max(settings.trade_confirmed_seconds, settings.trade_mined_seconds)
        if final_in <= 0 and not settlement.fails:
            return "CONFIRMED"
        self._in_flight[trade_id] = settlement
        for order, qty in settlement.parts():
            order.pending_e6 += qty
        seq = next(self._seq)
        heapq.heappush(self._clock, (now + min(settings.trade_mined_seconds, final_in), seq, False, trade_id))
        heapq.heappush(self._clock, (now + final_in, seq, True, trade_id))
        return "MATCHED"

    def due(self, now: float) -> Iterator[tuple[str, Settlement, bool]]:
        """The status changes whose time has come, in time order: (trade id, settlement, final?). A final
        trade is no longer in flight: its orders' pending parts are released before it is yielded."""
        while self._clock and self._clock[0][0] <= now:
            _, _, final, trade_id = heapq.heappop(self._clock)
            settlement = self._in_flight.get(trade_id)
            if settlement is None:
                continue
            if final:
                del self._in_flight[trade_id]
                for order, qty in settlement.parts():
                    order.pending_e6 -= qty
            yield trade_id, settlement, final
