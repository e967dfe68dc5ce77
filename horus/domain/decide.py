"""decide: one CopyCandidate -> exactly one CopyDecision (COPY or SKIP with a reason), per follower.

`decide(candidate, state, now_us=, view=)` is pure: everything it looks at is either the candidate, the
folded `DecideState` (reservations, positions, daily spend of every follower on this partition), or the
`DecideView` the runner filled before the batch (configs, control switches, market rules, quotes,
balances). A decision is applied to the state with `apply_decision` -- the same function that rebuilds
the state from the copy.decisions topic after a restart -- and `apply_result` folds execution results.
So a replay of decisions and results gives exactly the state the live stage had.

Money: integers in 6-decimal base units (`_e6`); prices Decimal. Rules (platform notes 3.4-3.6, 5, 12.4):
- reference price = best ask (BUY) / best bid (SELL) of a quote younger than the quote TTL, else the
  leader's price while the fill is younger than that TTL, else SKIP NO_PRICE;
- worst price = reference -+ slippage, never beyond the leader's price -+ slippage, rounded to the tick
  away from the follower's favour (BUY down, SELL up) and clamped to [tick, 1 - tick]; a market already
  beyond that is SKIP PRICE_MOVED;
- shares have 2 decimals; a BUY's notional (shares x price) lands on whole cents; marketable orders need
  >= $1 notional; BUY cost = notional + taker fee (rate x (p(1-p))^exponent per share); a BUY in a
  market whose fee schedule is unknown is SKIP FEE_UNKNOWN, never sized with a fee of 0;
- a BUY is shrunk to fit every cap (follow and follower daily spend, market exposure, available collateral)
  and skipped, naming the binding cap, when what is left is below the minimum; caps are never exceeded;
- a SELL sells the leader's sold fraction of what this follower holds *from copying this leader*, never
  more than the venue says it holds, and reports dust instead of dropping it.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from functools import lru_cache
from math import gcd
from typing import Any, Protocol, cast

from horus.domain.amounts import E6
from horus.domain.clock import future_detail, in_future
from horus.domain.config import ConfigState, FollowConfig, FollowerConfig, Sizing
from horus.domain.control import ControlState
from horus.domain.events import FAILURES, TERMINAL, envelope
from horus.domain.fees import effective_rate
from horus.domain.ids import decision_id, intent_id
from horus.domain.market import Balance, MarketInfo, Quote

STAGE = "decide"
SHARE_STEP_E6 = 10_000  # shares have 2 decimals
MIN_NOTIONAL_E6 = 1_000_000  # marketable orders: >= $1
DAY_US = 86_400 * 1_000_000
MAX_QUOTE_TTL_US = 5_000_000
FILLS_REMEMBERED_US = 60 * 1_000_000  # a balance read is never older than this (its TTL is seconds)


# ------------------------------------------------------------------------------------------------
# what the runner looks up before a batch
# ------------------------------------------------------------------------------------------------
class DecideView(Protocol):
    config: ConfigState
    control: ControlState
    quote_ttl_us: int

    def market(self, token_id: str) -> MarketInfo | None: ...

    def quote(self, token_id: str) -> Quote | None: ...

    def balance(self, follower: str) -> Balance | None: ...


@dataclass
class StaticView:
    """A DecideView over plain dicts: simulations and tests fill them once, the live stage before each batch."""

    config: ConfigState
    control: ControlState
    markets: dict[str, MarketInfo] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    balances: dict[str, Balance] = field(default_factory=dict)
    quote_ttl_us: int = MAX_QUOTE_TTL_US

    def market(self, token_id: str) -> MarketInfo | None:
        return self.markets.get(token_id)

    def quote(self, token_id: str) -> Quote | None:
        return self.quotes.get(token_id)

    def balance(self, follower: str) -> Balance | None:
        return self.balances.get(follower)


# ------------------------------------------------------------------------------------------------
# state
# ------------------------------------------------------------------------------------------------
@dataclass
class Reservation:
    follow_id: str
    leader: str
    token_id: str
    condition_id: str
    side: str
    shares_e6: int
    cost_e6: int  # BUY: collateral incl. fee held back; SELL: 0
    day: int


@dataclass
class Booked:
    """What a terminal result booked for one COPY, so that a later result of the same order (a correction: a
    trade that FAILED on chain, a fill another writer missed) books the difference, not the whole again."""

    reservation: Reservation
    shares_e6: int = 0  # BUY: shares bought; SELL: shares sold
    amount_e6: int = 0  # BUY: collateral spent, fee included; SELL: cost basis released with the sold shares
    final: bool = True  # False: the fills are the venue's match, not settled on chain; a correction may follow
    seq: int = 0  # the result sequence booked last: an older result redelivered later changes nothing


@dataclass
class Position:
    shares_e6: int = 0
    cost_e6: int = 0  # cost basis of what is held (fees included)
    condition_id: str = ""


@dataclass
class FollowerBook:
    """Everything decide remembers about one follower. Totals over open reservations and positions are
    kept as running sums (a follower may have thousands of COPYs awaiting results)."""

    decided: set[str] = field(default_factory=set)  # candidate ids with a decision
    reservations: dict[str, Reservation] = field(default_factory=dict)  # intent id -> open COPY
    booked: dict[str, Booked] = field(default_factory=dict)  # intents whose terminal result is folded
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)  # (token, leader)
    leader_holdings: dict[tuple[str, str], int] = field(default_factory=dict)  # (follow, token) -> leader shares seen
    spend: dict[tuple[int, str], int] = field(default_factory=dict)  # (day, follow id | "*") -> collateral
    # (at_us, cost_e6): BUY fills a balance read may miss
    fills_after: deque[tuple[int, int]] = field(default_factory=deque)
    reserved_cost: int = 0  # collateral held back by open BUYs
    # condition and (condition, leader) -> cost held + reserved
    _exposure: Counter[str | tuple[str, str]] = field(default_factory=Counter)
    # token and (token, leader) -> shares in open SELLs
    _selling: Counter[str | tuple[str, str]] = field(default_factory=Counter)
    _buying: Counter[str] = field(default_factory=Counter)  # token -> open BUY reservations

    def forget_fills_before(self, us: int) -> None:
        while self.fills_after and self.fills_after[0][0] < us:
            self.fills_after.popleft()

    def spent(self, day: int, scope: str) -> int:
        return self.spend.get((day, scope), 0)

    def add_spend(self, day: int, follow_id: str, amount: int) -> None:
        for scope in (follow_id, "*"):
            self.spend[(day, scope)] = self.spend.get((day, scope), 0) + amount

    def exposure(self, condition_id: str, leader: str | None = None) -> int:
        """Cost basis held plus BUYs reserved in one market (one leader's share of it if given)."""
        return self._exposure[condition_id if leader is None else (condition_id, leader)]

    def _add_exposure(self, condition_id: str, leader: str, amount: int) -> None:
        self._exposure[condition_id] += amount
        self._exposure[(condition_id, leader)] += amount

    def open_tokens(self) -> set[str]:
        held = {token for (token, _), p in self.positions.items() if p.shares_e6 > 0}
        return held | {token for token, n in self._buying.items() if n > 0}

    def reserved_to_sell(self, token_id: str, leader: str | None = None) -> int:
        return self._selling[token_id if leader is None else (token_id, leader)]

    def reserve(self, intent: str, r: Reservation) -> None:
        self.reservations[intent] = r
        self._account(r, 1)

    def release(self, intent: str) -> Reservation | None:
        r = self.reservations.pop(intent, None)
        if r is not None:
            self._account(r, -1)
        return r

    def _account(self, r: Reservation, sign: int) -> None:
        if r.side == "BUY":
            self.reserved_cost += sign * r.cost_e6
            self._add_exposure(r.condition_id, r.leader, sign * r.cost_e6)
            self._buying[r.token_id] += sign
        else:
            self._selling[r.token_id] += sign * r.shares_e6
            self._selling[(r.token_id, r.leader)] += sign * r.shares_e6


@dataclass
class DecideState:
    """Per-follower books of every follower this instance decides for (one partition or more), and
    the recent execution outcomes the circuit breaker watches."""

    books: dict[str, FollowerBook] = field(default_factory=dict)
    outcomes: deque[tuple[int, bool]] = field(default_factory=deque)  # (at_us, failed: bool)

    def book(self, follower: str) -> FollowerBook:
        book = self.books.get(follower)
        if book is None:
            book = self.books[follower] = FollowerBook()
        return book


# ------------------------------------------------------------------------------------------------
# price, size and fee arithmetic
# ------------------------------------------------------------------------------------------------
def to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    return (price / tick).to_integral_value(rounding=rounding) * tick


def fee_schedule(market: MarketInfo) -> tuple[Decimal, Decimal] | None:
    """(rate, exponent) of the market's taker fee; (0, 1) when it is known to charge none; None when the
    schedule is unknown (no `fees`, or no rate: see FeeParams.known). A missing exponent is 1."""
    fees = market.fees
    if fees is None or not fees.known:
        return None
    if fees.enabled is False or not fees.rate:
        return Decimal(0), Decimal(1)
    return fees.rate, fees.exponent if fees.exponent is not None else Decimal(1)


def fee_per_share(market: MarketInfo, price: Decimal) -> Decimal:
    """Taker fee per share at `price` (platform notes 5; horus.domain.fees); 0 when the market charges
    none. Raises ValueError for an unknown schedule: decide SKIPs those BUYs (FEE_UNKNOWN) before sizing."""
    schedule = fee_schedule(market)
    if schedule is None:
        raise ValueError(f"the fee schedule of market {market.condition_id} is unknown")
    return effective_rate(price, *schedule)


def buy_cost_e6(shares_e6: int, price: Decimal, fee: Decimal) -> int:
    """Collateral a BUY of `shares_e6` at `price` may take: notional + fee, rounded up."""
    return int((Decimal(shares_e6) * (price + fee)).to_integral_value(rounding=ROUND_CEILING))


def notional_e6(shares_e6: int, price: Decimal) -> int:
    return int((Decimal(shares_e6) * price).to_integral_value(rounding=ROUND_FLOOR))


@lru_cache(maxsize=4096)
def buy_share_step_e6(price: Decimal) -> int:
    """Smallest share increment (shares have 2 dp) whose notional at `price` is whole cents:
    price = n / 10^d, shares = s / 100, so s must be a multiple of 10^d / gcd(n, 10^d)."""
    _, digits, exponent = price.normalize().as_tuple()
    # prices here are finite (validated on the way in), and a finite Decimal's exponent is an int
    scale: int = 10 ** max(0, -cast(int, exponent))
    numerator = int("".join(map(str, digits)))
    return scale // gcd(numerator, scale) * SHARE_STEP_E6


def floor_to(value: int, step: int) -> int:
    return value // step * step


def ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


# ------------------------------------------------------------------------------------------------
# the decision
# ------------------------------------------------------------------------------------------------
class _Skip(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(code)
        self.code, self.detail = code, detail


class CandidateInvalid(ValueError):
    """A candidate no decision can be written for: decide raises before it touches the state, and the runner
    parks the candidate in dead.letters."""


# Ids, addresses, token ids and prices are far shorter. A decision copies these fields (and names some in its
# detail), so a longer one could swell the decision past the broker's message size: its produce would fail,
# and the stage would stop on the same candidate after every restart.
MAX_CANDIDATE_TEXT = 256
_CANDIDATE_TEXT = ("leader_fill_id", "follow_id", "follower", "leader", "token_id", "leader_price", "condition_id")


def _check_candidate(c: dict[str, Any]) -> None:
    """Raise CandidateInvalid for a candidate whose decision could not be produced."""
    if c.get("side") not in ("BUY", "SELL"):  # UNRECOGNIZED: a newer writer's side, which no writer may write
        raise CandidateInvalid(f"candidate side {c.get('side')!r:.20} is neither BUY nor SELL")
    for name in _CANDIDATE_TEXT:
        value = c.get(name)
        if isinstance(value, str) and len(value) > MAX_CANDIDATE_TEXT:
            raise CandidateInvalid(f"candidate {name} is {len(value)} characters long (at most {MAX_CANDIDATE_TEXT})")
    if len(c["envelope"]["event_id"]) > MAX_CANDIDATE_TEXT:
        raise CandidateInvalid(f"candidate id is {len(c['envelope']['event_id'])} characters long")


def token_id_wellformed(token_id: str) -> bool:
    """A decimal uint256 as the venue writes outcome token ids: only such ids are looked up at the venue (a
    forged one is a SKIP MARKET_UNKNOWN without a request)."""
    return isinstance(token_id, str) and 0 < len(token_id) <= 78 and token_id.isascii() and token_id.isdigit()


def _check_values(c: dict[str, Any]) -> None:
    """SKIP CANDIDATE_INVALID for well-typed values no real leader fill has (a source bug or a forged record):
    a price outside (0, 1] or not a number, no shares, negative collateral."""
    try:
        price = Decimal(c["leader_price"])
    except (InvalidOperation, ValueError, TypeError):
        raise _Skip("CANDIDATE_INVALID", f"leader price {c['leader_price']!r:.40} is not a number") from None
    if price.is_nan():
        raise _Skip("CANDIDATE_INVALID", f"leader price {c['leader_price']!r:.40} is not a number")
    if not 0 < price <= 1:
        raise _Skip("CANDIDATE_INVALID", f"leader price {c['leader_price']:.40} is outside (0, 1]")
    if c["leader_shares_e6"] <= 0:
        raise _Skip("CANDIDATE_INVALID", f"leader shares {c['leader_shares_e6'] / E6:g} are not positive")
    if c["leader_collateral_e6"] < 0:
        raise _Skip("CANDIDATE_INVALID", f"leader collateral {c['leader_collateral_e6'] / E6:g} is negative")


_INPUTS_JSON = json.JSONEncoder(separators=(",", ":"))  # insertion order is deterministic: no sort needed


def _dec(value: Decimal | int | None) -> str | None:
    return None if value is None else format(value, "f")


def decide(
    candidate: dict[str, Any], state: DecideState, *, now_us: int, view: DecideView
) -> tuple[list[dict[str, Any]], DecideState]:
    """(CopyCandidate, state) -> ([one CopyDecision], state); ([], state) for a candidate already decided.
    Raises CandidateInvalid, leaving the state alone, for a candidate no decision can be written for."""
    _check_candidate(candidate)
    env = candidate["envelope"]
    book = state.book(candidate["follower"])
    if env["event_id"] in book.decided:
        return [], state  # redelivered: its decision is already on copy.decisions
    inputs: dict[str, Any] = {}
    try:
        action = _copy(candidate, book, now_us, view, inputs)
    except _Skip as skip:
        action = {"action": "SKIP", "reason_code": skip.code, "reason_detail": skip.detail}
    decision = _decision(candidate, action, inputs, now_us)
    apply_decision(decision, state)
    return [decision], state


def _decision(candidate: dict[str, Any], action: dict[str, Any], inputs: dict[str, Any], now_us: int) -> dict[str, Any]:
    env = candidate["envelope"]
    cand_id = env["event_id"]
    copy = action["action"] == "COPY"
    return {
        "envelope": envelope(
            decision_id(cand_id), STAGE, env["occurred_at_us"], causation_id=cand_id, produced_at_us=now_us
        ),
        "candidate_id": cand_id,
        "follow_id": candidate["follow_id"],
        "follower": candidate["follower"],
        "leader_fill_id": candidate["leader_fill_id"],
        "action": action["action"],
        "intent_id": intent_id(candidate["follow_id"], candidate["leader_fill_id"]) if copy else None,
        "token_id": candidate["token_id"],
        "side": candidate["side"],
        "size_e6": action.get("size_e6", 0),
        "worst_price": _dec(action.get("worst_price")),
        "order_type": action.get("order_type"),
        "expires_at_us": action.get("expires_at_us"),
        "reason_code": action.get("reason_code"),
        "reason_detail": action.get("reason_detail"),
        "leader": candidate["leader"],
        "condition_id": action.get("condition_id") or candidate.get("condition_id"),
        "reserved_e6": action.get("reserved_e6", 0),
        "leader_shares_e6": candidate["leader_shares_e6"],
        "inputs": _INPUTS_JSON.encode(inputs) if inputs else None,
    }


def _copy(
    c: dict[str, Any], book: FollowerBook, now_us: int, view: DecideView, inputs: dict[str, Any]
) -> dict[str, Any]:
    _check_values(c)
    follow, follower = _configs(c, view)
    market, tick = _guards(c, follow, view.market(c["token_id"]), now_us, view)
    side = c["side"]
    leader_price = Decimal(c["leader_price"])
    ref, ref_source, quote = _reference_price(c, side, leader_price, now_us, view)
    slip = Decimal(follow.slippage_bps) / 10_000
    if side == "BUY":
        limit = leader_price * (1 + slip)
        worst = min(ref * (1 + slip), limit)
        worst = min(max(to_tick(worst, tick, ROUND_FLOOR), tick), 1 - tick)
        moved = ref > worst
    else:
        limit = leader_price * (1 - slip)
        worst = max(ref * (1 - slip), limit)
        worst = min(max(to_tick(worst, tick, ROUND_CEILING), tick), 1 - tick)
        moved = ref < worst
    inputs.update(
        leader_price=c["leader_price"],
        reference_price=_dec(ref),
        reference=ref_source,
        worst_price=_dec(worst),
        tick=_dec(tick),
        slippage_bps=follow.slippage_bps,
    )
    if quote is not None:
        inputs.update(best_bid=_dec(quote.best_bid), best_ask=_dec(quote.best_ask))
    if moved:
        raise _Skip(
            "PRICE_MOVED",
            f"{'best ask' if side == 'BUY' else 'best bid'} {ref} is past the worst "
            f"acceptable {worst} (leader {leader_price} {'+' if side == 'BUY' else '-'} {follow.slippage_bps} bps)",
        )
    if side == "BUY":
        if fee_schedule(market) is None:
            # sizing with a fee of 0 would break caps documented as "fees included", and the fee of the
            # fill could not be booked either; a SELL only earns less, so it is copied
            raise _Skip(
                "FEE_UNKNOWN",
                f"the fee schedule of market {market.condition_id} is unknown (no fee "
                "rate from Gamma or /clob-markets)",
            )
        fee = fee_per_share(market, worst)
        shares = _buy_size(c, book, follow, follower, market, worst, fee, quote, now_us, view, inputs)
        reserved = buy_cost_e6(shares, worst, fee)
    else:
        shares = _sell_size(c, book, follow, worst, quote, view, inputs)
        reserved = 0
    return {
        "action": "COPY",
        "size_e6": shares,
        "worst_price": worst,
        "order_type": follow.order_type,
        "expires_at_us": now_us + follow.order_ttl_s * 1_000_000,
        "reserved_e6": reserved,
        "condition_id": market.condition_id,
    }


def _configs(c: dict[str, Any], view: DecideView) -> tuple[FollowConfig, FollowerConfig]:
    config = view.config
    follow = config.follows.get(c["follow_id"])
    if follow is None:
        why = config.invalid.get(c["follow_id"])
        raise _Skip("FOLLOW_INVALID" if why else "FOLLOW_UNKNOWN", why or f"no config for follow {c['follow_id']}")
    if not follow.enabled:
        raise _Skip("FOLLOW_DISABLED", f"follow {follow.follow_id} is disabled")
    if follow.follower != c["follower"] or follow.leader != c["leader"]:
        raise _Skip("FOLLOW_CHANGED", f"follow {follow.follow_id} is now {follow.follower} <- {follow.leader}")
    follower = config.followers.get(c["follower"])
    if follower is None:
        why = config.invalid.get("follower:" + c["follower"])
        raise _Skip(
            "FOLLOWER_INVALID" if why else "FOLLOWER_UNKNOWN", why or f"no account for follower {c['follower']}"
        )
    if not follower.enabled:
        raise _Skip("FOLLOWER_DISABLED", f"follower {follower.follower} is disabled")
    return follow, follower


def _market_tags(market: MarketInfo) -> set[str]:
    tags = {market.condition_id.lower()} | {f"tag:{t.lower()}" for t in market.tags}
    if market.category:
        tags.add(f"category:{market.category.lower()}")
    return tags


def _guards(
    c: dict[str, Any], follow: FollowConfig, market: MarketInfo | None, now_us: int, view: DecideView
) -> tuple[MarketInfo, Decimal]:
    """SKIP when a switch, the fill's age, the market or the follow's filters forbid the copy; else (the market,
    its tick size)."""
    control = view.control
    if control.killed:
        raise _Skip("KILL_SWITCH", control.reason("GLOBAL"))
    if control.global_paused:
        raise _Skip("PAUSED_GLOBAL", control.reason("GLOBAL"))
    if control.follower_paused(c["follower"]):
        raise _Skip("PAUSED_FOLLOWER", control.reason("FOLLOWER", c["follower"]))
    condition = market.condition_id if market else c.get("condition_id")
    for target in filter(None, (condition, c["token_id"])):
        if control.market_paused(target):
            raise _Skip("PAUSED_MARKET", control.reason("MARKET", target))
    occurred_us = c["envelope"]["occurred_at_us"]
    if in_future(occurred_us, now_us):  # else its negative age passes the age check and its price looks fresh
        raise _Skip("FILL_IN_FUTURE", future_detail(occurred_us, now_us))
    age_s = (now_us - occurred_us) / 1_000_000
    if age_s > follow.max_fill_age_s:
        raise _Skip("FILL_TOO_OLD", f"leader fill is {age_s:.1f}s old, the follow allows {follow.max_fill_age_s:g}s")
    if market is None or market.tick_size is None:
        raise _Skip("MARKET_UNKNOWN", f"no market rules (tick size) for token {c['token_id']}")
    if market.closed or market.accepting_orders is False:
        raise _Skip("MARKET_CLOSED", f"market {market.condition_id} is not accepting orders")
    tags = _market_tags(market)
    denied = tags & set(follow.markets_deny)
    if denied:
        raise _Skip("MARKET_DENIED", f"market matches deny entry {sorted(denied)[0]}")
    if follow.markets_allow and not tags & set(follow.markets_allow):
        raise _Skip("MARKET_NOT_ALLOWED", f"market {market.condition_id} matches no allow entry")
    price = Decimal(c["leader_price"])
    if not follow.price_min <= price <= follow.price_max:
        raise _Skip("PRICE_OUT_OF_BAND", f"leader price {price} is outside [{follow.price_min}, {follow.price_max}]")
    return market, market.tick_size


def _reference_price(
    c: dict[str, Any], side: str, leader_price: Decimal, now_us: int, view: DecideView
) -> tuple[Decimal, str, Quote | None]:
    ttl = min(view.quote_ttl_us, MAX_QUOTE_TTL_US)
    quote = view.quote(c["token_id"])
    if quote is not None and now_us - quote.as_of_us <= ttl:
        best = quote.best_ask if side == "BUY" else quote.best_bid
        if best is not None:
            return best, "book", quote
        raise _Skip("NO_LIQUIDITY", f"the book has no {'asks' if side == 'BUY' else 'bids'}")
    if now_us - c["envelope"]["occurred_at_us"] <= ttl:
        return leader_price, "leader", None
    raise _Skip("NO_PRICE", "no fresh order book and the leader's price is older than the quote TTL")


def _depth_within(levels: tuple[tuple[Decimal, int], ...], worst: Decimal, side: str) -> int:
    return sum(size for price, size in levels if (price <= worst if side == "BUY" else price >= worst))


def _buy_size(
    c: dict[str, Any],
    book: FollowerBook,
    follow: FollowConfig,
    follower: FollowerConfig,
    market: MarketInfo,
    worst: Decimal,
    fee: Decimal,
    quote: Quote | None,
    now_us: int,
    view: DecideView,
    inputs: dict[str, Any],
) -> int:
    """Shares to BUY at `worst` plus a `fee` per share: the follow's target, shrunk to the tightest cap, fitted in
    whole share steps to what is left under it, held to the venue's $1 minimum and, for a FOK order, to the depth
    the book offers at `worst`."""
    collateral, available = _available_e6(c, book, now_us, view)
    inputs.update(balance_e6=collateral, available_e6=available)
    target = _target_e6(c, follow.sizing, available, inputs)
    caps = _caps(c, book, follow, follower, market.condition_id, available, now_us)
    inputs["caps_remaining_e6"] = {code: left for code, left in caps}
    _check_open_positions(c, book, follower)
    binding_code, budget = _binding_cap(caps, target)
    step = buy_share_step_e6(worst)
    shares = _fit_to_budget(budget, worst, fee, step)
    inputs.update(fee_per_share=_dec(fee), share_step_e6=step)
    if notional_e6(shares, worst) < MIN_NOTIONAL_E6:
        shares = _apply_minimum(shares, worst, fee, step, follow.sizing, caps, binding_code, budget, inputs)
    elif binding_code is not None:
        inputs["shrunk_by"] = binding_code
    _check_depth(follow, quote, worst, shares)
    return shares


def _available_e6(c: dict[str, Any], book: FollowerBook, now_us: int, view: DecideView) -> tuple[int, int]:
    """(the follower's collateral as the venue last reported it, what of it this BUY may use): the report less
    the open reservations and the fills booked after it (the venue had not counted them yet)."""
    balance = view.balance(c["follower"])
    if balance is None or balance.collateral_e6 is None:
        raise _Skip("BALANCE_UNAVAILABLE", "the follower's collateral balance could not be read")
    book.forget_fills_before(now_us - FILLS_REMEMBERED_US)
    unseen = sum(cost for at, cost in book.fills_after if at > balance.as_of_us)
    return balance.collateral_e6, balance.collateral_e6 - book.reserved_cost - unseen


def _target_e6(c: dict[str, Any], sizing: Sizing, available: int, inputs: dict[str, Any]) -> int:
    """What the follow's sizing asks this copy to spend (fixed, a ratio of the leader's spend, or a share of the
    available balance, times the multiplier), within its per-trade maximum; SKIP BELOW_MIN_TRADE under its
    per-trade minimum. `inputs` records the target before the per-trade bounds."""
    if sizing.mode == "fixed":
        target = int(sizing.amount * E6)
    elif sizing.mode == "ratio":
        # Sizing's validator requires the mode's own field, so ratio (below: balance_pct) is set
        target = int(Decimal(c["leader_collateral_e6"]) * cast(Decimal, sizing.ratio))
    else:
        target = int(Decimal(max(available, 0)) * cast(Decimal, sizing.balance_pct) / 100)
    target = int(target * sizing.multiplier)
    inputs.update(target_e6=target)
    if sizing.max_per_trade is not None:
        target = min(target, int(sizing.max_per_trade * E6))
    if sizing.min_per_trade is not None and target < int(sizing.min_per_trade * E6):
        raise _Skip(
            "BELOW_MIN_TRADE", f"copy of {target / E6:g} is below the follow's min_per_trade {sizing.min_per_trade}"
        )
    return target


def _caps(
    c: dict[str, Any],
    book: FollowerBook,
    follow: FollowConfig,
    follower: FollowerConfig,
    condition: str,
    available: int,
    now_us: int,
) -> list[tuple[str, int]]:
    """(SKIP code, e6 left under it) of every cap this BUY must stay within: the available balance first, then the
    follow's and the follower's daily spend and market exposure caps that are set."""
    day = now_us // DAY_US
    caps = [("INSUFFICIENT_BALANCE", available)]
    if follow.daily_cap is not None:
        caps.append(("DAILY_CAP", int(follow.daily_cap * E6) - book.spent(day, follow.follow_id)))
    if follower.daily_cap is not None:
        caps.append(("FOLLOWER_DAILY_CAP", int(follower.daily_cap * E6) - book.spent(day, "*")))
    if follow.market_exposure_cap is not None:
        caps.append(
            ("MARKET_EXPOSURE_CAP", int(follow.market_exposure_cap * E6) - book.exposure(condition, c["leader"]))
        )
    if follower.market_exposure_cap is not None:
        caps.append(("FOLLOWER_MARKET_EXPOSURE_CAP", int(follower.market_exposure_cap * E6) - book.exposure(condition)))
    return caps


def _check_open_positions(c: dict[str, Any], book: FollowerBook, follower: FollowerConfig) -> None:
    """SKIP MAX_OPEN_POSITIONS when this BUY would open one position more than the follower allows."""
    if follower.max_open_positions is not None:
        open_tokens = book.open_tokens()
        if c["token_id"] not in open_tokens and len(open_tokens) >= follower.max_open_positions:
            raise _Skip(
                "MAX_OPEN_POSITIONS",
                f"{len(open_tokens)} open positions, the follower allows {follower.max_open_positions}",
            )


def _binding_cap(caps: list[tuple[str, int]], target: int) -> tuple[str | None, int]:
    """(the cap that binds, the budget): the tightest cap when it leaves less than the target (the first one on a
    tie), else (None, the target)."""
    binding_code, budget = min(caps, key=lambda cap: cap[1])
    if budget >= target:
        return None, target
    return binding_code, budget


def _fit_to_budget(budget: int, worst: Decimal, fee: Decimal, step: int) -> int:
    """The most shares, in whole steps, whose cost at `worst` (fee included) stays within `budget`."""
    shares = floor_to(int(Decimal(max(budget, 0)) / (worst + fee)), step)
    # Decimal divides to 28 digits: a quotient a hair under a whole step can round up to it and cost a micro-unit more
    while shares > 0 and buy_cost_e6(shares, worst, fee) > budget:
        shares -= step
    return shares


def _apply_minimum(
    shares: int,
    worst: Decimal,
    fee: Decimal,
    step: int,
    sizing: Sizing,
    caps: list[tuple[str, int]],
    binding_code: str | None,
    budget: int,
    inputs: dict[str, Any],
) -> int:
    """`shares` fell under the venue's $1 minimum: the minimum when the follow rounds up and its cost fits every
    cap and the per-trade maximum; else SKIP, naming the cap that left too little (BELOW_MIN_ORDER if none did)."""
    minimum = ceil_to(int((MIN_NOTIONAL_E6 / worst).to_integral_value(ROUND_CEILING)), step)
    cost = buy_cost_e6(minimum, worst, fee)
    within = all(cost <= left for _, left in caps) and (
        sizing.max_per_trade is None or cost <= int(sizing.max_per_trade * E6)
    )
    if sizing.min_size_policy == "round_up" and within:
        inputs["rounded_up_to_minimum"] = True
        return minimum
    if binding_code is not None:
        raise _Skip(
            binding_code,
            f"only {max(budget, 0) / E6:g} left under {binding_code.lower()}; the venue "
            f"minimum is $1 ({minimum / E6:g} shares at {worst})",
        )
    raise _Skip("BELOW_MIN_ORDER", f"{shares / E6:g} shares at {worst} is under the venue's $1 minimum")


def _check_depth(follow: FollowConfig, quote: Quote | None, worst: Decimal, shares: int) -> None:
    """A FOK BUY fills whole or not at all: SKIP INSUFFICIENT_DEPTH when the book's asks at or under `worst` hold
    fewer shares than it needs."""
    if follow.order_type == "FOK" and quote is not None and quote.asks:
        depth = _depth_within(quote.asks, worst, "BUY")
        if depth < shares:
            raise _Skip("INSUFFICIENT_DEPTH", f"{depth / E6:g} shares offered at <= {worst}, FOK needs {shares / E6:g}")


def _sell_size(
    c: dict[str, Any],
    book: FollowerBook,
    follow: FollowConfig,
    worst: Decimal,
    quote: Quote | None,
    view: DecideView,
    inputs: dict[str, Any],
) -> int:
    if not follow.copy_sells:
        raise _Skip("SELLS_DISABLED", "the follow does not copy sells")
    key = (c["token_id"], c["leader"])
    position = book.positions.get(key)
    held = (position.shares_e6 if position else 0) - book.reserved_to_sell(*key)
    leader_before = book.leader_holdings.get((c["follow_id"], c["token_id"]), 0)
    sold = c["leader_shares_e6"]
    fraction = min(Decimal(1), Decimal(sold) / leader_before) if leader_before > 0 else Decimal(1)
    inputs.update(held_e6=max(held, 0), leader_held_e6=leader_before, fraction=_dec(fraction))
    if held <= 0:
        raise _Skip("NOTHING_TO_SELL", "the follower holds nothing of this token bought copying this leader")
    shares = floor_to(int(Decimal(held) * fraction), SHARE_STEP_E6)
    balance = view.balance(c["follower"])
    on_venue = balance.token(c["token_id"]) if balance is not None else None
    if on_venue is None:
        raise _Skip("BALANCE_UNAVAILABLE", f"the venue's balance of token {c['token_id']} could not be read")
    sellable = floor_to(on_venue - book.reserved_to_sell(c["token_id"]), SHARE_STEP_E6)
    inputs["venue_shares_e6"] = on_venue
    if shares > sellable:
        inputs["capped_by_venue_balance"] = True
        shares = max(sellable, 0)
    if shares <= 0 or notional_e6(shares, worst) < MIN_NOTIONAL_E6:
        raise _Skip(
            "SELL_DUST",
            f"{shares / E6:g} shares at {worst} is under the venue's $1 minimum; "
            f"{held / E6:g} shares stay on the books",
        )
    if follow.order_type == "FOK" and quote is not None and quote.bids:
        depth = _depth_within(quote.bids, worst, "SELL")
        if depth < shares:
            raise _Skip("INSUFFICIENT_DEPTH", f"{depth / E6:g} shares bid at >= {worst}, FOK needs {shares / E6:g}")
    return shares


# ------------------------------------------------------------------------------------------------
# folds: decisions and results into the state (live and on rebuild)
# ------------------------------------------------------------------------------------------------
def apply_decision(decision: dict[str, Any], state: DecideState) -> DecideState:
    """Fold one CopyDecision (ours, live or read back from copy.decisions) into the state."""
    book = state.book(decision["follower"])
    cand = decision["candidate_id"]
    if cand in book.decided:
        return state
    book.decided.add(cand)
    leader = decision.get("leader") or ""
    key = (decision["follow_id"], decision["token_id"])
    held = book.leader_holdings.get(key, 0)
    leader_shares = max(decision.get("leader_shares_e6") or 0, 0)  # a forged negative never counts
    book.leader_holdings[key] = held + leader_shares if decision["side"] == "BUY" else max(0, held - leader_shares)
    if decision["action"] != "COPY" or decision["intent_id"] in book.booked:
        return state
    day = decision["envelope"]["produced_at_us"] // DAY_US
    reservation = Reservation(
        decision["follow_id"],
        leader,
        decision["token_id"],
        decision.get("condition_id") or "",
        decision["side"],
        decision["size_e6"],
        decision.get("reserved_e6") or 0,
        day,
    )
    book.reserve(decision["intent_id"], reservation)
    if reservation.side == "BUY":
        book.add_spend(day, reservation.follow_id, reservation.cost_e6)
    return state


def apply_result(result: dict[str, Any], state: DecideState, *, now_us: int | None = None) -> DecideState:
    """Fold one ExecutionResult: the first terminal one releases the reservation and books the fill; a later
    terminal one of the same intent (a correction) books the difference between the two."""
    book = state.book(result["follower"])
    intent = result["intent_id"]
    status = result["status"]
    at_us = result["envelope"]["produced_at_us"] if now_us is None else now_us
    if status not in TERMINAL:
        return state
    booked = book.booked.get(intent)
    if booked is None:
        reservation = book.release(intent)
        if reservation is None:
            return state  # a result for a decision this state never saw (another follower's partition history)
        booked = book.booked[intent] = Booked(reservation)
        state.outcomes.append((at_us, status in FAILURES))
        if reservation.side == "BUY":  # the reservation's spend gives way to what was really spent
            book.add_spend(reservation.day, reservation.follow_id, -reservation.cost_e6)
    seq = result.get("seq") or 0
    if seq and seq < booked.seq:
        return state  # an older result of this intent, redelivered after a newer one
    booked.seq = max(booked.seq, seq)
    filled = result["filled_shares_e6"]
    booked.final = result.get("final", True)
    if booked.reservation.side == "BUY":
        _book_buy(book, booked, filled, result["filled_collateral_e6"] + result["fee_e6"] if filled else 0, at_us)
    else:
        _book_sell(book, booked, filled)
    return state


def _book_buy(book: FollowerBook, booked: Booked, shares: int, spent: int, at_us: int) -> None:
    r = booked.reservation
    more_shares, more_spent = shares - booked.shares_e6, spent - booked.amount_e6
    if not (more_shares or more_spent):
        return
    position = book.positions.setdefault((r.token_id, r.leader), Position(condition_id=r.condition_id))
    position.shares_e6 += more_shares
    position.cost_e6 += more_spent
    book._add_exposure(r.condition_id, r.leader, more_spent)
    book.add_spend(r.day, r.follow_id, more_spent)
    if more_spent > 0:  # a balance read older than this fill does not show it yet
        book.fills_after.append((at_us, more_spent))
        book.forget_fills_before(at_us - FILLS_REMEMBERED_US)  # a rebuild folds years of fills
    booked.shares_e6, booked.amount_e6 = shares, spent


def _book_sell(book: FollowerBook, booked: Booked, sold: int) -> None:
    r = booked.reservation
    position = book.positions.setdefault((r.token_id, r.leader), Position(condition_id=r.condition_id))
    if sold > booked.shares_e6:  # more sold than booked so far: release the cost basis of what left the position
        extra = min(sold - booked.shares_e6, position.shares_e6)
        released = position.cost_e6 * extra // position.shares_e6 if position.shares_e6 else 0
        position.shares_e6 -= extra
        position.cost_e6 -= released
        book._add_exposure(r.condition_id, r.leader, -released)
        booked.shares_e6 += extra
        booked.amount_e6 += released
    elif sold < booked.shares_e6:  # fewer sold than booked (a trade FAILED): the shares and their basis come back
        back = booked.shares_e6 - sold
        restored = booked.amount_e6 * back // booked.shares_e6
        position.shares_e6 += back
        position.cost_e6 += restored
        book._add_exposure(r.condition_id, r.leader, restored)
        booked.shares_e6 -= back
        booked.amount_e6 -= restored


def failure_rate(state: DecideState, now_us: int, window_us: int) -> tuple[int, int]:
    """(failed, total) terminal outcomes in the last `window_us` (for the circuit breaker)."""
    while state.outcomes and state.outcomes[0][0] < now_us - window_us:
        state.outcomes.popleft()
    return sum(1 for _, failed in state.outcomes if failed), len(state.outcomes)
