"""Money and size units: integer micro-units (shares_e6, collateral_e6, price_e6 in micro-dollars per share)."""

from __future__ import annotations

from decimal import Decimal

E6 = 1_000_000


def to_e6(value: Decimal) -> int:
    """A decimal amount in micro-units, truncated: Decimal("1.5") -> 1500000."""
    return int(value * E6)


def decimal_text(units_e6: int) -> str:
    """Micro-units as a plain decimal string: 1500000 -> "1.5"."""
    return format((Decimal(units_e6) / E6).normalize(), "f")


def notional_e6(shares_e6: int, price_e6: int) -> int:
    """Collateral for `shares` at `price`, rounded down to the 6-decimal unit."""
    return shares_e6 * price_e6 // E6
