"""The matching engine: an accepted order is matched against its token's book, settled trade by trade into
the accounts, rested or killed; resting orders hold reservations until filled, canceled or expired.

Fees (platform notes 5): the taker pays r * (p(1-p))^e per share at each trade's price (a BUY on top of
the notional, a SELL out of its proceeds); makers pay the same only when the market is not taker-only
(`taker_only_fees` False), and a resting BUY then reserves its maker fee too. Every trade reports the
effective rate each side paid as `fee_rate_bps` (see fees.py).

Everything here is synchronous and runs on the server's event loop, so each request's state change is
atomic.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import time

from horus.venue.simulator.clob.accounts import Accounts
from horus.venue.simulator.clob.auth import ApiKey
from horus.venue.simulator.clob.book import Book, VenueOrder, plan_fills
from horus.venue.simulator.clob.config import MarketConfig
from horus.venue.simulator.clob.faults import Faults
from horus.venue.simulator.clob.fees import fee_e6, rate_bps
from horus.venue.simulator.clob.markets import Market, Markets
from horus.venue.simulator.clob.rejections import FAK_NO_MATCH, FOK_KILLED, POST_ONLY_CROSSES, Rejected
from horus.venue.simulator.clob.settlement import Settlement, SettlementClock
from horus.venue.simulator.clob.units import E6, decimal_text, notional_e6

Fills = list[tuple[VenueOrder, int]]  # (maker order, shares) best price first


class MatchingEngine:
    """Every accepted order by hash (in arrival order) and every trade, with the books and balances they move."""

    def __init__(self, markets: Markets, accounts: Accounts, faults: Faults):
        self.markets = markets
        self.accounts = accounts
        self.faults = faults
        self.orders: dict[str, VenueOrder] = {}
        self.trades: list[dict] = []
        self.trade_index: dict[str, dict] = {}
        self._expiries: list[tuple[int, int, str]] = []  # (expiration, seq, order id) for resting GTD orders
        self._expiry_seq = itertools.count(1)
        self._settlement = SettlementClock(faults)

    # ----- matching -----
    def plan(self, order: VenueOrder, now: float) -> tuple[Fills, str | None]:
        """The fills an order would get, or Rejected if it is killed (FOK short, FAK unmatched) or a post-only
        order would cross. With the `hidden_fill_rate` fault a FOK/FAK gets a partial fill behind a "killed"
        reply: the second value is that reply (else None)."""
        book = self.markets.books[order.token_id]
        self._expire(now)
        fills = plan_fills(book, order, order.size_e6, now)
        available = sum(qty for _, qty in fills)
        killed_reply: str | None = None
        if order.order_type in ("FOK", "FAK"):
            if available > 0 and self.faults.roll(self.faults.settings.hidden_fill_rate):
                # the fault: a real partial fill behind a "killed" reply
                partial = max(min(available, order.size_e6) // 2 // 10_000 * 10_000, min(available, 10_000))
                fills = _limit(fills, partial)
                killed_reply = FOK_KILLED if order.order_type == "FOK" else FAK_NO_MATCH
            elif order.order_type == "FOK" and available < order.size_e6:
                raise Rejected(FOK_KILLED, order_id=order.order_id)
            elif order.order_type == "FAK" and available == 0:
                raise Rejected(FAK_NO_MATCH, order_id=order.order_id)
        elif order.post_only and fills:
            raise Rejected(POST_ONLY_CROSSES, order_id=order.order_id)
        return fills, killed_reply

    def fill(self, market: Market, order: VenueOrder, fills: Fills, killed_reply: str | None, now: float) -> dict:
        """Record the accepted order, trade its planned fills (one trade per price level), then rest what a
        GTC/GTD has left; the order's reply, or Rejected with the hidden fill's "killed" reply."""
        cfg = market.config
        book = self.markets.books[order.token_id]
        self.orders[order.order_id] = order
        spent = received = 0
        touched_synthetic: list[VenueOrder] = []
        by_price: dict[int, Fills] = {}
        for maker, qty in fills:
            by_price.setdefault(maker.price_e6, []).append((maker, qty))
        for price_e6, level_fills in by_price.items():
            trade_id, making, taking = self._trade(market, order, price_e6, level_fills, now, touched_synthetic)
            order.trade_ids.append(trade_id)
            spent += making
            received += taking
        for maker in touched_synthetic:
            if cfg.replenish:
                maker.matched_e6 = 0
            elif maker.remaining_e6 == 0:
                book.remove(maker)

        if order.order_type in ("GTC", "GTD") and order.remaining_e6 > 0:
            self._rest(book, order)
            status = "live"
        else:  # taker orders never rest: filled (FOK fully, FAK partly) or killed
            order.status = "MATCHED" if order.matched_e6 > 0 and killed_reply is None else "CANCELED"
            status = "matched"
        if killed_reply is not None:
            raise Rejected(killed_reply, order_id=order.order_id)
        hashes = [self.trade_index[t]["transaction_hash"] for t in order.trade_ids]
        return {
            "success": True,
            "errorMsg": "",
            "orderID": order.order_id,
            "status": status,
            "makingAmount": decimal_text(spent),
            "takingAmount": decimal_text(received),
            "transactionsHashes": hashes,
            "tradeIDs": list(order.trade_ids),
        }

    def _trade(
        self,
        market: Market,
        taker: VenueOrder,
        price_e6: int,
        fills: Fills,
        now: float,
        touched_synthetic: list[VenueOrder],
    ) -> tuple[str, int, int]:
        """Settle the taker's fills at one price level; record one trade. Returns (id, making, taking)."""
        cfg = market.config
        shares = sum(qty for _, qty in fills)
        notional = notional_e6(shares, price_e6)
        fee = fee_e6(shares, price_e6, cfg.fee_rate, cfg.fee_exponent)
        account = self.accounts.of(taker.maker)
        if taker.side == "BUY":  # pays notional + fee in collateral, receives shares
            account.collateral_e6 -= notional + fee
            account.tokens_e6[taker.token_id] = account.tokens_e6.get(taker.token_id, 0) + shares
            making, taking = notional, shares
        else:  # delivers shares, receives notional minus fee
            account.tokens_e6[taker.token_id] -= shares
            account.collateral_e6 += notional - fee
            making, taking = shares, notional - fee
        taker.matched_e6 += shares
        trade_id = self._new_id()
        maker_orders = []
        maker_parts = []
        for maker, qty in fills:
            maker.matched_e6 += qty
            maker_fee = 0
            if maker.synthetic:
                if maker not in touched_synthetic:
                    touched_synthetic.append(maker)
            else:
                maker.trade_ids.append(trade_id)
                maker_fee = _maker_fee(cfg, qty, maker.price_e6)
                self._settle_maker(maker, qty, maker_fee)
            maker_parts.append((maker, qty, notional_e6(qty, maker.price_e6), maker_fee))
            maker_orders.append(
                {
                    "order_id": maker.order_id,
                    "owner": maker.owner,
                    "maker_address": maker.maker,
                    "matched_amount": decimal_text(qty),
                    "price": decimal_text(maker.price_e6),
                    "fee_rate_bps": "0" if cfg.taker_only_fees else rate_bps(price_e6, cfg.fee_rate, cfg.fee_exponent),
                    "asset_id": maker.token_id,
                    "outcome": maker.outcome,
                    "side": maker.side,
                }
            )
        self.markets.books[taker.token_id].last_trade_price_e6 = price_e6
        seconds = str(int(now))
        status = self._settlement.track(trade_id, Settlement(taker, shares, notional, fee, maker_parts), now)
        trade = {
            "id": trade_id,
            "taker_order_id": taker.order_id,
            "market": taker.market,
            "asset_id": taker.token_id,
            "side": taker.side,
            "size": decimal_text(shares),
            "price": decimal_text(price_e6),
            "fee_rate_bps": rate_bps(price_e6, cfg.fee_rate, cfg.fee_exponent),
            "status": status,
            "match_time": seconds,
            "last_update": seconds,
            "outcome": taker.outcome,
            "bucket_index": 0,
            "owner": taker.owner,
            "maker_address": taker.maker,
            "transaction_hash": "0x" + hashlib.sha256(trade_id.encode()).hexdigest(),
            "trader_side": "TAKER",
            "maker_orders": maker_orders,
            "_fee_e6": fee,
            "_maker_owners": {m.owner for m, _ in fills if m.owner},
        }
        self.trades.append(trade)
        self.trade_index[trade_id] = trade
        return trade_id, making, taking

    def _new_id(self) -> str:
        """A UUID-4-shaped trade id from the venue's seeded RNG (the same stream as the fault rolls)."""
        rng = self.faults.rng
        time_low, time_mid, time_high, clock_seq, node = (
            rng.getrandbits(32),
            rng.getrandbits(16),
            rng.getrandbits(12),
            0x8000 | rng.getrandbits(14),
            rng.getrandbits(48),
        )
        return f"{time_low:08x}-{time_mid:04x}-4{time_high:03x}-{clock_seq:04x}-{node:012x}"

    # ----- reservations -----
    def _settle_maker(self, maker: VenueOrder, qty: int, fee: int) -> None:
        """A resting order of a real account was hit: move funds out of its reservation."""
        account = self.accounts.of(maker.maker)
        notional = notional_e6(qty, maker.price_e6)
        if maker.side == "BUY":
            release = maker.reserved_e6 if maker.remaining_e6 == 0 else min(notional + fee, maker.reserved_e6)
            account.reserved_collateral_e6 -= release
            maker.reserved_e6 -= release
            account.collateral_e6 -= notional + fee
            account.tokens_e6[maker.token_id] = account.tokens_e6.get(maker.token_id, 0) + qty
        else:
            account.reserved_tokens_e6[maker.token_id] -= qty
            maker.reserved_e6 -= qty
            account.tokens_e6[maker.token_id] -= qty
            account.collateral_e6 += notional - fee
        if maker.remaining_e6 == 0:
            maker.status = "MATCHED"
            self.markets.books[maker.token_id].remove(maker)

    def _reserve_remaining(self, order: VenueOrder) -> None:
        """Hold what the order's remainder may still take: a BUY its notional (rounded up) plus the maker fee
        it may pay, a SELL its shares."""
        remaining = order.remaining_e6
        account = self.accounts.of(order.maker)
        if order.side == "BUY":
            cfg = self.markets.config_for(order.token_id)
            needed = -(-remaining * order.price_e6 // E6) + _maker_fee(cfg, remaining, order.price_e6)
            account.reserved_collateral_e6 += needed - order.reserved_e6
        else:
            needed = remaining
            account.reserved_tokens_e6[order.token_id] = (
                account.reserved_tokens_e6.get(order.token_id, 0) + needed - order.reserved_e6
            )
        order.reserved_e6 = needed

    def _rest(self, book: Book, order: VenueOrder) -> None:
        self._reserve_remaining(order)
        order.status = "LIVE"
        book.add(order)
        if order.expiration:
            heapq.heappush(self._expiries, (order.expiration, next(self._expiry_seq), order.order_id))

    def _release(self, order: VenueOrder, status: str) -> None:
        """Take a resting order off the book with `status`, freeing its reservation."""
        account = self.accounts.of(order.maker)
        if order.side == "BUY":
            account.reserved_collateral_e6 -= order.reserved_e6
        else:
            account.reserved_tokens_e6[order.token_id] -= order.reserved_e6
        order.reserved_e6 = 0
        order.status = status
        self.markets.books[order.token_id].remove(order)

    def _expire(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, _, order_id = heapq.heappop(self._expiries)
            order = self.orders.get(order_id)
            if order is not None and order.status == "LIVE":
                self._release(order, "CANCELED_EXPIRED_ORDER")

    # ----- cancels -----
    def cancel(self, order_ids: list[str], key: ApiKey) -> dict:
        canceled, not_canceled = [], {}
        for order_id in order_ids:
            order = self.orders.get(str(order_id))
            if order is None or order.owner != key.api_key:
                not_canceled[order_id] = "order not found"
            elif order.status != "LIVE":
                not_canceled[order_id] = "order can't be canceled, already canceled or matched"
            else:
                self._release(order, "CANCELED")
                canceled.append(order_id)
        return {"canceled": canceled, "not_canceled": not_canceled}

    def cancel_where(self, key: ApiKey, market: str | None = None, asset_id: str | None = None) -> dict:
        """Cancel the key's live orders, of one market and/or one token when given."""
        ids = [
            o.order_id
            for o in self.orders.values()
            if o.owner == key.api_key
            and o.status == "LIVE"
            and (not market or o.market.lower() == market.lower())
            and (not asset_id or o.token_id == asset_id)
        ]
        return self.cancel(ids, key)

    # ----- trade settlement lag (settlement.py) -----
    def advance(self, now: float | None = None) -> None:
        """Move in-flight trades whose time has come to MINED / RETRYING, then CONFIRMED / FAILED."""
        now = time.time() if now is None else now
        for trade_id, settlement, final in self._settlement.due(now):
            trade = self.trade_index[trade_id]
            trade["last_update"] = str(int(now))
            if not final:
                trade["status"] = "RETRYING" if settlement.fails else "MINED"
            elif settlement.fails:
                self._undo(settlement)
                trade["status"] = "FAILED"
            else:
                trade["status"] = "CONFIRMED"

    def _undo(self, s: Settlement) -> None:
        """A FAILED trade: reverse its balance effects for the taker and every real maker, fees included."""
        taker = s.taker
        account = self.accounts.of(taker.maker)
        if taker.side == "BUY":
            account.collateral_e6 += s.notional + s.fee
            account.tokens_e6[taker.token_id] = account.tokens_e6.get(taker.token_id, 0) - s.shares
        else:
            account.tokens_e6[taker.token_id] = account.tokens_e6.get(taker.token_id, 0) + s.shares
            account.collateral_e6 -= s.notional - s.fee
        taker.matched_e6 -= s.shares
        if taker.status == "LIVE":
            self._reserve_remaining(taker)
        for maker, qty, notional, fee in s.makers:
            maker.matched_e6 = max(0, maker.matched_e6 - qty)  # replenished synthetic levels were reset to 0
            if maker.synthetic:
                continue
            owner = self.accounts.of(maker.maker)
            if maker.side == "BUY":
                owner.collateral_e6 += notional + fee
                owner.tokens_e6[maker.token_id] = owner.tokens_e6.get(maker.token_id, 0) - qty
            else:
                owner.tokens_e6[maker.token_id] = owner.tokens_e6.get(maker.token_id, 0) + qty
                owner.collateral_e6 -= notional - fee
            if maker.status == "LIVE":
                self._reserve_remaining(maker)

    def trades_for(self, key: ApiKey) -> list[dict]:
        """The trades the key took part in, as taker or as the owner of a maker order."""
        return [t for t in self.trades if t["owner"] == key.api_key or key.api_key in t["_maker_owners"]]


def _maker_fee(cfg: MarketConfig, qty: int, price_e6: int) -> int:
    return 0 if cfg.taker_only_fees else fee_e6(qty, price_e6, cfg.fee_rate, cfg.fee_exponent)


def _limit(fills: Fills, total: int) -> Fills:
    """The first fills up to `total` shares."""
    out, left = [], total
    for maker, qty in fills:
        if left <= 0:
            break
        take = min(qty, left)
        out.append((maker, take))
        left -= take
    return out
