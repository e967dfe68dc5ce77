"""`horus why` over the real projections: decisions made by the real plan + decide (the simulator), put on
the topics, folded by the projection runner, then explained from Postgres."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from horus.cli.decide import read_configs, simulate
from horus.cli.main import app
from horus.codec import default_codec
from horus.domain.fill_json import leader_fill_from_json
from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
from horus.settings import Settings
from projections.runner import run_projections

pytestmark = pytest.mark.integration

LEADER = "0x" + "a" * 40
F1 = "0x" + "1" * 40
F2 = "0x" + "2" * 40
TX = "0x" + "7" * 64
T0 = 1_800_000_000


def fill_json(event_id: str, token: str, price: str, shares: str) -> dict:
    return {
        "event_id": event_id,
        "leader": LEADER,
        "exchange": "0x" + "e" * 40,
        "tx_hash": TX,
        "block_number": 5,
        "log_index": int(token) % 7,
        "block_timestamp": T0,
        "token_id": token,
        "condition_id": "0x" + "c" * 64,
        "side": "BUY",
        "shares": shares,
        "collateral": format(Decimal(shares) * Decimal(price), "f"),
        "price": price,
        "role": "taker",
    }


CONFIGS = {
    "followers": [{"follower": F1}, {"follower": F2}],
    "follows": [
        {
            "follow_id": "f1",
            "follower": F1,
            "leader": LEADER,
            "sizing": {"mode": "fixed", "amount": "10"},
            "daily_cap": "100",
        },
        {
            "follow_id": "f2",
            "follower": F2,
            "leader": LEADER,
            "sizing": {"mode": "fixed", "amount": "10"},
            "price_max": "0.3",
        },
    ],
}


@pytest.fixture
def projected(s):
    """Two leader fills in one tx, decided for two follows, one COPY filled: all on the topics, folded."""
    fills = [
        leader_fill_from_json(fill_json("lf-why-1", "1001", "0.50", "20")),
        leader_fill_from_json(fill_json("lf-why-2", "1002", "0.40", "30")),
    ]
    followers, follows = read_configs(CONFIGS)
    sim = simulate(fills, followers, follows)
    codec, producer = default_codec(), make_producer(s)
    for topic, kind, records, key in (
        ("leader.fills", "LeaderFill", fills, "leader"),
        ("copy.decisions", "CopyDecision", sim.decisions, "follower"),
        ("execution.results", "ExecutionResult", sim.results, "follower"),
    ):
        for record in records:
            produce_reliably(producer, s.topic(topic), codec.encode(kind, record), key=record[key])
    flush_or_raise(producer)
    run_projections(s, until_caught_up=True)
    return sim


def why(s: Settings, *args: str):
    return CliRunner().invoke(app, ["why", *args], env=s.as_env())


def flat(text: str) -> str:
    return " ".join(text.split())


def test_why_explains_every_decision_of_every_fill_in_a_tx(s, projected):
    result = why(s, TX)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert out.count("leader fill lf-why-") == 2
    # the SKIP says why
    assert "SKIP follow f2 -> follower " + F2 + ": PRICE_OUT_OF_BAND: leader price 0.50 is outside [0, 0.3]" in out
    # the COPY shows its size, worst price and the inputs it used, then its result
    assert f"COPY follow f1 -> follower {F1}: BUY 19 shares at worst 0.51 FAK, reserves 9.69 pUSD" in out
    assert "reference price 0.50 (from the leader's fill price); leader paid 0.50; worst 0.51" in out
    assert "balance 1000 pUSD, available 1000" in out
    assert "caps left: available balance 1000, daily_cap 100" in out
    assert "result FILLED: filled 19 shares for 9.69 pUSD at 0.51" in out


def test_why_by_fill_id_filtered_by_follower_as_json(s, projected):
    result = why(s, "lf-why-1", "--follower", F1, "--json")
    assert result.exit_code == 0, result.output
    (fill,) = json.loads(result.stdout)
    assert fill["event_id"] == "lf-why-1" and fill["tx_hash"] == TX
    (decision,) = fill["decisions"]
    copy = next(d for d in projected.decisions if d["leader_fill_id"] == "lf-why-1" and d["follow_id"] == "f1")
    assert decision["candidate_id"] == copy["candidate_id"] and decision["action"] == "COPY"
    assert decision["inputs"] == json.loads(copy["inputs"]) and decision["inputs"]["reference"] == "leader"
    assert decision["reserved_e6"] == copy["reserved_e6"] and decision["leader"] == LEADER
    (execution,) = decision["results"]
    assert execution["status"] == "FILLED" and execution["filled_shares_e6"] == copy["size_e6"]


def test_why_says_clearly_when_nothing_is_known(s, projected):
    result = why(s, "0x" + "9" * 64)
    assert result.exit_code == 1
    assert "no leader fill 0x" in flat(result.output) and "horus projections run" in flat(result.output)
