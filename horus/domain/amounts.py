"""Exact amounts: 6-decimal base units as ints, decimal strings at the edges, never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

SCALE = 6
E6 = 10**SCALE  # one whole unit (a dollar of collateral, a share) in base units: the `_e6` suffix


class AmountError(ValueError):
    pass


def to_e6(value: str | int | Decimal) -> int:
    """'12.5' -> 12_500_000. Refuses floats and anything finer than 6 decimals (it would be lost)."""
    if isinstance(value, float):
        raise AmountError(f"amount {value!r} is a float; pass a decimal string so nothing is rounded")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise AmountError(f"amount {value!r} is not a decimal number") from exc
    if not number.is_finite():
        raise AmountError(f"amount {value!r} is not finite")
    scaled = number.scaleb(SCALE)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"amount {value!r} has more than {SCALE} decimals")
    return int(scaled)


def from_e6(units: int) -> str:
    """12_500_000 -> '12.5' (no exponent, no trailing zeros)."""
    text = format(Decimal(units).scaleb(-SCALE), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def json_decimal(value: object) -> Decimal:
    """A JSON number or numeric string as an exact, finite Decimal. A JSON float goes through its
    shortest repr ("0.1", not 0.1000000000000000055...), never through float arithmetic."""
    if isinstance(value, bool) or value is None:
        raise AmountError(f"must be a number, got {value!r}")
    text: str | int | Decimal  # each is exact for Decimal()
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (int, Decimal)):
        text = value
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise AmountError(f"must be a number, got {type(value).__name__}")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise AmountError(f"{value!r:.60} is not a decimal number") from None
    if not number.is_finite():
        raise AmountError(f"{value!r:.60} is not finite")
    return number
