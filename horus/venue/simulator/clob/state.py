"""The venue's state and rules: markets, books, balances, order validation, matching, fees, trades.

Everything here is synchronous and runs on the server's event loop, so each request's state change is
atomic. Money is integer micro-units (shares_e6 / collateral_e6); prices are micro-dollars per share.

Fees (platform notes 5): the taker pays r * (p(1-p))^e per share at each trade's price (a BUY on top of
the notional, a SELL out of its proceeds); makers pay the same only when the market is not taker-only
(`taker_only_fees` False), and a resting BUY then reserves its maker fee too. Every trade reports the
effective rate each side paid as `fee_rate_bps` (see fees.py).

Validation order: market state (restart, post-only mode, accepting orders), signature, then the duplicate
check, then expiry, amounts and balance/allowance. With the fault `balance_before_duplicate` the duplicate
check comes last, so a re-send of bytes that already filled is refused for balance when the account can
no longer pay for it again (a 400 that proves nothing about the first send), and is a duplicate otherwise.
Every POST of a known hash counts in its `post_count`.

Trade settlement lag (faults `trade_mined_seconds`, `trade_confirmed_seconds`, `trade_failed_rate`): a
match moves balances and `size_matched` at once, as the venue's book-keeping does, and its trade starts
MATCHED; on every request (lazily, by the clock: `advance`) trades whose time has come become MINED (or
RETRYING when they will fail), then CONFIRMED or FAILED. Which ones fail is rolled at the match from the
seeded RNG. A FAILED trade never happened: its balance effects are reversed for the taker and every maker
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

import hashlib
import heapq
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from horus.venue.simulator.clob.auth import ApiKey, derive_key
from horus.venue.simulator.clob.book import E6, Book, VenueOrder, notional_e6, plan_fills
from horus.venue.simulator.clob.config import (
    AMOUNT_DECIMALS,
    EXCHANGES,
    AccountConfig,
    FaultConfig,
    MarketConfig,
    SimulatorConfig,
)
from horus.venue.simulator.clob.fees import fee_bound_e6, fee_e6, rate_bps
from horus.venue.simulator.clob.signatures import (
    SIG_EOA,
    SIG_POLY_1271,
    OrderStruct,
    SignatureError,
    exchange_domain_separator,
    verify_order,
)

ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")
ZERO32 = "0x" + "00" * 32

# Error texts of the real venue (platform notes 3.7, 3.8, 3.10)
FOK_KILLED = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_NO_MATCH = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
NOT_ENOUGH_BALANCE = "not enough balance / allowance"
POST_ONLY_CROSSES = "invalid post-only order: order crosses book"
POST_ONLY_TYPE = "invalid post-only order: only GTC and GTD orders can be post only"
POST_ONLY_MODE = "post-only mode: only post-only orders and cancels are allowed"
MARKET_NOT_READY = "the market is not yet ready to process new orders"
INVALID_EXPIRATION = "invalid expiration"
INVALID_SIGNATURE = "invalid signature"
OWNER_MISMATCH = "the order owner has to be the owner of the API KEY"
SIGNER_MISMATCH = "the order signer address has to be the address of the API KEY"
RESTARTING = "the matching engine is restarting, please retry later"  # served with HTTP 425


def duplicated(order_id: str) -> str:
    return f"order {order_id} is invalid. Duplicated. Same order has already been placed, can't be placed again"


class Rejected(Exception):
    """An order or request the venue refuses; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400, order_id: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.order_id = order_id


def decimal_text(units_e6: int) -> str:
    """Micro-units as a plain decimal string: 1500000 -> "1.5"."""
    text = format((Decimal(units_e6) / E6).normalize(), "f")
    return text


def _units(value: Decimal) -> int:
    return int(value * E6)


@dataclass
class Account:
    collateral_e6: int = 0
    reserved_collateral_e6: int = 0
    tokens_e6: dict[str, int] = field(default_factory=dict)
    reserved_tokens_e6: dict[str, int] = field(default_factory=dict)

    def free_collateral(self) -> int:
        return self.collateral_e6 - self.reserved_collateral_e6

    def free_tokens(self, token_id: str) -> int:
        return self.tokens_e6.get(token_id, 0) - self.reserved_tokens_e6.get(token_id, 0)


@dataclass
class Market:
    config: MarketConfig
    domain_separator: bytes
    exchange: str
    tick_e6: int
    amount_decimals: int
    outcomes: dict[str, str]  # token id -> outcome name

    @property
    def condition_id(self) -> str:
        return self.config.condition_id


@dataclass
class Counts:
    posts: int = 0  # orders received (a batch of n counts n)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    by_error: dict[str, int] = field(default_factory=dict)

    def reject(self, message: str) -> None:
        self.rejected += 1
        key = re.sub(r"0x[0-9a-fA-F]+|\([^)]*\)|[-:>\d.]+", "", message).strip()[:60]
        self.by_error[key] = self.by_error.get(key, 0) + 1


class VenueState:
    def __init__(self, config: SimulatorConfig):
        self.config = config
        self.chain_id = config.chain_id
        self.rng = random.Random(config.seed)
        self.server_seed = hashlib.sha256(f"horus-clob-sim:{config.seed}".encode()).digest()
        self.markets: dict[str, Market] = {}
        self.token_market: dict[str, Market] = {}
        self.books: dict[str, Book] = {}
        self.accounts: dict[str, Account] = {}
        self.wallet_signers: dict[str, tuple[str, int]] = {}  # wallet -> (signer EOA, signature type)
        self.api_keys: dict[str, ApiKey] = {}
        self.orders: dict[str, VenueOrder] = {}  # every accepted order by hash, in arrival order
        self.trades: list[dict] = []
        self.trade_index: dict[str, dict] = {}
        self.counts = Counts()
        self.faults = config.faults
        self.restart_until = 0.0
        self.post_only_until = 0.0
        self._expiries: list[tuple[int, int, str]] = []  # (expiration, seq, order id) for resting GTD orders
        self._seq = 0
        self._settling: dict[str, _Settlement] = {}  # in-flight trades by id (trade status lag)
        self._trade_clock: list[tuple[float, int, bool, str]] = []  # (at, seq, final?, trade id)
        self.set_faults(config.faults)
        for market in config.markets:
            self.add_market(market)
        for account in config.accounts:
            self.set_account(account)

    # ----- setup -----
    def add_market(self, config: MarketConfig) -> Market:
        if config.condition_id.lower() in self.markets:
            raise Rejected(f"market {config.condition_id} already exists")
        for token in config.tokens:
            if token.token_id in self.token_market:
                raise Rejected(f"token {token.token_id} already belongs to a market")
        exchanges = EXCHANGES[self.chain_id]
        if config.version == "v2":
            exchange, version = exchanges["v3"], "3"
        else:
            exchange, version = exchanges["v2_neg_risk" if config.neg_risk else "v2"], "2"
        market = Market(
            config=config,
            domain_separator=exchange_domain_separator(version, self.chain_id, exchange),
            exchange=exchange,
            tick_e6=_units(Decimal(config.tick_size)),
            amount_decimals=AMOUNT_DECIMALS[config.tick_size],
            outcomes={t.token_id: t.outcome for t in config.tokens},
        )
        self.markets[config.condition_id.lower()] = market
        for index, token in enumerate(config.tokens):
            self.token_market[token.token_id] = market
            book = self.books[token.token_id] = Book(token.token_id)
            price = token.price
            if price is None and token.bids is None and token.asks is None and len(config.tokens) == 2:
                first = config.tokens[0].price
                price = (1 - first) if index == 1 and first is not None else None
            self._seed_book(market, book, token, price)
        return market

    def move_book(self, token_id: str, price: Decimal) -> Book:
        """Re-centre a token's synthetic liquidity on `price` (the market moved); resting user orders stay."""
        market = self.token_market.get(token_id)
        if market is None:
            raise Rejected(f"market not found for token id {token_id}")
        book = self.books[token_id]
        for side in ("BUY", "SELL"):
            for order in list(book.resting(side)):
                if order.synthetic:
                    book.remove(order)
        token = next(t for t in market.config.tokens if t.token_id == token_id)
        self._seed_book(market, book, token.model_copy(update={"bids": None, "asks": None}), price)
        return book

    def _seed_book(self, market: Market, book: Book, token, price: Decimal | None) -> None:
        tick = market.tick_e6
        levels: list[tuple[str, int, int]] = []
        if token.bids is not None or token.asks is not None:
            levels += [("BUY", _units(lv.price), _units(lv.size)) for lv in token.bids or []]
            levels += [("SELL", _units(lv.price), _units(lv.size)) for lv in token.asks or []]
        elif price is not None:
            # best bid at or below the seed price, best ask spread_ticks above it
            best_bid = _units(price) // tick * tick - market.config.spread_ticks // 2 * tick
            best_ask = best_bid + market.config.spread_ticks * tick
            size = _units(market.config.level_size)
            for k in range(market.config.levels):
                levels.append(("BUY", best_bid - k * tick, size))
                levels.append(("SELL", best_ask + k * tick, size))
        for side, price_e6, size_e6 in levels:
            if not (tick <= price_e6 <= E6 - tick) or price_e6 % tick:
                continue  # off-grid or outside [tick, 1-tick]: not a valid level
            order = VenueOrder(
                order_id=f"sim-{token.token_id[-8:]}-{side}-{price_e6}",
                owner="",
                maker="",
                signer="",
                token_id=token.token_id,
                market=market.condition_id,
                outcome=token.outcome,
                side=side,
                price_e6=price_e6,
                size_e6=size_e6,
                maker_amount=0,
                taker_amount=0,
                order_type="GTC",
                synthetic=True,
            )
            book.add(order)

    def set_account(self, config: AccountConfig) -> Account:
        account = self.account(config.address)
        if config.collateral_e6 is not None:
            account.collateral_e6 = config.collateral_e6
        for token, amount in config.tokens_e6.items():
            account.tokens_e6[token] = amount
        if config.signer:
            self.wallet_signers[config.address.lower()] = (config.signer.lower(), config.signature_type)
        return account

    def account(self, address: str) -> Account:
        key = address.lower()
        account = self.accounts.get(key)
        if account is None:
            account = self.accounts[key] = Account(collateral_e6=self.config.default_collateral_e6)
        return account

    # ----- trade settlement lag -----
    def advance(self, now: float | None = None) -> None:
        """Move in-flight trades whose time has come to MINED / RETRYING, then CONFIRMED / FAILED."""
        now = time.time() if now is None else now
        while self._trade_clock and self._trade_clock[0][0] <= now:
            _, _, final, trade_id = heapq.heappop(self._trade_clock)
            settling = self._settling.get(trade_id)
            if settling is None:
                continue
            trade = self.trade_index[trade_id]
            trade["last_update"] = str(int(now))
            if not final:
                trade["status"] = "RETRYING" if settling.fails else "MINED"
                continue
            del self._settling[trade_id]
            for order, qty in settling.parts():
                order.pending_e6 -= qty
            if settling.fails:
                self._undo(settling)
                trade["status"] = "FAILED"
            else:
                trade["status"] = "CONFIRMED"

    def _undo(self, s: _Settlement) -> None:
        """A FAILED trade: reverse its balance effects for the taker and every real maker, fees included."""
        taker = s.taker
        account = self.account(taker.maker)
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
            owner = self.account(maker.maker)
            if maker.side == "BUY":
                owner.collateral_e6 += notional + fee
                owner.tokens_e6[maker.token_id] = owner.tokens_e6.get(maker.token_id, 0) - qty
            else:
                owner.tokens_e6[maker.token_id] = owner.tokens_e6.get(maker.token_id, 0) + qty
                owner.collateral_e6 -= notional - fee
            if maker.status == "LIVE":
                self._reserve_remaining(maker)

    def set_faults(self, faults: FaultConfig, now: float | None = None) -> None:
        """Install fault settings; a positive restart window starts now."""
        self.faults = faults
        now = time.time() if now is None else now
        if faults.restart_seconds > 0 or faults.post_only_seconds > 0:
            self.restart_until = now + faults.restart_seconds
            self.post_only_until = self.restart_until + faults.post_only_seconds

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    # ----- api keys -----
    def create_api_key(self, address: str, nonce: int) -> ApiKey:
        key = derive_key(self.server_seed, address, nonce)
        if key.api_key in self.api_keys:
            raise Rejected("Could not create api key")
        self.api_keys[key.api_key] = key
        return key

    def derive_api_key(self, address: str, nonce: int) -> ApiKey:
        key = derive_key(self.server_seed, address, nonce)
        self.api_keys[key.api_key] = key
        return key

    def funder_for(self, key: ApiKey, signature_type: int) -> str:
        """The funds holder a key trades for: itself (EOA) or the wallet it is registered to sign for."""
        if signature_type != SIG_EOA:
            for wallet, (signer, kind) in self.wallet_signers.items():
                if signer == key.address and kind == signature_type:
                    return wallet
        return key.address

    # ----- orders -----
    def submit(self, payload: object, key: ApiKey, now: float | None = None, received_at: float | None = None) -> dict:
        """Validate, sign-check, match and record one POSTed order; the reply dict or Rejected. `received_at`:
        when the request arrived (epoch seconds; default `now`), kept in the order log as received_us."""
        now = time.time() if now is None else now
        self.advance(now)
        self.counts.posts += 1
        try:
            return self._submit(payload, key, now, now if received_at is None else received_at)
        except Rejected as exc:
            if not exc.message.startswith(f"order {exc.order_id} is invalid. Duplicated"):
                self.counts.reject(exc.message)
            raise

    def _submit(self, payload: object, key: ApiKey, now: float, received_at: float) -> dict:
        if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
            raise Rejected("Invalid order payload: expected {order, owner, orderType}")
        raw = payload["order"]
        try:
            order = OrderStruct(
                salt=int(raw["salt"]),
                maker=str(raw["maker"]),
                signer=str(raw["signer"]),
                token_id=int(raw["tokenId"]),
                maker_amount=int(raw["makerAmount"]),
                taker_amount=int(raw["takerAmount"]),
                side={"BUY": 0, "SELL": 1}[raw["side"]],
                signature_type=int(raw["signatureType"]),
                timestamp=int(raw["timestamp"]),
                metadata=str(raw.get("metadata") or ZERO32),
                builder=str(raw.get("builder") or ZERO32),
            )
            expiration = int(raw.get("expiration") or 0)
            signature = str(raw["signature"])
        except (KeyError, ValueError, TypeError) as exc:
            raise Rejected(f"Invalid order payload: bad or missing field {exc}") from exc
        if payload.get("owner") != key.api_key:
            raise Rejected(OWNER_MISMATCH)
        order_type = payload.get("orderType")
        if order_type not in ORDER_TYPES:
            raise Rejected(f"Invalid order payload: orderType must be one of {', '.join(ORDER_TYPES)}")
        post_only = bool(payload.get("postOnly"))
        if post_only and order_type not in ("GTC", "GTD"):
            raise Rejected(POST_ONLY_TYPE)
        if now < self.post_only_until and not post_only:
            raise Rejected(POST_ONLY_MODE)
        token_id = str(order.token_id)
        market = self.token_market.get(token_id)
        if market is None:
            raise Rejected(f"market not found for token id {token_id}")
        if not market.config.accepting_orders:
            raise Rejected(MARKET_NOT_READY)

        # signature: types 0-2 signed by the key's EOA; type 3 by the EOA registered for the deposit wallet
        wallet_signer = None
        if order.signature_type == SIG_POLY_1271:
            registered = self.wallet_signers.get(order.maker.lower())
            wallet_signer = registered[0] if registered and registered[1] == SIG_POLY_1271 else None
        try:
            order_id = verify_order(order, signature, market.domain_separator, self.chain_id, wallet_signer)
        except SignatureError as exc:
            raise Rejected(f"{INVALID_SIGNATURE}: {exc}") from exc
        signing_eoa = wallet_signer if order.signature_type == SIG_POLY_1271 else order.signer.lower()
        if signing_eoa != key.address:
            raise Rejected(SIGNER_MISMATCH, order_id=order_id)

        known = self.orders.get(order_id)
        if known is not None:
            known.post_count += 1
            if not self.faults.balance_before_duplicate:
                self.counts.duplicates += 1
                raise Rejected(duplicated(order_id), order_id=order_id)

        side = "BUY" if order.side == 0 else "SELL"
        self._check_expiration(order_type, expiration, now, order_id)
        size_e6, price_e6 = self._check_amounts(market, order, side, order_type, order_id)
        venue_order = VenueOrder(
            order_id=order_id,
            owner=key.api_key,
            maker=order.maker.lower(),
            signer=order.signer.lower(),
            token_id=token_id,
            market=market.condition_id,
            outcome=market.outcomes[token_id],
            side=side,
            price_e6=price_e6,
            size_e6=size_e6,
            maker_amount=order.maker_amount,
            taker_amount=order.taker_amount,
            order_type=order_type,
            signature_type=order.signature_type,
            metadata=order.metadata.lower(),
            builder=order.builder.lower(),
            expiration=expiration,
            post_only=post_only,
            created_ms=int(now * 1000),
            received_us=int(received_at * 1_000_000),
        )
        self._check_balance(market, venue_order)
        if known is not None:  # balance_before_duplicate: the order could be paid for again, so it is a duplicate
            self.counts.duplicates += 1
            raise Rejected(duplicated(order_id), order_id=order_id)
        return self._execute(market, venue_order, now)

    def _check_expiration(self, order_type: str, expiration: int, now: float, order_id: str) -> None:
        if order_type == "GTD":
            if expiration < now + self.config.gtd_min_seconds:
                raise Rejected(INVALID_EXPIRATION, order_id=order_id)
        elif expiration != 0:
            raise Rejected(INVALID_EXPIRATION, order_id=order_id)

    def _check_amounts(
        self, market: Market, order: OrderStruct, side: str, order_type: str, order_id: str
    ) -> tuple[int, int]:
        """Precision, tick grid and minimum size (platform notes 3.4, 3.6); returns (shares_e6, price_e6)."""
        maker, taker = order.maker_amount, order.taker_amount
        if maker <= 0 or taker <= 0:
            raise Rejected("invalid amounts, makerAmount and takerAmount must be positive", order_id=order_id)
        marketable = order_type in ("FOK", "FAK")
        amount_dp = market.amount_decimals
        if marketable:
            maker_dp, taker_dp = (2, max(4, amount_dp))
        else:
            maker_dp, taker_dp = (amount_dp, 2) if side == "BUY" else (2, amount_dp)
        if maker % 10 ** (6 - maker_dp) or taker % 10 ** (6 - taker_dp):
            kind = "market " if marketable else ""
            raise Rejected(
                f"invalid amounts, the {kind}{side.lower()} orders maker amount supports a max accuracy "
                f"of {maker_dp} decimals, taker amount a max of {taker_dp} decimals",
                order_id=order_id,
            )
        shares, collateral = (taker, maker) if side == "BUY" else (maker, taker)
        tick = market.tick_e6
        # price bounds by cross-multiplication: tick <= collateral/shares <= 1 - tick
        if collateral * E6 < tick * shares or collateral * E6 > (E6 - tick) * shares:
            raise Rejected(
                f"order {order_id} is invalid. Price ({decimal_text(collateral * E6 // shares)}) "
                f"out of range: min {market.config.tick_size}, max "
                f"{decimal_text(E6 - tick)}",
                order_id=order_id,
            )
        price_e6 = collateral * E6 // shares
        if not marketable and (collateral * E6 % shares or price_e6 % tick):
            raise Rejected(
                f"order {order_id} is invalid. Price ({decimal_text(price_e6)}) breaks minimum tick size "
                f"rule: {market.config.tick_size}",
                order_id=order_id,
            )
        if marketable:
            if collateral < E6:
                raise Rejected(
                    f"invalid amount for a marketable {side} order (${decimal_text(collateral)}), min size: $1",
                    order_id=order_id,
                )
        elif shares < _units(market.config.min_order_size):
            raise Rejected(
                f"order {order_id} is invalid. Size ({decimal_text(shares)}) lower than the minimum: "
                f"{format(market.config.min_order_size.normalize(), 'f')}",
                order_id=order_id,
            )
        return shares, price_e6

    def _check_balance(self, market: Market, order: VenueOrder) -> None:
        """Balance/allowance for the whole order: a BUY its notional plus the largest fee it could pay."""
        account = self.account(order.maker)
        cfg = market.config
        if order.side == "BUY":
            needed = order.maker_amount + fee_bound_e6(order.size_e6, order.price_e6, cfg.fee_rate, cfg.fee_exponent)
            if account.free_collateral() < needed:
                raise Rejected(
                    f"{NOT_ENOUGH_BALANCE}: the balance is not enough -> balance: "
                    f"{account.free_collateral()}, order amount: {needed}",
                    order_id=order.order_id,
                )
        elif account.free_tokens(order.token_id) < order.size_e6:
            raise Rejected(
                f"{NOT_ENOUGH_BALANCE}: the balance is not enough -> balance: "
                f"{account.free_tokens(order.token_id)}, order amount: {order.size_e6}",
                order_id=order.order_id,
            )

    def _execute(self, market: Market, order: VenueOrder, now: float) -> dict:
        cfg = market.config
        book = self.books[order.token_id]
        self._expire(now)
        fills = plan_fills(book, order, order.size_e6, now)
        available = sum(qty for _, qty in fills)
        killed_reply: str | None = None
        if order.order_type in ("FOK", "FAK"):
            if available > 0 and self.roll(self.faults.hidden_fill_rate):
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

        self.orders[order.order_id] = order
        self.counts.accepted += 1
        spent = received = 0
        touched_synthetic: list[VenueOrder] = []
        by_price: dict[int, list[tuple[VenueOrder, int]]] = {}
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
        fills: list[tuple[VenueOrder, int]],
        now: float,
        touched_synthetic: list[VenueOrder],
    ) -> tuple[str, int, int]:
        """Settle the taker's fills at one price level; record one trade. Returns (id, making, taking)."""
        cfg = market.config
        shares = sum(qty for _, qty in fills)
        notional = notional_e6(shares, price_e6)
        fee = fee_e6(shares, price_e6, cfg.fee_rate, cfg.fee_exponent)
        account = self.account(taker.maker)
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
                maker_fee = self._maker_fee(cfg, qty, maker.price_e6)
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
        self.books[taker.token_id].last_trade_price_e6 = price_e6
        seconds = str(int(now))
        status = self._track(trade_id, _Settlement(taker, shares, notional, fee, maker_parts), now)
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

    def _track(self, trade_id: str, settling: _Settlement, now: float) -> str:
        """The new trade's status: CONFIRMED at once, or MATCHED and in flight under the settlement-lag faults."""
        faults = self.faults
        settling.fails = self.roll(faults.trade_failed_rate)
        final_in = max(faults.trade_confirmed_seconds, faults.trade_mined_seconds)
        if final_in <= 0 and not settling.fails:
            return "CONFIRMED"
        self._settling[trade_id] = settling
        for order, qty in settling.parts():
            order.pending_e6 += qty
        self._seq += 1
        heapq.heappush(self._trade_clock, (now + min(faults.trade_mined_seconds, final_in), self._seq, False, trade_id))
        heapq.heappush(self._trade_clock, (now + final_in, self._seq, True, trade_id))
        return "MATCHED"

    def _maker_fee(self, cfg: MarketConfig, qty: int, price_e6: int) -> int:
        return 0 if cfg.taker_only_fees else fee_e6(qty, price_e6, cfg.fee_rate, cfg.fee_exponent)

    def _settle_maker(self, maker: VenueOrder, qty: int, fee: int) -> None:
        """A resting order of a real account was hit: move funds out of its reservation."""
        account = self.account(maker.maker)
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
            self.books[maker.token_id].remove(maker)

    def _reserve_remaining(self, order: VenueOrder) -> None:
        """Hold what the order's remainder may still take: a BUY its notional (rounded up) plus the maker fee
        it may pay, a SELL its shares."""
        remaining = order.remaining_e6
        account = self.account(order.maker)
        if order.side == "BUY":
            cfg = self.token_market[order.token_id].config
            needed = -(-remaining * order.price_e6 // E6) + self._maker_fee(cfg, remaining, order.price_e6)
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
            self._seq += 1
            heapq.heappush(self._expiries, (order.expiration, self._seq, order.order_id))

    def _release(self, order: VenueOrder, status: str) -> None:
        account = self.account(order.maker)
        if order.side == "BUY":
            account.reserved_collateral_e6 -= order.reserved_e6
        else:
            account.reserved_tokens_e6[order.token_id] -= order.reserved_e6
        order.reserved_e6 = 0
        order.status = status
        self.books[order.token_id].remove(order)

    def _expire(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, _, order_id = heapq.heappop(self._expiries)
            order = self.orders.get(order_id)
            if order is not None and order.status == "LIVE":
                self._release(order, "CANCELED_EXPIRED_ORDER")

    def _new_id(self) -> str:
        return "%08x-%04x-4%03x-%04x-%012x" % (
            self.rng.getrandbits(32),
            self.rng.getrandbits(16),
            self.rng.getrandbits(12),
            0x8000 | self.rng.getrandbits(14),
            self.rng.getrandbits(48),
        )

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
        ids = [
            o.order_id
            for o in self.orders.values()
            if o.owner == key.api_key
            and o.status == "LIVE"
            and (not market or o.market.lower() == market.lower())
            and (not asset_id or o.token_id == asset_id)
        ]
        return self.cancel(ids, key)

    # ----- views -----
    def open_order_view(self, order: VenueOrder) -> dict:
        return {
            "id": order.order_id,
            "status": order.status,
            "owner": order.owner,
            "maker_address": order.maker,
            "market": order.market,
            "asset_id": order.token_id,
            "side": order.side,
            "original_size": decimal_text(order.size_e6),
            "size_matched": decimal_text(order.matched_e6),
            "price": decimal_text(order.price_e6),
            "associate_trades": list(order.trade_ids),
            "outcome": order.outcome,
            "order_type": order.order_type,
            "created_at": order.created_ms // 1000,
            "expiration": str(order.expiration),
        }

    def trade_view(self, trade: dict, key: ApiKey) -> dict:
        view = {k: v for k, v in trade.items() if not k.startswith("_")}
        if trade["owner"] != key.api_key:
            view["trader_side"] = "MAKER"
        return view

    def trades_for(self, key: ApiKey) -> list[dict]:
        return [t for t in self.trades if t["owner"] == key.api_key or key.api_key in t["_maker_owners"]]

    def log_entry(self, order: VenueOrder) -> dict:
        return {
            "order_id": order.order_id,
            "owner": order.owner,
            "maker": order.maker,
            "signer": order.signer,
            "token_id": order.token_id,
            "market": order.market,
            "side": order.side,
            "maker_amount": order.maker_amount,
            "taker_amount": order.taker_amount,
            "size_e6": order.size_e6,
            "size_matched_e6": order.matched_e6,
            "price_e6": order.price_e6,
            "metadata": order.metadata,
            "builder": order.builder,
            "signature_type": order.signature_type,
            "order_type": order.order_type,
            "post_only": order.post_only,
            "status": order.status,
            "created_ms": order.created_ms,
            "received_us": order.received_us,
            "expiration": order.expiration,
            "post_count": order.post_count,
            "trade_ids": list(order.trade_ids),
            "pending_matched_e6": order.pending_e6,
            "confirmed_matched_e6": order.matched_e6 - order.pending_e6,
        }

    def balance_view(self, address: str) -> dict:
        account = self.account(address)
        return {
            "address": address.lower(),
            "collateral_e6": account.collateral_e6,
            "reserved_collateral_e6": account.reserved_collateral_e6,
            "tokens_e6": dict(account.tokens_e6),
            "reserved_tokens_e6": dict(account.reserved_tokens_e6),
        }


@dataclass
class _Settlement:
    """An in-flight trade's effects, kept until it is final so a FAILED one can be reversed exactly."""

    taker: VenueOrder
    shares: int
    notional: int
    fee: int  # the taker's
    makers: list[tuple[VenueOrder, int, int, int]]  # (order, shares, notional, maker fee)
    fails: bool = False

    def parts(self) -> list[tuple[VenueOrder, int]]:
        return [(self.taker, self.shares)] + [(maker, qty) for maker, qty, _, _ in self.makers]


def _limit(fills: list[tuple[VenueOrder, int]], total: int) -> list[tuple[VenueOrder, int]]:
    out, left = [], total
    for maker, qty in fills:
        if left <= 0:
            break
        take = min(qty, left)
        out.append((maker, take))
        left -= take
    return out
