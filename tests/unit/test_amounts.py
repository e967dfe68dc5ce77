from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horus.domain.amounts import AmountError, from_e6, to_e6


def test_examples():
    assert to_e6("12.5") == 12_500_000
    assert to_e6("0.000001") == 1
    assert to_e6(3) == 3_000_000
    assert from_e6(12_500_000) == "12.5"
    assert from_e6(1) == "0.000001"
    assert from_e6(0) == "0"


@pytest.mark.parametrize("bad", [0.1, "0.0000001", "abc", "NaN", "Infinity"])
def test_refuses_what_would_lose_precision(bad):
    with pytest.raises(AmountError):
        to_e6(bad)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_round_trip(units):
    assert to_e6(from_e6(units)) == units
    assert Decimal(from_e6(units)) * 10**6 == units
