"""The venue's state behind one object, `VenueState`: its markets and books, accounts, API keys, fault
settings, the matching engine with every order and trade, and the order intake that ties them together.

Everything here is synchronous and runs on the server's event loop, so each request's state change is
atomic. Money is integer micro-units (shares_e6 / collateral_e6); prices are micro-dollars per share.

Validation order (`submit`): market state (restart, post-only mode, accepting orders), signature, then the
duplicate check, then expiry, amounts and balance/allowance. With the fault `balance_before_duplicate` the
duplicate check comes last, so a re-send of bytes that already filled is refused for balance when the account
can no longer pay for it again (a 400 that proves nothing about the first send), and is a duplicate otherwise.
Every POST of a known hash counts in its `post_count`.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from horus.venue.simulator.clob.accounts import Accounts
from horus.venue.simulator.clob.auth import ApiKey, ApiKeys
from horus.venue.simulator.clob.book import Book, VenueOrder
from horus.venue.simulator.clob.config import SimulatorConfig
from horus.venue.simulator.clob.faults import Faults
from horus.venue.simulator.clob.markets import Markets
from horus.venue.simulator.clob.matching import MatchingEngine
from horus.venue.simulator.clob.rejections import MARKET_NOT_READY, POST_ONLY_MODE, Rejected, duplicated
from horus.venue.simulator.clob.validation import (
    check_amounts,
    check_balance,
    check_expiration,
    check_signer,
    parse_posted_order,
)


@dataclass
class Counts:
    """What the order intake has seen, for /_sim/orders."""

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
    """The simulated venue: its parts as attributes, the order intake (`submit`) as the one place that runs
    them in the venue's validation order."""

    def __init__(self, config: SimulatorConfig):
        self.config = config
        self.chain_id = config.chain_id
        self.faults = Faults(config.faults, random.Random(config.seed))
        self.markets = Markets(config.chain_id)
        self.accounts = Accounts(config.default_collateral_e6)
        self.api_keys = ApiKeys(hashlib.sha256(f"horus-clob-sim:{config.seed}".encode()).digest())
        self.matching = MatchingEngine(self.markets, self.accounts, self.faults)
        self.counts = Counts()
        for market in config.markets:
            self.markets.add(market)
        for account in config.accounts:
            self.accounts.fund(account)

    @property
    def orders(self) -> dict[str, VenueOrder]:
        """Every accepted order by hash, in arrival order."""
        return self.matching.orders

    @property
    def trades(self) -> list[dict]:
        """Every trade, in match order."""
        return self.matching.trades

    def move_book(self, token_id: str, price: Decimal) -> Book:
        """Re-centre a token's synthetic liquidity on `price` (the market moved); resting user orders stay."""
        return self.markets.move_book(token_id, price)

    def submit(self, payload: object, key: ApiKey, now: float | None = None, received_at: float | None = None) -> dict:
        """Validate, sign-check, match and record one POSTed order; the reply dict or Rejected. `received_at`:
        when the request arrived (epoch seconds; default `now`), kept in the order log as received_us."""
        now = time.time() if now is None else now
        self.matching.advance(now)
        self.counts.posts += 1
        try:
            return self._submit(payload, key, now, now if received_at is None else received_at)
        except Rejected as exc:
            if not exc.message.startswith(f"order {exc.order_id} is invalid. Duplicated"):
                self.counts.reject(exc.message)
            raise

    def _submit(self, payload: object, key: ApiKey, now: float, received_at: float) -> dict:
        posted = parse_posted_order(payload, key)
        if now < self.faults.post_only_until and not posted.post_only:
            raise Rejected(POST_ONLY_MODE)
        token_id = str(posted.struct.token_id)
        market = self.markets.for_token(token_id)
        if market is None:
            raise Rejected(f"market not found for token id {token_id}")
        if not market.config.accepting_orders:
            raise Rejected(MARKET_NOT_READY)
        order_id = check_signer(posted, market, self.chain_id, key, self.accounts)

        known = self.matching.orders.get(order_id)
        if known is not None:
            known.post_count += 1
            if not self.faults.settings.balance_before_duplicate:
                self.counts.duplicates += 1
                raise Rejected(duplicated(order_id), order_id=order_id)

        check_expiration(posted.order_type, posted.expiration, now, self.config.gtd_min_seconds, order_id)
        size_e6, price_e6 = check_amounts(market, posted.struct, posted.side, posted.order_type, order_id)
        order = posted.venue_order(order_id, key, market, size_e6, price_e6, now, received_at)
        check_balance(self.accounts.of(order.maker), market, order)
        if known is not None:  # balance_before_duplicate: the order could be paid for again, so it is a duplicate
            self.counts.duplicates += 1
            raise Rejected(duplicated(order_id), order_id=order_id)

        fills, killed_reply = self.matching.plan(order, now)
        self.counts.accepted += 1
        return self.matching.fill(market, order, fills, killed_reply, now)
