"""Market metadata per outcome token, parsed from Gamma and CLOB REST bodies and the market channel.

One :class:`MarketInfo` per trading id (outcome token): condition id, outcome, neg-risk flag, tick
size, minimum order size, fee parameters and market version. Facts used (platform notes 3.6, 4, 5,
8.1, 8.5, 12.4; shapes checked against the captured fixtures):

- Gamma market (flat camelCase): ``conditionId``, ``clobTokenIds`` and ``outcomes`` are *JSON-encoded
  strings* in full market bodies (``"[\\"Yes\\", \\"No\\"]"``) but plain arrays in some slim bodies;
  both are accepted. ``version`` is ``"v1"`` (CTF, trading ids = ``clobTokenIds``) or ``"v2"``
  (Protocol V2 / ExchangeV3, trading ids = ``positionIds``); absent means ``"v1"`` (every captured
  body predates the field). The trading id list is chosen by ``version``, not by field presence.
  ``orderPriceMinTickSize``, ``orderMinSize``, ``negRisk``, ``feesEnabled``, ``feeSchedule{rate,
  exponent, takerOnly, rebateRate}``, ``makerBaseFee``/``takerBaseFee`` (legacy bps).
- CLOB ``/markets/{condition_id}`` (snake_case): ``condition_id``, ``tokens[{token_id, outcome}]``,
  ``minimum_tick_size``, ``minimum_order_size``, ``neg_risk``, ``maker_base_fee``/``taker_base_fee``,
  optional ``version``. Tokens with an empty ``token_id`` (old markets without an order book) are
  left out. ``/markets`` pages are ``{"data": [...], "next_cursor": ...}``.
- CLOB ``/clob-markets/{condition_id}`` (compact): ``c`` condition id, ``t[{t: token, o: outcome}]``,
  ``mts`` tick, ``mos`` min order size, ``nr`` neg risk, ``fd{r, e, to}`` fee rate/exponent/taker-only,
  ``mbf``/``tbf`` base fees. No captured body exists; the keys are the TS client's types.
- ``/tick-size`` -> ``{"minimum_tick_size": ...}``, ``/neg-risk`` -> ``{"neg_risk": bool}``,
  ``/fee-rate`` -> ``{"base_fee": "150"}`` (legacy bps, a string in the captured bodies).
- Market channel ``tick_size_change``: ``asset_id, market, old_tick_size, new_tick_size, timestamp``
  (ms, a string).

Prices, sizes and rates are :class:`~decimal.Decimal` taken from the JSON text (a float through
``repr``, i.e. the shortest text that reads back as the same number), never float arithmetic.
Every malformed body raises :class:`MarketDataError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from horus.domain.amounts import AmountError, json_decimal
from horus.domain.market import FeeParams, MarketInfo

__all__ = [
    "KNOWN_TICK_SIZES",
    "MarketDataError",
    "TickSizeChange",
    "parse_gamma_market",
    "parse_gamma_markets",
    "parse_clob_market",
    "parse_clob_markets_page",
    "parse_clob_market_compact",
    "parse_tick_size",
    "parse_neg_risk",
    "parse_fee_rate",
    "parse_tick_size_change",
    "parse_market_by_token",
]

#: Tick sizes the docs list (0.1 .. 0.0001) plus the two the SDKs also accept (platform notes 3.6).
KNOWN_TICK_SIZES = frozenset(Decimal(t) for t in ("0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025"))
VERSIONS = ("v1", "v2")


class MarketDataError(ValueError):
    """A market metadata body that cannot be used; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TickSizeChange:
    token_id: str
    condition_id: str | None
    old_tick_size: Decimal | None
    new_tick_size: Decimal
    timestamp_ms: int | None


# --------------------------------------------------------------------------- field helpers


def _obj(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise MarketDataError(f"{what} must be a JSON object, got {type(body).__name__}")
    return body


def _present(body: Mapping[str, Any], *names: str) -> tuple[str, Any] | None:
    for name in names:
        if name in body and body[name] is not None and body[name] != "":
            return name, body[name]
    return None


def _required(body: Mapping[str, Any], what: str, *names: str) -> tuple[str, Any]:
    found = _present(body, *names)
    if found is None:
        raise MarketDataError(f"{what}: field {' / '.join(names)} is missing", names[0])
    return found


def decimal_of(value: Any, field: str, what: str = "market") -> Decimal:
    """A JSON number or numeric string as an exact finite Decimal (floats through ``repr``)."""
    try:
        return json_decimal(value)
    except AmountError as exc:
        raise MarketDataError(f"{what}: field {field} {exc}", field) from None


def _bool(value: Any, field: str, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MarketDataError(f"{what}: field {field} must be true or false, got {value!r:.40}", field)


def _opt_bool(body: Mapping[str, Any], field: str, what: str) -> bool | None:
    return _optional(body, field, "", what, _bool)


def _tick(value: Any, field: str, what: str) -> Decimal:
    tick = decimal_of(value, field, what)
    if not 0 < tick < 1:
        raise MarketDataError(f"{what}: field {field}={value!r} is not a tick size in (0, 1)", field)
    return tick.normalize()


def _size(value: Any, field: str, what: str) -> Decimal:
    size = decimal_of(value, field, what)
    if size < 0:
        raise MarketDataError(f"{what}: field {field}={value!r} is negative", field)
    return size


def _bps(value: Any, field: str, what: str) -> int:
    number = decimal_of(value, field, what)
    if number != number.to_integral_value() or number < 0:
        raise MarketDataError(f"{what}: field {field}={value!r} is not a whole number of bps", field)
    return int(number)


def _token_id(value: Any, field: str, what: str) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 80 or int(text) == 0 or int(text) >= 2**256:
        raise MarketDataError(f"{what}: field {field} has {value!r:.90}, not a decimal uint256 token id", field)
    return str(int(text))


def _condition_id(value: Any, field: str, what: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not (text.startswith("0x") and len(text) == 66 and all(c in "0123456789abcdef" for c in text[2:])):
        raise MarketDataError(f"{what}: field {field}={value!r:.80} is not a 32-byte 0x hex condition id", field)
    return text


def _json_list(value: Any, field: str, what: str) -> list[Any]:
    """Gamma sends some arrays as JSON-encoded strings; accept both."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise MarketDataError(
                f"{what}: field {field} is a string but not a JSON array: {value!r:.80}", field
            ) from None
    if not isinstance(value, list):
        raise MarketDataError(f"{what}: field {field} must be an array, got {type(value).__name__}", field)
    return value


def _version(body: Mapping[str, Any], what: str) -> str:
    found = _present(body, "version")
    if found is None:
        return "v1"
    version = str(found[1]).strip().lower()
    if version not in VERSIONS:
        raise MarketDataError(f"{what}: field version={found[1]!r:.20} is not one of {VERSIONS}", "version")
    return version


# --------------------------------------------------------------------------- Gamma


_Parsed = TypeVar("_Parsed")


def _optional(
    obj: Mapping[str, Any], key: str, path: str, what: str, parse: Callable[[Any, str, str], _Parsed]
) -> _Parsed | None:
    """obj[key] parsed (an error names `path.key`), or None when the key is absent."""
    found = _present(obj, key)
    return None if found is None else parse(found[1], f"{path}.{key}" if path else key, what)


def _gamma_fees(body: Mapping[str, Any], what: str) -> FeeParams:
    schedule = body.get("feeSchedule")
    rate = exponent = rebate = taker_only = None
    if schedule is not None:
        schedule = _obj(schedule, f"{what}: field feeSchedule")
        rate = _optional(schedule, "rate", "feeSchedule", what, decimal_of)
        exponent = _optional(schedule, "exponent", "feeSchedule", what, decimal_of)
        rebate = _optional(schedule, "rebateRate", "feeSchedule", what, decimal_of)
        taker_only = _optional(schedule, "takerOnly", "feeSchedule", what, _bool)
    maker = _present(body, "makerBaseFee")
    taker = _present(body, "takerBaseFee")
    return FeeParams(
        enabled=_opt_bool(body, "feesEnabled", what),
        rate=rate,
        exponent=exponent,
        taker_only=taker_only,
        rebate_rate=rebate,
        maker_base_fee_bps=None if maker is None else _bps(maker[1], "makerBaseFee", what),
        taker_base_fee_bps=None if taker is None else _bps(taker[1], "takerBaseFee", what),
    )


def parse_gamma_market(body: Any) -> list[MarketInfo]:
    """One Gamma market object -> one :class:`MarketInfo` per trading id (in outcome order)."""
    body = _obj(body, "gamma market")
    what = f"gamma market {body.get('id', '?')}"
    _, cid = _required(body, what, "conditionId")
    condition_id = _condition_id(cid, "conditionId", what)
    version = _version(body, what)
    ids_field = "positionIds" if version == "v2" else "clobTokenIds"
    _, raw_ids = _required(body, what, ids_field)
    token_ids = [_token_id(t, ids_field, what) for t in _json_list(raw_ids, ids_field, what)]
    if not token_ids:
        raise MarketDataError(f"{what}: field {ids_field} is empty", ids_field)
    outcomes: list[Any] = [None] * len(token_ids)
    if (found := _present(body, "outcomes")) is not None:
        outcomes = _json_list(found[1], "outcomes", what)
        if len(outcomes) != len(token_ids):
            raise MarketDataError(
                f"{what}: field outcomes has {len(outcomes)} entries for {len(token_ids)} {ids_field}", "outcomes"
            )
    tick = _present(body, "orderPriceMinTickSize")
    min_size = _present(body, "orderMinSize")
    common: dict[str, Any] = dict(  # keyword arguments shared by every token's MarketInfo
        condition_id=condition_id,
        neg_risk=_opt_bool(body, "negRisk", what),
        tick_size=None if tick is None else _tick(tick[1], "orderPriceMinTickSize", what),
        min_order_size=None if min_size is None else _size(min_size[1], "orderMinSize", what),
        fees=_gamma_fees(body, what),
        version=version,
        active=_opt_bool(body, "active", what),
        closed=_opt_bool(body, "closed", what),
        accepting_orders=_opt_bool(body, "acceptingOrders", what),
        question=body.get("question") if isinstance(body.get("question"), str) else None,
        slug=body.get("slug") if isinstance(body.get("slug"), str) else None,
        category=body["category"] if isinstance(body.get("category"), str) else None,
        tags=tuple(
            t["slug"] for t in body.get("tags") or () if isinstance(t, Mapping) and isinstance(t.get("slug"), str)
        ),
        source="gamma",
    )
    return [
        MarketInfo(token_id=token, outcome=None if outcome is None else str(outcome), outcome_index=i, **common)
        for i, (token, outcome) in enumerate(zip(token_ids, outcomes))
    ]


def parse_gamma_markets(body: Any) -> list[MarketInfo]:
    """A Gamma ``/markets`` list, a ``{"data": [...]}`` page, an event (``markets: [...]``) or a list of
    events -> every token's :class:`MarketInfo`. A malformed market raises."""
    if isinstance(body, Mapping):
        if isinstance(body.get("data"), list):
            return parse_gamma_markets(body["data"])
        if isinstance(body.get("markets"), list) and "conditionId" not in body:
            return parse_gamma_markets(body["markets"])
        return parse_gamma_market(body)
    if not isinstance(body, list):
        raise MarketDataError(f"gamma markets body must be a list or object, got {type(body).__name__}")
    infos: list[MarketInfo] = []
    for item in body:
        infos.extend(parse_gamma_markets(item))
    return infos


# --------------------------------------------------------------------------- CLOB


def parse_clob_market(body: Any) -> list[MarketInfo]:
    """CLOB ``/markets/{condition_id}`` body -> one :class:`MarketInfo` per token with a token id."""
    body = _obj(body, "clob market")
    what = f"clob market {body.get('condition_id', '?')}"
    _, cid = _required(body, what, "condition_id")
    condition_id = _condition_id(cid, "condition_id", what)
    _, tokens = _required(body, what, "tokens")
    if not isinstance(tokens, list):
        raise MarketDataError(f"{what}: field tokens must be an array", "tokens")
    tick = _present(body, "minimum_tick_size")
    min_size = _present(body, "minimum_order_size")
    maker = _present(body, "maker_base_fee")
    taker = _present(body, "taker_base_fee")
    common: dict[str, Any] = dict(  # keyword arguments shared by every token's MarketInfo
        condition_id=condition_id,
        neg_risk=_opt_bool(body, "neg_risk", what),
        tick_size=None if tick is None else _tick(tick[1], "minimum_tick_size", what),
        min_order_size=None if min_size is None else _size(min_size[1], "minimum_order_size", what),
        fees=FeeParams(
            maker_base_fee_bps=None if maker is None else _bps(maker[1], "maker_base_fee", what),
            taker_base_fee_bps=None if taker is None else _bps(taker[1], "taker_base_fee", what),
        ),
        version=_version(body, what),
        active=_opt_bool(body, "active", what),
        closed=_opt_bool(body, "closed", what),
        accepting_orders=_opt_bool(body, "accepting_orders", what),
        question=body.get("question") if isinstance(body.get("question"), str) else None,
        slug=body.get("market_slug") if isinstance(body.get("market_slug"), str) else None,
        source="clob",
    )
    infos = []
    for i, token in enumerate(tokens):
        token = _obj(token, f"{what}: tokens[{i}]")
        if _present(token, "token_id") is None:
            continue  # markets without an order book list placeholder tokens {"token_id": ""}
        outcome = token.get("outcome")
        infos.append(
            MarketInfo(
                token_id=_token_id(token["token_id"], f"tokens[{i}].token_id", what),
                outcome=outcome if isinstance(outcome, str) and outcome else None,
                outcome_index=i,
                **common,
            )
        )
    return infos


def parse_clob_markets_page(body: Any) -> tuple[list[MarketInfo], str | None]:
    """CLOB ``/markets`` page ``{"data": [...], "next_cursor": ...}`` -> (infos, next cursor or None at end)."""
    body = _obj(body, "clob markets page")
    _, data = _required(body, "clob markets page", "data")
    if not isinstance(data, list):
        raise MarketDataError("clob markets page: field data must be an array", "data")
    infos: list[MarketInfo] = []
    for market in data:
        infos.extend(parse_clob_market(market))
    cursor = body.get("next_cursor")
    return infos, None if cursor in (None, "", "LTE=") else str(cursor)


def parse_clob_market_compact(body: Any) -> list[MarketInfo]:
    """CLOB ``/clob-markets/{condition_id}`` compact body -> one :class:`MarketInfo` per token."""
    body = _obj(body, "clob compact market")
    what = f"clob compact market {body.get('c', '?')}"
    _, cid = _required(body, what, "c")
    condition_id = _condition_id(cid, "c", what)
    _, tokens = _required(body, what, "t")
    if not isinstance(tokens, list) or not tokens:
        raise MarketDataError(f"{what}: field t must be a non-empty array", "t")
    fd = body.get("fd")
    rate = exponent = taker_only = None
    if fd is not None:
        fd = _obj(fd, f"{what}: field fd")
        rate = _optional(fd, "r", "fd", what, decimal_of)
        exponent = _optional(fd, "e", "fd", what, decimal_of)
        taker_only = _optional(fd, "to", "fd", what, _bool)
    maker = _present(body, "mbf")
    taker = _present(body, "tbf")
    tick = _present(body, "mts")
    min_size = _present(body, "mos")
    fees = FeeParams(
        enabled=None if rate is None else rate != 0,
        rate=rate,
        exponent=exponent,
        taker_only=taker_only,
        maker_base_fee_bps=None if maker is None else _bps(maker[1], "mbf", what),
        taker_base_fee_bps=None if taker is None else _bps(taker[1], "tbf", what),
    )
    common: dict[str, Any] = dict(  # keyword arguments shared by every token's MarketInfo
        condition_id=condition_id,
        neg_risk=_opt_bool(body, "nr", what),
        tick_size=None if tick is None else _tick(tick[1], "mts", what),
        min_order_size=None if min_size is None else _size(min_size[1], "mos", what),
        fees=fees,
        version=_version(body, what),
        accepting_orders=_opt_bool(body, "ao", what),
        source="clob-compact",
    )
    infos = []
    for i, token in enumerate(tokens):
        token = _obj(token, f"{what}: t[{i}]")
        _, tid = _required(token, f"{what}: t[{i}]", "t")
        outcome = token.get("o")
        infos.append(
            MarketInfo(
                token_id=_token_id(tid, f"t[{i}].t", what),
                outcome=outcome if isinstance(outcome, str) and outcome else None,
                outcome_index=i,
                **common,
            )
        )
    return infos


def parse_tick_size(body: Any) -> Decimal:
    """``GET /tick-size?token_id`` -> the tick size."""
    body = _obj(body, "tick-size body")
    _, value = _required(body, "tick-size body", "minimum_tick_size")
    return _tick(value, "minimum_tick_size", "tick-size body")


def parse_neg_risk(body: Any) -> bool:
    """``GET /neg-risk?token_id`` -> the neg-risk flag."""
    body = _obj(body, "neg-risk body")
    if body.get("neg_risk") is None:
        raise MarketDataError("neg-risk body: field neg_risk is missing", "neg_risk")
    return _bool(body["neg_risk"], "neg_risk", "neg-risk body")


def parse_fee_rate(body: Any) -> int:
    """``GET /fee-rate?token_id`` -> the legacy base fee in bps."""
    body = _obj(body, "fee-rate body")
    _, value = _required(body, "fee-rate body", "base_fee")
    return _bps(value, "base_fee", "fee-rate body")


def parse_market_by_token(body: Any) -> str:
    """``GET /markets-by-token/{token_id}`` -> the condition id."""
    body = _obj(body, "markets-by-token body")
    _, cid = _required(body, "markets-by-token body", "condition_id")
    return _condition_id(cid, "condition_id", "markets-by-token body")


def parse_tick_size_change(msg: Any) -> TickSizeChange:
    """A market-channel ``tick_size_change`` message (with or without ``event_type``)."""
    msg = _obj(msg, "tick_size_change message")
    what = "tick_size_change message"
    kind = msg.get("event_type")
    if kind is not None and kind != "tick_size_change":
        raise MarketDataError(f"{what}: field event_type is {kind!r:.40}, not tick_size_change", "event_type")
    _, asset = _required(msg, what, "asset_id")
    _, new = _required(msg, what, "new_tick_size")
    old = _present(msg, "old_tick_size")
    market = _present(msg, "market")
    stamp = _present(msg, "timestamp")
    timestamp_ms = None
    if stamp is not None:
        number = decimal_of(stamp[1], "timestamp", what)
        if number != number.to_integral_value() or number < 0:
            raise MarketDataError(f"{what}: field timestamp={stamp[1]!r} is not a whole number of ms", "timestamp")
        timestamp_ms = int(number)
    return TickSizeChange(
        token_id=_token_id(asset, "asset_id", what),
        condition_id=None if market is None else _condition_id(market[1], "market", what),
        old_tick_size=None if old is None else _tick(old[1], "old_tick_size", what),
        new_tick_size=_tick(new, "new_tick_size", what),
        timestamp_ms=timestamp_ms,
    )
