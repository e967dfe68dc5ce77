"""Order-book quotes and follower balances from the CLOB, for the decide stage's price guard and sizing.

- `parse_book(body, as_of_us)`: a `GET /book` body -> Quote (best bid = highest bid, best ask = lowest ask,
  depth best-first; the venue lists the best level last, platform notes 4, so order is not relied on).
- `QuoteSource`: `GET /book?token_id=` through a SingleFlightCache whose TTL is capped at 5 s.
- `VenueBalances`: `GET /balance-allowance` (COLLATERAL, and CONDITIONAL per token for pre-sell checks)
  with the follower's own L2 credentials; amounts are 6-decimal base units.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from horus.domain.amounts import E6, AmountError, json_decimal
from horus.domain.config import FollowerConfig
from horus.domain.decide import FILLS_REMEMBERED_US, MAX_QUOTE_TTL_US
from horus.domain.market import Balance, Quote
from horus.venue.cache import SingleFlightCache
from horus.venue.polymarket.clob import ClobHttp, VenueReply

# decide subtracts the fills newer than a balance read for FILLS_REMEMBERED_US: an older read (the last good
# value while the venue fails) would count fills in between as not yet paid for
MAX_BALANCE_AGE_US = FILLS_REMEMBERED_US // 2
REFRESH_AHEAD = 0.75  # past 3/4 of the TTL a hit also reloads in the background: steady askers never wait


class QuoteError(ValueError):
    pass


def _levels(body: Mapping[str, Any], side: str, best_first_desc: bool) -> tuple[tuple[Decimal, int], ...]:
    raw = body.get(side) or []
    if not isinstance(raw, list):
        raise QuoteError(f"book: field {side} must be a list")
    levels = []
    for level in raw:
        try:
            price, size = json_decimal(level["price"]), json_decimal(level["size"])
        except (KeyError, TypeError, AmountError) as exc:
            raise QuoteError(f"book: bad {side} level {level!r:.80}: {exc}") from None
        if size > 0:
            levels.append((price, int(size * E6)))
    return tuple(sorted(levels, key=lambda lv: lv[0], reverse=best_first_desc))


def parse_book(body: Any, as_of_us: int) -> Quote:
    if not isinstance(body, Mapping):
        raise QuoteError("book: body must be a JSON object")
    bids = _levels(body, "bids", best_first_desc=True)
    asks = _levels(body, "asks", best_first_desc=False)
    return Quote(
        best_bid=bids[0][0] if bids else None,
        best_ask=asks[0][0] if asks else None,
        as_of_us=as_of_us,
        bids=bids,
        asks=asks,
    )


def now_us() -> int:
    return time.time_ns() // 1000


class QuoteSource:
    """Quotes per token: one request in flight per token, reused for the TTL (never above 5 s)."""

    def __init__(self, clob: ClobHttp, ttl_s: float, clock_us: Callable[[], int] = now_us):
        self._clob, self._clock_us = clob, clock_us
        self.ttl_s = min(ttl_s, MAX_QUOTE_TTL_US / 1_000_000)
        self.cache: SingleFlightCache[str, Quote | None] = SingleFlightCache(
            self._load, self.ttl_s, name="quotes", refresh_ahead=REFRESH_AHEAD
        )

    async def _load(self, token_id: str) -> Quote | None:
        reply = await self._clob.book(token_id)
        if reply.status_code == 404:
            return None  # no order book: decide falls back to the leader's price while it is fresh
        if not reply.ok:
            raise QuoteError(reply.error or f"HTTP {reply.status_code}")
        return parse_book(reply.body, self._clock_us())

    async def get(self, token_id: str) -> Quote | None:
        return await self.cache.get(token_id)


def _balance_e6(reply: VenueReply) -> int:
    if not reply.ok or not isinstance(reply.body, Mapping) or "balance" not in reply.body:
        raise QuoteError(reply.error or "balance-allowance: no balance in the reply")
    return int(json_decimal(reply.body["balance"]))  # the venue reports base units


class VenueBalances:
    """Collateral (and, on request, token) balances of followers, read with their own credentials.
    `account(follower)` resolves the signer and API credentials (horus.execution.accounts.Accounts.get);
    a follower that cannot be resolved has no balance (decide then skips with BALANCE_UNAVAILABLE)."""

    def __init__(
        self,
        clob: ClobHttp,
        account: Callable[[str], Awaitable[Any]],
        ttl_s: float,
        clock_us: Callable[[], int] = now_us,
    ):
        self._clob, self._account, self._clock_us = clob, account, clock_us
        # collateral is cached with the time its read started: the two must never come from different reads
        self.collateral: SingleFlightCache[str, tuple[int, int]] = SingleFlightCache(
            self._load_collateral, ttl_s, name="collateral", refresh_ahead=REFRESH_AHEAD
        )
        self.tokens: SingleFlightCache[tuple[str, str], int | None] = SingleFlightCache(
            self._load_token, ttl_s, name="token balances", refresh_ahead=REFRESH_AHEAD
        )

    async def _read(self, follower: str, asset_type: str, token_id: str | None = None) -> int:
        account = await self._account(follower)
        reply = await self._clob.balance_allowance(
            account.creds, account.signer, asset_type, token_id, signature_type=account.signature_type
        )
        return _balance_e6(reply)

    async def _load_collateral(self, follower: str) -> tuple[int, int]:
        started = self._clock_us()  # fills after the request started may be missing from it
        return await self._read(follower, "COLLATERAL"), started

    async def _load_token(self, key: tuple[str, str]) -> int | None:
        return await self._read(key[0], "CONDITIONAL", key[1])

    async def get(self, account: FollowerConfig, tokens: Iterable[str] = ()) -> Balance:
        follower = account.follower
        collateral, as_of = await self.collateral.get(follower) or (None, 0)
        if collateral is not None and self._clock_us() - as_of > MAX_BALANCE_AGE_US:
            collateral = None  # the venue keeps failing: decide skips rather than spend on an old number
        held = []
        for token in tokens:
            shares = await self.tokens.get((follower, token))
            if shares is not None:
                held.append((token, shares))
        return Balance(collateral, as_of, tuple(held))


class FixedBalances:
    """Every follower holds `amount` of collateral and whatever tokens decide booked (simulations, bench)."""

    def __init__(self, amount_e6: int):
        self.amount_e6 = amount_e6

    async def get(self, account: FollowerConfig, tokens: Iterable[str] = ()) -> Balance:
        return Balance(self.amount_e6, 0, tuple((token, 10**15) for token in tokens))
