"""`horus decide simulate`: the live plan + decide over files, with simulated fills, balances and holdings."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from horus.cli.decide import read_configs, read_fills, simulate
from horus.cli.main import app

LEADER = "0x" + "a" * 40
QUIET_LEADER = "0x" + "b" * 40
F1 = "0x" + "1" * 40
F2 = "0x" + "2" * 40
TOKEN = "1001"
COND = "0x" + "c" * 64
T0 = 1_800_000_000  # seconds


def fill(n: int, side: str, shares: str, price: str, leader: str = LEADER, at: int = 0) -> dict:
    collateral = Decimal(shares) * Decimal(price)
    return {
        "event_id": f"lf-{n}",
        "leader": leader,
        "exchange": "0x" + "e" * 40,
        "tx_hash": f"0x{n:064x}",
        "block_number": 100 + n,
        "log_index": 0,
        "block_timestamp": T0 + at,
        "token_id": TOKEN,
        "condition_id": COND,
        "side": side,
        "shares": shares,
        "collateral": format(collateral, "f"),
        "price": price,
        "fee": "0",
        "role": "taker",
    }


FILLS = [
    fill(1, "BUY", "20", "0.50"),  # f1 copies 10 pUSD; f2's 0.5 pUSD is under the $1 minimum
    fill(2, "BUY", "50", "0.40", leader=QUIET_LEADER, at=5),  # nobody follows this leader
    fill(3, "SELL", "10", "0.60", at=10),  # the leader sells half: f1 sells half of what it bought
]
CONFIGS = {
    "followers": [{"follower": F1}, {"follower": F2}],
    "follows": [
        {"follow_id": "f1", "follower": F1, "leader": LEADER, "sizing": {"mode": "fixed", "amount": "10"}},
        {"follow_id": "f2", "follower": F2, "leader": LEADER, "sizing": {"mode": "fixed", "amount": "0.5"}},
    ],
}


@pytest.fixture
def files(tmp_path):
    fills_path = tmp_path / "fills.jsonl"
    fills_path.write_text("\n".join(json.dumps(f) for f in FILLS) + "\n")
    follows_path = tmp_path / "follows.json"
    follows_path.write_text(json.dumps(CONFIGS))
    return fills_path, follows_path


def run(*args: str):
    result = CliRunner().invoke(app, ["decide", "simulate", *args])
    return result


def test_copies_skips_and_a_sell_after_a_buy(files):
    fills_path, follows_path = files
    result = run("--fills", str(fills_path), "--follows", str(follows_path))
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    by = {(d["leader_fill_id"], d["follow_id"]): d for d in decisions}
    assert len(decisions) == 4  # two follows x two fills of LEADER; QUIET_LEADER fans out to nobody
    buy = by[("lf-1", "f1")]
    assert (buy["action"], buy["side"], buy["worst_price"], buy["size_e6"]) == ("COPY", "BUY", "0.51", 19_000_000)
    assert by[("lf-1", "f2")]["reason_code"] == "BELOW_MIN_ORDER"
    sell = by[("lf-3", "f1")]
    # the leader sold 10 of 20: half of the 19 shares f1 holds, at 0.60 - 2% rounded up to the tick
    assert (sell["action"], sell["side"], sell["size_e6"], sell["worst_price"]) == ("COPY", "SELL", 9_500_000, "0.59")
    assert json.loads(sell["inputs"])["venue_shares_e6"] == 19_000_000  # the simulated holding
    assert by[("lf-3", "f2")]["reason_code"] == "NOTHING_TO_SELL"
    # the reference is the leader's price, decided 1 s after each fill
    assert json.loads(buy["inputs"])["reference"] == "leader"
    assert buy["envelope"]["produced_at_us"] == (T0 + 1) * 1_000_000


def test_summary_spend_positions_and_balance(files):
    fills_path, follows_path = files
    result = run("--fills", str(fills_path), "--follows", str(follows_path), "--summary-only", "--balance", "100")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["decisions"] == 4 and summary["copied"] == 2
    assert summary["skipped"] == {"BELOW_MIN_ORDER": 1, "NOTHING_TO_SELL": 1}
    f1 = summary["followers"][F1]
    # bought 19 at 0.51 = 9.69, sold 9.5 at 0.59 = 5.605 -> 100 - 9.69 + 5.605
    assert (f1["spent"], f1["proceeds"], f1["balance"]) == ("9.69", "5.605", "95.915")
    assert f1["positions"] == {TOKEN: "9.5"}
    assert summary["followers"][F2]["positions"] == {} and summary["followers"][F2]["balance"] == "100"


def test_same_input_same_output(files):
    fills_path, follows_path = files
    first = run("--fills", str(fills_path), "--follows", str(follows_path))
    second = run("--fills", str(fills_path), "--follows", str(follows_path))
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout and first.stdout.count("\n") == 4


def test_partial_fills_shrink_what_can_be_sold():
    followers, follows = read_configs(CONFIGS)
    sim = simulate(read_fills(json.dumps(f) for f in FILLS), followers, follows, fill_ratio=Decimal("0.5"))
    buy_result = sim.results[0]
    assert (buy_result["status"], buy_result["filled_shares_e6"]) == ("PARTIAL", 9_500_000)
    sell = [d for d in sim.decisions if d["side"] == "SELL" and d["follow_id"] == "f1"][0]
    assert sell["action"] == "COPY" and sell["size_e6"] == 4_750_000  # half of the 9.5 held


def test_a_fixed_now_makes_old_fills_too_old_and_balance_caps_the_buy(files):
    fills_path, follows_path = files
    late = run("--fills", str(fills_path), "--follows", str(follows_path), "--now", "2028-01-01T00:00:00Z")
    assert late.exit_code == 0, late.output
    assert {json.loads(line)["reason_code"] for line in late.stdout.splitlines()} == {"FILL_TOO_OLD"}
    poor = run("--fills", str(fills_path), "--follows", str(follows_path), "--balance", "3", "--summary-only")
    f1 = json.loads(poor.stdout)["followers"][F1]
    assert f1["copied"] == 2 and Decimal(f1["spent"]) <= 3  # shrunk to the balance, never beyond it


def test_market_rules_and_fees_come_from_the_markets_file(files, tmp_path):
    fills_path, follows_path = files
    markets = tmp_path / "markets.json"
    markets.write_text(
        json.dumps(
            [
                {
                    "token_id": TOKEN,
                    "condition_id": COND,
                    "tick_size": "0.001",
                    "min_order_size": "5",
                    "fee_rate": "0.1",
                    "fee_exponent": 1,
                }
            ]
        )
    )
    result = run("--fills", str(fills_path), "--follows", str(follows_path), "--markets", str(markets))
    assert result.exit_code == 0, result.output
    buy = json.loads(result.stdout.splitlines()[0])
    inputs = json.loads(buy["inputs"])
    assert (
        Decimal(buy["worst_price"]) == Decimal("0.51")
        and inputs["tick"] == "0.001"
        and Decimal(inputs["fee_per_share"]) > 0
    )
    assert buy["size_e6"] < 19_000_000 and buy["reserved_e6"] <= 10_000_000  # the fee counts towards the 10


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda c: c["follows"][0]["sizing"].update(mode="ratio"), "sizing.ratio"),
        (lambda c: c["follows"][0].update(slippage_bps=9999), "slippage_bps"),
        (lambda c: c["followers"][0].update(follower="0x12"), "follower"),
    ],
)
def test_invalid_configs_exit_2_naming_the_field(files, mutate, needle):
    fills_path, follows_path = files
    bad = json.loads(json.dumps(CONFIGS))
    mutate(bad)
    follows_path.write_text(json.dumps(bad))
    result = run("--fills", str(fills_path), "--follows", str(follows_path))
    assert result.exit_code == 2 and needle in " ".join(result.output.split())


def test_a_bad_fill_line_is_named(files):
    fills_path, follows_path = files
    fills_path.write_text(json.dumps(FILLS[0]) + "\n" + json.dumps({**FILLS[1], "side": "HOLD"}) + "\n")
    result = run("--fills", str(fills_path), "--follows", str(follows_path))
    assert result.exit_code == 2 and "line 2" in result.output and "side" in result.output
