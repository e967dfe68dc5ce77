"""`horus why TX_HASH|LEADER_FILL_ID`: what every follower decided about one leader fill, and why.

Reads the projections (leader_fills, leader_fill_retractions, copy_decisions, execution_results) through
`projections.queries.why`: a chain reorg's retraction of the fill, then each decision with its action,
reason, size, worst price and the inputs decide used, then the execution results of a COPY.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import typer

from horus.cli.common import console, fail, friendly_errors, settings
from horus.domain.amounts import from_e6

CAP_NAMES = {"INSUFFICIENT_BALANCE": "available balance"}  # the other caps read well as their codes


def _units(value: Any) -> str:
    return "-" if value is None else from_e6(int(value))


def _price(value: Any) -> str:
    return "-" if value is None else format(Decimal(value).normalize(), "f")


def describe_inputs(decision: dict) -> list[str]:
    """The decision's inputs as short human lines (prices and where they came from, money, caps)."""
    inputs = decision.get("inputs") or {}
    lines = []
    if "reference_price" in inputs:
        # keyed by any value: a decision without a known `reference` shows what it has (or None)
        sources: dict[object, str] = {"book": "order book", "leader": "leader's fill price"}
        source = sources.get(inputs.get("reference"), inputs.get("reference"))
        lines.append(
            f"reference price {inputs['reference_price']} (from the {source}); leader paid "
            f"{inputs.get('leader_price')}; worst {inputs.get('worst_price')} = reference -+ "
            f"{inputs.get('slippage_bps')} bps, tick {inputs.get('tick')}"
        )
    if "best_bid" in inputs or "best_ask" in inputs:
        lines.append(f"book: best bid {inputs.get('best_bid') or '-'}, best ask {inputs.get('best_ask') or '-'}")
    if "balance_e6" in inputs:
        lines.append(
            f"balance {_units(inputs['balance_e6'])} pUSD, available {_units(inputs.get('available_e6'))} "
            f"(after open reservations), target {_units(inputs.get('target_e6'))}"
        )
    caps = inputs.get("caps_remaining_e6")
    if caps:
        named = sorted((CAP_NAMES.get(code, code.lower()), left) for code, left in caps.items())
        lines.append("caps left: " + ", ".join(f"{name} {_units(left)}" for name, left in named))
    if "fee_per_share" in inputs:
        lines.append(f"fee {inputs['fee_per_share']} pUSD per share")
    if inputs.get("shrunk_by"):
        lines.append(f"shrunk to fit {inputs['shrunk_by'].lower()}")
    if inputs.get("rounded_up_to_minimum"):
        lines.append("rounded up to the venue's $1 minimum")
    if "held_e6" in inputs:
        lines.append(
            f"held {_units(inputs['held_e6'])} shares from copying this leader; leader held "
            f"{_units(inputs.get('leader_held_e6'))} and sold fraction {inputs.get('fraction')}"
            + (f"; venue balance {_units(inputs['venue_shares_e6'])}" if "venue_shares_e6" in inputs else "")
        )
    if inputs.get("capped_by_venue_balance"):
        lines.append("capped by the venue's token balance")
    return lines


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _print(fills: list[dict]) -> None:
    for fill in fills:
        if fill.get("unknown"):
            console.print(f"leader fill {fill['event_id']} (the fill itself is not projected yet)", markup=False)
        else:
            console.print(
                f"leader fill {fill['event_id']}: {fill['leader']} {fill['side']} "
                f"{_units(fill['shares_e6'])} shares of token {fill['token_id']} at {_price(fill['price'])} "
                f"({_units(fill['collateral_e6'])} pUSD), tx {fill['tx_hash']} block {fill['block_number']}, "
                f"{fill['occurred_at']:%Y-%m-%d %H:%M:%S} UTC",
                highlight=False,
                markup=False,
            )
        for r in fill["retractions"]:
            console.print(
                f"  RETRACTED by a chain reorg (block {r['block_number']}): {r['reason']}",
                highlight=False,
                markup=False,
            )
        if not fill["decisions"]:
            console.print(
                "  no decisions for it (no enabled follow of this leader, a --follower filter, or "
                "decide/projections are behind)",
                highlight=False,
                markup=False,
            )
        for d in fill["decisions"]:
            head = f"  {d['action']} follow {d['follow_id']} -> follower {d['follower']}: "
            if d["action"] == "COPY":
                head += (
                    f"{d['side']} {_units(d['size_e6'])} shares at worst {_price(d['worst_price'])} "
                    f"{d['order_type'] or ''}, reserves {_units(d['reserved_e6'])} pUSD"
                )
            else:
                head += f"{d['reason_code']}: {d['reason_detail'] or ''}"
            console.print(head, highlight=False, markup=False)
            for line in describe_inputs(d):
                console.print(f"      {line}", highlight=False, markup=False)
            for r in d["results"]:
                console.print(
                    f"      result {r['status']}: filled {_units(r['filled_shares_e6'])} shares for "
                    f"{_units(r['filled_collateral_e6'])} pUSD at {_price(r['avg_price'])}, fee "
                    f"{_units(r['fee_e6'])}, attempts {r['attempts']}"
                    + (f", error: {r['error']}" if r["error"] else "")
                    + (f", order {r['order_hash']}" if r["order_hash"] else ""),
                    highlight=False,
                    markup=False,
                )
            if d["action"] == "COPY" and not d["results"]:
                console.print("      no execution result yet", highlight=False, markup=False)


@friendly_errors
def why_command(
    ref: str = typer.Argument(..., metavar="TX_HASH|LEADER_FILL_ID"),
    follower: str | None = typer.Option(None, "--follower", help="only this follower's decisions"),
    as_json: bool = typer.Option(False, "--json", help="print everything as one JSON document"),
) -> None:
    """Why a leader fill was (or was not) copied: every decision with its reason and inputs, and the results."""
    from projections import queries

    try:
        with queries.connect(settings()) as conn:
            fills = queries.why(conn, ref, follower)
    except queries.DatabaseUnreachable as exc:
        fail(f"database unreachable ({exc.kind}); is it up? Try `horus stack status`.")
    except queries.SchemaNotMigrated:
        fail("the projection tables are missing; run `horus db upgrade`")
    if not fills:
        fail(
            f"no leader fill {ref} in the projections (leader_fills, copy_decisions) — is `horus projections run` "
            "running?"
        )
    if as_json:
        typer.echo(json.dumps(_json_ready(fills), sort_keys=True))
    else:
        _print(fills)
