"""The V2 platform fee (platform notes 5): one formula for decide's sizing, evidence settlement and the executor."""

from __future__ import annotations

from decimal import Decimal

import pytest

from horus.domain.fees import effective_rate, fee_at_rate_e6, taker_fee_e6
from horus.venue.simulator.clob.fees import fee_e6 as simulator_fee_e6


@pytest.mark.parametrize(
    "shares_e6, price, rate, exponent, expected",
    [
        (10_000_000, "0.5", "0.02", "1", 50_000),  # 10 x 0.02 x 0.25 = 0.05
        (10_000_000, "0.51", "0.02", "1", 49_980),  # 10 x 0.02 x 0.2499 = 0.04998
        (100_000_000, "0.54", "0.25", "2", 1_542_560),  # 100 x 0.25 x 0.2484^2 = 1.542564
        (1_000_000, "0.01", "0.0001", "1", 0),  # 0.00000099 rounds to 0 at 5 dp
        (10_000_000, "0.5", "0", "1", 0),
        (3_330_000, "0.37", "0.072", "1", 55_890),  # 3.33 x 0.072 x 0.2331 = 0.055888056
    ],
)
def test_taker_fee_is_shares_times_rate_times_p_one_minus_p_to_the_exponent(shares_e6, price, rate, exponent, expected):
    exact = Decimal(shares_e6) / 10**6 * Decimal(rate) * (Decimal(price) * (1 - Decimal(price))) ** Decimal(exponent)
    fee = taker_fee_e6(shares_e6, Decimal(price), Decimal(rate), Decimal(exponent))
    assert fee == expected == int(exact.quantize(Decimal("0.00001"), "ROUND_HALF_UP") * 10**6)


def test_one_formula_with_the_simulator_and_the_trade_rate():
    for shares in (1_000_000, 7_770_000, 123_450_000):
        for price in ("0.01", "0.33", "0.5", "0.87", "0.99"):
            for rate, exponent in (("0.02", "1"), ("0.072", "1"), ("0.25", "2")):
                p, r, e = Decimal(price), Decimal(rate), Decimal(exponent)
                fee = taker_fee_e6(shares, p, r, e)
                assert fee == simulator_fee_e6(shares, int(p * 10**6), r, e)
                assert fee == fee_at_rate_e6(shares, effective_rate(p, r, e))
                assert fee % 10 == 0  # whole 1e-5 units


def test_garbage_is_refused():
    with pytest.raises(ValueError):
        taker_fee_e6(-1, Decimal("0.5"), Decimal("0.02"), Decimal(1))
    with pytest.raises(ValueError):
        taker_fee_e6(1_000_000, Decimal("1.5"), Decimal("0.02"), Decimal(1))
    with pytest.raises(ValueError):
        fee_at_rate_e6(1_000_000, Decimal("-0.01"))


def test_no_shares_pay_no_fee():
    assert fee_at_rate_e6(0, Decimal("0.01")) == 0
    assert taker_fee_e6(0, Decimal("0.5"), Decimal("0.02"), Decimal(1)) == 0


def test_a_refusal_names_the_values():
    with pytest.raises(ValueError, match="shares -1 and rate 0.01 must be >= 0"):
        fee_at_rate_e6(-1, Decimal("0.01"))
    with pytest.raises(ValueError, match=r"price 1.5 is outside \[0, 1\]"):
        effective_rate(Decimal("1.5"), Decimal("0.02"), Decimal(1))
