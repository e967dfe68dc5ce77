"""What the engine knows about a market, as facts: one outcome token's metadata and fee schedule, a quote of
its book, and what a follower holds. The venue adapter (horus/venue/polymarket/markets.py, quotes.py) parses the
venue's bodies into these; decide, execute and the fee formula (fees.py) read them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal


@dataclass(frozen=True)
class FeeParams:
    """Fee parameters of a market (platform notes 5): effective taker rate = ``rate * (p(1-p))^exponent``.

    ``rate``/``exponent``/``taker_only`` come from Gamma ``feeSchedule`` or CLOB ``fd``; ``None`` when the
    body had no schedule. ``enabled`` False means the market charges no platform fee. ``maker_base_fee_bps``
    and ``taker_base_fee_bps`` are the legacy base fees (bps) when the body carries them.

    Known vs unknown (see :attr:`known`): a market charges nothing when ``enabled`` is False or ``rate`` is 0;
    it charges ``rate`` when a rate is given; otherwise (no schedule: Gamma without ``feeSchedule`` and no
    ``/clob-markets`` answer, or only the legacy base fees, whose V2 meaning is not a rate) the fee is
    unknown, never 0. A ``MarketInfo`` with ``fees=None`` is unknown too; :data:`NO_FEES` says "no fee"."""

    enabled: bool | None = None
    rate: Decimal | None = None
    exponent: Decimal | None = None
    taker_only: bool | None = None
    rebate_rate: Decimal | None = None
    maker_base_fee_bps: int | None = None
    taker_base_fee_bps: int | None = None

    @property
    def known(self) -> bool:
        """Whether the platform fee of a fill can be computed: a rate (0 included), or fees switched off."""
        return self.enabled is False or self.rate is not None


NO_FEES = FeeParams(enabled=False, rate=Decimal(0))  # a market known to charge no platform fee


@dataclass(frozen=True)
class MarketInfo:
    """What the engine needs to know about one outcome token (trading id)."""

    token_id: str
    condition_id: str
    outcome: str | None = None
    outcome_index: int | None = None
    neg_risk: bool | None = None
    tick_size: Decimal | None = None
    min_order_size: Decimal | None = None
    fees: FeeParams | None = None
    version: str = "v1"  # "v1": CTF market (CLOB V2 exchanges); "v2": Protocol V2 market (ExchangeV3)
    active: bool | None = None
    closed: bool | None = None
    accepting_orders: bool | None = None
    question: str | None = None
    slug: str | None = None
    category: str | None = None  # Gamma only: for follow allow/deny lists
    tags: tuple[str, ...] = ()  # Gamma only: tag slugs
    source: str = ""  # "gamma", "clob", "clob-compact"

    @property
    def exchange_version(self) -> int:
        """EIP-712 domain version to sign with: 3 (ExchangeV3) for v2 markets, else 2."""
        return 3 if self.version == "v2" else 2

    def with_tick_size(self, tick_size: Decimal) -> MarketInfo:
        return replace(self, tick_size=tick_size)


@dataclass(frozen=True)
class Quote:
    """Top of book for one token. Depth: (price, shares_e6) levels, best first."""

    best_bid: Decimal | None
    best_ask: Decimal | None
    as_of_us: int
    bids: tuple[tuple[Decimal, int], ...] = ()
    asks: tuple[tuple[Decimal, int], ...] = ()


@dataclass(frozen=True)
class Balance:
    """What the venue/chain says a follower holds, and when it said so."""

    collateral_e6: int | None
    as_of_us: int
    tokens_e6: tuple[tuple[str, int], ...] = ()  # (token id, shares) read for pre-sell checks

    def token(self, token_id: str) -> int | None:
        for token, shares in self.tokens_e6:
            if token == token_id:
                return shares
        return None
