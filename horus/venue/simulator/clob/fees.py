"""The V2 platform fee (platform notes 5): fee = shares * r * (p(1-p))^e, rounded to 5 decimals, tiny fees are 0.

A trade reports the fee rate each side paid as `fee_rate_bps`: the *effective* rate at the trade's price,
r * (p(1-p))^e in basis points (not the market's base rate r), "0" for a maker of a taker-only market."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

_E6 = Decimal(1_000_000)
_FEE_UNIT_E6 = 10  # 5 decimals = 10 micro-dollars


@lru_cache(maxsize=4096)
def effective_rate(price_e6: int, rate: Decimal, exponent: Decimal) -> Decimal:
    if rate == 0:
        return Decimal(0)
    p = Decimal(price_e6) / _E6
    return rate * (p * (1 - p)) ** exponent


def fee_e6(shares_e6: int, price_e6: int, rate: Decimal, exponent: Decimal) -> int:
    """The fee in collateral micro-units for `shares` filled at `price`."""
    raw = Decimal(shares_e6) * effective_rate(price_e6, rate, exponent)  # already in micro-dollars
    units = (raw / _FEE_UNIT_E6).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(units) * _FEE_UNIT_E6


def fee_bound_e6(shares_e6: int, limit_price_e6: int, rate: Decimal, exponent: Decimal) -> int:
    """The largest fee a taker can pay filling `shares` at any price up to its limit (p(1-p) peaks at 0.5)."""
    return fee_e6(shares_e6, min(limit_price_e6, 500_000), rate, exponent)


def rate_bps(price_e6: int, rate: Decimal, exponent: Decimal) -> str:
    """The effective fee rate at a price, in basis points, as the trade's `fee_rate_bps` string.

    Exact (a shift of the decimal point, no rounding): shares x this / 10^4, rounded to 5 decimals, is the
    very fee the venue charged, so a reader of the trade can book it (the engine's evidence settlement)."""
    return format(effective_rate(price_e6, rate, exponent).scaleb(4).normalize(), "f")
