"""The V2 platform fee (platform notes 5), one formula for the whole engine.

    effective rate = rate x (p(1-p))^exponent      (per share, at the fill price p)
    fee            = shares x effective rate, rounded to 5 decimals (half up): under 0.000005 it is 0

decide sizes and reserves BUYs with it, evidence settlement prices each venue trade with it, and the
executor prices a `matched` reply with it (from the market's schedule). Amounts are 1e-6 units
(`_e6`); a fee is always a whole number of 1e-5 units (10 in e6). Who pays: the taker (makers pay 0
when the market's schedule is taker-only); a BUY pays fill + fee, a SELL's fee comes out of its
proceeds. The CLOB simulator, a peer that imports nothing of the engine, computes the same formula in
`horus.venue.simulator.clob.fees`; `tests/unit/test_domain_fees.py` holds the two to the same results.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

FEE_UNIT_E6 = 10  # fees have 5 decimals: 1e-5 = 10 micro-units


def effective_rate(price: Decimal, rate: Decimal, exponent: Decimal) -> Decimal:
    """The fee per share at `price` (as a fraction of one share's payout, 1 pUSD)."""
    if not 0 <= price <= 1:
        raise ValueError(f"price {price} is outside [0, 1]")
    if rate < 0 or exponent < 0:
        raise ValueError(f"fee rate {rate} and exponent {exponent} must be >= 0")
    if rate == 0:
        return Decimal(0)
    if exponent == 0:  # a flat rate per share; and Decimal refuses 0 ** 0 (a price of 0 or 1)
        return rate
    return rate * (price * (1 - price)) ** exponent


def fee_at_rate_e6(shares_e6: int, rate: Decimal) -> int:
    """The fee of `shares_e6` at an effective per-share `rate`, in e6 units rounded to 5 decimals."""
    if shares_e6 < 0 or rate < 0:
        raise ValueError(f"shares {shares_e6} and rate {rate} must be >= 0")
    units = (Decimal(shares_e6) * rate / FEE_UNIT_E6).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(units) * FEE_UNIT_E6


def taker_fee_e6(shares_e6: int, price: Decimal, rate: Decimal, exponent: Decimal) -> int:
    """The platform fee of a taker fill of `shares_e6` at `price`, in e6 units (5-decimal rounding)."""
    return fee_at_rate_e6(shares_e6, effective_rate(price, rate, exponent))
