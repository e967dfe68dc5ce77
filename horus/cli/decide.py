"""`horus decide simulate`: the live plan + decide functions over a file of leader fills, offline.

No broker, no book, no venue: each COPY is assumed to fill at its worst price times `--fill-ratio`
(folded back with the same `apply_result` the live stage uses), every follower starts with
`--balance` pUSD, BUY fills spend it and SELL fills pay into it, and the simulated token holdings
are what the pre-sell check reads. Without an order book the leader's price is the reference, so
by default each fill is decided 1 s after it happened ("fresh"); `--now` decides them all at one
instant instead (old fills are then skipped as the live stage would).

Same files in, same decisions out: nothing reads a clock or a random source.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import typer

from horus.cli.common import err_console, fail
from horus.domain.amounts import from_e6, to_e6

app = typer.Typer(help="Copy decisions: run decide offline over recorded fills.", no_args_is_help=True)

DEFAULT_TICK = Decimal("0.01")
FRESH_AFTER_US = 1_000_000  # default: decide each fill 1 s after it happened


class SimulationInputError(ValueError):
    """An input file that cannot be used; the message names the file, line or field."""


@app.callback()
def _group() -> None:
    """Copy decisions: run decide offline over recorded fills."""


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
def read_fills(lines: Iterable[str], name: str = "fills") -> list[dict]:
    """LeaderFill records from JSON lines (the form `horus fills decode` prints)."""
    from horus.domain.fill_json import FillJsonError, leader_fill_from_json

    fills = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            fills.append(leader_fill_from_json(json.loads(line), source="simulate"))
        except (ValueError, TypeError, KeyError) as exc:  # FillJsonError and json errors are ValueErrors
            what = exc if isinstance(exc, FillJsonError) else f"{type(exc).__name__}: {exc}"
            raise SimulationInputError(f"{name} line {number}: {what}") from None
    return fills


def read_configs(data: Any, name: str = "follows") -> tuple[list, list]:
    """(followers, follows) validated from {"followers": [...], "follows": [...]}."""
    from horus.domain.config import ConfigInvalid, parse_follow_config, parse_follower

    if (
        not isinstance(data, dict)
        or not isinstance(data.get("follows", []), list)
        or not isinstance(data.get("followers", []), list)
    ):
        raise SimulationInputError(f'{name}: want {{"followers": [...], "follows": [...]}}')
    out: tuple[list, list] = ([], [])
    for kind, parse, target in (("followers", parse_follower, out[0]), ("follows", parse_follow_config, out[1])):
        for i, item in enumerate(data.get(kind, [])):
            try:
                target.append(parse(item))
            except ConfigInvalid as exc:
                raise SimulationInputError(f"{name}: {kind}[{i}]: {exc}") from None
    return out


def read_markets(data: Any, name: str = "markets") -> dict:
    """token id -> MarketInfo from [{token_id, condition_id, tick_size, min_order_size, fee_rate, fee_exponent}]."""
    from horus.domain.market import NO_FEES, FeeParams, MarketInfo

    if not isinstance(data, list):
        raise SimulationInputError(f"{name}: want a JSON list of markets")
    markets = {}
    for i, item in enumerate(data):
        try:
            fees = NO_FEES  # a simulation's market without a fee_rate charges none (live: unknown, FEE_UNKNOWN)
            if item.get("fee_rate") not in (None, "", 0, "0"):
                fees = FeeParams(
                    enabled=True,
                    rate=Decimal(str(item["fee_rate"])),
                    exponent=Decimal(str(item.get("fee_exponent", 1))),
                )
            token = str(item["token_id"])
            markets[token] = MarketInfo(
                token_id=token,
                condition_id=str(item.get("condition_id") or token).lower(),
                tick_size=Decimal(str(item.get("tick_size", DEFAULT_TICK))),
                min_order_size=Decimal(str(item["min_order_size"])) if item.get("min_order_size") is not None else None,
                fees=fees,
                category=item.get("category"),
                tags=tuple(item.get("tags", ())),
                closed=item.get("closed"),
                accepting_orders=item.get("accepting_orders"),
            )
        except (KeyError, TypeError, ArithmeticError, AttributeError) as exc:
            raise SimulationInputError(f"{name}[{i}]: {type(exc).__name__}: {exc}") from None
    return markets


# ---------------------------------------------------------------------------------------------
# the simulation
# ---------------------------------------------------------------------------------------------
@dataclass
class Account:
    """One follower's simulated money and holdings."""

    balance_e6: int
    tokens: dict[str, int] = field(default_factory=dict)
    spent_e6: int = 0  # BUY fills, fees included
    proceeds_e6: int = 0  # SELL fills, net of fees
    copied: int = 0
    skipped: Counter = field(default_factory=Counter)


@dataclass
class Simulation:
    decisions: list[dict]
    results: list[dict]
    accounts: dict[str, Account]

    def summary(self) -> dict:
        skipped: Counter[str] = Counter()
        for account in self.accounts.values():
            skipped.update(account.skipped)
        return {
            "decisions": len(self.decisions),
            "copied": sum(a.copied for a in self.accounts.values()),
            "skipped": dict(sorted(skipped.items())),
            "followers": {
                follower: {
                    "copied": a.copied,
                    "skipped": dict(sorted(a.skipped.items())),
                    "spent": from_e6(a.spent_e6),
                    "proceeds": from_e6(a.proceeds_e6),
                    "balance": from_e6(a.balance_e6),
                    "positions": {t: from_e6(n) for t, n in sorted(a.tokens.items()) if n},
                }
                for follower, a in sorted(self.accounts.items())
            },
        }


def _fill_result(decision: dict, market, ratio: Decimal, now_us: int) -> dict:
    """The ExecutionResult of a COPY assumed to fill `ratio` of its size at its worst price."""
    from horus.domain.decide import SHARE_STEP_E6, fee_per_share, floor_to, notional_e6
    from horus.domain.events import envelope
    from horus.domain.ids import result_id

    price = Decimal(decision["worst_price"])
    filled = floor_to(int(decision["size_e6"] * ratio), SHARE_STEP_E6)
    fee = int((Decimal(filled) * fee_per_share(market, price)).to_integral_value(ROUND_CEILING)) if filled else 0
    status = "FILLED" if filled == decision["size_e6"] else ("PARTIAL" if filled else "NOT_FILLED")
    return {
        "envelope": envelope(
            result_id(decision["intent_id"], 1),
            "simulate",
            decision["envelope"]["occurred_at_us"],
            causation_id=decision["envelope"]["event_id"],
            produced_at_us=now_us,
        ),
        "intent_id": decision["intent_id"],
        "follow_id": decision["follow_id"],
        "follower": decision["follower"],
        "leader_fill_id": decision["leader_fill_id"],
        "status": status,
        "order_hash": None,
        "filled_shares_e6": filled,
        "filled_collateral_e6": notional_e6(filled, price),
        "avg_price": decision["worst_price"] if filled else None,
        "fee_e6": fee,
        "error": None,
        "attempts": 1,
    }


def simulate(
    fills: list[dict],
    followers: list,
    follows: list,
    *,
    markets: dict | None = None,
    fill_ratio: Decimal = Decimal(1),
    balance_e6: int = 1000 * 1_000_000,
    now_us: int | None = None,
    delay_us: int = FRESH_AFTER_US,
) -> Simulation:
    """Plan and decide every fill in order. `now_us` fixes the decision time; else each fill is decided
    `delay_us` after it happened."""
    from horus.domain.config import ConfigState, config_change
    from horus.domain.control import ControlState
    from horus.domain.decide import DecideState, StaticView, apply_result, decide
    from horus.domain.follow_graph import FollowGraph, apply_config_change
    from horus.domain.market import NO_FEES, Balance, MarketInfo
    from horus.domain.plan import plan

    config = ConfigState()
    config.followers = {f.follower: f for f in followers}
    config.follows = {f.follow_id: f for f in follows}
    graph = FollowGraph()
    for follow in follows:  # the graph plan reads, built by its own fold from the same changes
        apply_config_change(config_change("FOLLOW", follow.follow_id, follow, "simulate"), graph)
    markets = dict(markets or {})
    view = StaticView(config, ControlState(), markets=markets)
    state = DecideState()
    accounts: dict[str, Account] = {}
    decisions: list[dict] = []
    results: list[dict] = []
    for fill in fills:
        token = fill["token_id"]
        if token not in markets:  # no rules given: the default tick, the fill's market (or the token)
            markets[token] = MarketInfo(
                token_id=token,
                condition_id=(fill.get("condition_id") or token).lower(),
                tick_size=DEFAULT_TICK,
                fees=NO_FEES,
            )
        at = now_us if now_us is not None else fill["envelope"]["occurred_at_us"] + delay_us
        candidates, _ = plan(fill, graph, now_us=at)
        for candidate in candidates:
            follower = candidate["follower"]
            account = accounts.setdefault(follower, Account(balance_e6))
            view.balances[follower] = Balance(account.balance_e6, at, tuple(sorted(account.tokens.items())))
            out, state = decide(candidate, state, now_us=at, view=view)
            for decision in out:
                decisions.append(decision)
                if decision["action"] != "COPY":
                    account.skipped[decision["reason_code"]] += 1
                    continue
                account.copied += 1
                result = _fill_result(decision, markets[token], fill_ratio, at)
                results.append(result)
                apply_result(result, state, now_us=at)
                filled, paid, fee = result["filled_shares_e6"], result["filled_collateral_e6"], result["fee_e6"]
                if decision["side"] == "BUY":
                    account.balance_e6 -= paid + fee
                    account.spent_e6 += paid + fee
                    account.tokens[token] = account.tokens.get(token, 0) + filled
                else:
                    account.balance_e6 += paid - fee
                    account.proceeds_e6 += paid - fee
                    account.tokens[token] = account.tokens.get(token, 0) - filled
    return Simulation(decisions, results, accounts)


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------
def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise SimulationInputError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SimulationInputError(f"{what} file {path} is not JSON: {exc}") from None


def _parse_now(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SimulationInputError(f"--now: {text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _print_summary(summary: dict, out) -> None:
    from rich.table import Table

    out.print(
        f"{summary['decisions']} decisions: {summary['copied']} copied, {sum(summary['skipped'].values())} skipped",
        highlight=False,
    )
    if summary["skipped"]:
        out.print("skipped: " + ", ".join(f"{code} {n}" for code, n in summary["skipped"].items()), highlight=False)
    table = Table("follower", "copied", "skipped", "spent", "proceeds", "balance", "positions")
    for follower, f in summary["followers"].items():
        table.add_row(
            follower,
            str(f["copied"]),
            str(sum(f["skipped"].values())),
            f["spent"],
            f["proceeds"],
            f["balance"],
            ", ".join(f"{t}: {n}" for t, n in f["positions"].items()) or "-",
        )
    out.print(table)


@app.command("simulate")
def simulate_command(
    fills: Path = typer.Option(..., "--fills", metavar="FILE", help="LeaderFill JSON lines ('-': stdin)"),
    follows: Path = typer.Option(..., "--follows", metavar="FILE", help='{"followers": [...], "follows": [...]}'),
    markets: Path | None = typer.Option(
        None,
        "--markets",
        metavar="FILE",
        help="[{token_id, condition_id, tick_size, min_order_size, fee_rate, "
        "fee_exponent}] (default: tick 0.01, no fee)",
    ),
    fill_ratio: str = typer.Option("1", "--fill-ratio", help="share of each COPY that fills (0..1)"),
    balance: str = typer.Option("1000", "--balance", help="starting pUSD per follower"),
    now: str | None = typer.Option(None, "--now", help="decide every fill at this ISO time"),
    at_fill_time: bool = typer.Option(False, "--at-fill-time", help="decide each fill at its own time (not +1 s)"),
    summary_only: bool = typer.Option(False, "--summary-only", help="print only the summary (as JSON)"),
) -> None:
    """Run plan + decide over recorded fills: decisions as JSON lines on stdout, a summary on stderr."""
    try:
        if now is not None and at_fill_time:
            raise SimulationInputError("--now and --at-fill-time exclude each other")
        try:
            ratio = Decimal(fill_ratio)
            if not ratio.is_finite() or not 0 <= ratio <= 1:
                raise ArithmeticError
        except ArithmeticError:
            raise SimulationInputError(f"--fill-ratio: {fill_ratio!r} is not a number in [0, 1]") from None
        try:
            start_e6 = to_e6(balance)
            if start_e6 < 0:
                raise ValueError
        except (ValueError, ArithmeticError):
            raise SimulationInputError(f"--balance: {balance!r} is not a non-negative amount") from None
        if str(fills) == "-":
            fill_lines = sys.stdin.read().splitlines()
        else:
            try:
                fill_lines = fills.read_text().splitlines()
            except OSError as exc:
                raise SimulationInputError(f"cannot read fills file {fills}: {exc.strerror or exc}") from None
        records = read_fills(fill_lines, str(fills))
        followers, follow_configs = read_configs(_load_json(follows, "follows"), str(follows))
        market_rules = read_markets(_load_json(markets, "markets"), str(markets)) if markets else {}
        fixed_now = _parse_now(now) if now is not None else None
    except SimulationInputError as exc:
        fail(str(exc), 2)
    result = simulate(
        records,
        followers,
        follow_configs,
        markets=market_rules,
        fill_ratio=ratio,
        balance_e6=start_e6,
        now_us=fixed_now,
        delay_us=0 if at_fill_time else FRESH_AFTER_US,
    )
    summary = result.summary()
    if summary_only:
        typer.echo(json.dumps(summary, sort_keys=True))
        return
    for decision in result.decisions:
        typer.echo(json.dumps(decision, sort_keys=True))
    _print_summary(summary, err_console)
