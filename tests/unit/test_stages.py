"""The pure stage functions and ids: no broker, no Faust."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from horus.codec import default_codec
from horus.domain import ids
from horus.domain.config import ConfigState, parse_follow_config, parse_follower
from horus.domain.control import ControlState
from horus.domain.decide import DecideState, StaticView, decide
from horus.domain.events import envelope
from horus.domain.execute import execute
from horus.domain.follow_graph import ConfigError, Follow, FollowGraph, apply_config_change, apply_tombstone
from horus.domain.market import NO_FEES, Balance, MarketInfo
from horus.domain.plan import plan
from horus.domain.settle import settle

NOW = 1_800_000_000_000_000
LEADER_A = "0x" + "a" * 40
LEADER_B = "0x" + "b" * 40
FOLLOWERS = ["0x" + c * 40 for c in "123"]


def follow_change(follow_id, follower, leader, enabled=True, op="UPSERT", body=None):
    if body is None and op == "UPSERT":
        body = json.dumps(
            {
                "follow_id": follow_id,
                "follower": follower,
                "leader": leader,
                "enabled": enabled,
                "sizing": {"mode": "fixed", "amount": "5"},  # the graph reads follows by the one follow parser
            }
        )
    return {
        "envelope": envelope(ids.make_id("cfg", follow_id, op), "api", NOW),
        "entity": "FOLLOW",
        "entity_id": follow_id,
        "op": op,
        "body": body,
    }


def leader_fill(leader=LEADER_A, tx="0x" + "f" * 64, side="BUY", token="123456789"):
    fill_id = ids.leader_fill_id(tx, leader, token, side)
    return {
        "envelope": envelope(fill_id, "chain", NOW - 5_000_000, produced_at_us=NOW - 4_000_000),
        "leader": leader,
        "exchange": "0x" + "e" * 40,
        "tx_hash": tx,
        "block_number": 7,
        "log_index": 3,
        "token_id": token,
        "condition_id": None,
        "side": side,
        "shares_e6": 10_000_000,
        "collateral_e6": 5_300_000,
        "price": "0.53",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": ["0x01"],
    }


def graph_of(*changes):
    graph = FollowGraph()
    for change in changes:
        _, graph = apply_config_change(change, graph)
    return graph


def three_followers_two_leaders():
    # follower 1 follows A and B, follower 2 follows A, follower 3 follows B
    return graph_of(
        follow_change("f1a", FOLLOWERS[0], LEADER_A),
        follow_change("f1b", FOLLOWERS[0], LEADER_B),
        follow_change("f2a", FOLLOWERS[1], LEADER_A),
        follow_change("f3b", FOLLOWERS[2], LEADER_B),
    )


# ------------------------------------------------------------------------- ids


def test_ids_are_deterministic_hex_and_distinct_per_kind():
    a = ids.candidate_id("fill", "follow")
    assert a == ids.candidate_id("fill", "follow")
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != ids.candidate_id("follow", "fill")
    assert ids.intent_id("x", "y") != ids.candidate_id("y", "x")  # kind is part of the hash
    assert ids.make_id("k", "ab", "c") != ids.make_id("k", "a", "bc")  # parts are length-prefixed
    assert ids.result_id("i", 0) != ids.result_id("i", 1)


def test_leader_fill_id_is_case_insensitive_on_addresses():
    assert ids.leader_fill_id("0xAB", "0xCD", "1", "buy") == ids.leader_fill_id("0xab", "0xcd", "1", "BUY")
    assert ids.leader_fill_id("0xab", "0xcd", "1", "BUY") != ids.leader_fill_id("0xab", "0xcd", "1", "SELL")


# ------------------------------------------------------------------------- follow graph


def test_graph_folds_upserts_deletes_and_moves():
    graph = three_followers_two_leaders()
    assert [f.follow_id for f in graph.follows_of(LEADER_A)] == ["f1a", "f2a"]
    assert [f.follow_id for f in graph.follows_of(LEADER_B.upper().replace("0X", "0x"))] == ["f1b", "f3b"]
    apply_config_change(follow_change("f2a", None, None, op="DELETE"), graph)
    assert [f.follow_id for f in graph.follows_of(LEADER_A)] == ["f1a"]
    # an upsert that changes the leader moves the follow
    apply_config_change(follow_change("f1a", FOLLOWERS[0], LEADER_B), graph)
    assert graph.follows_of(LEADER_A) == ()
    assert [f.follow_id for f in graph.follows_of(LEADER_B)] == ["f1a", "f1b", "f3b"]
    assert len(graph) == 3
    apply_tombstone(b"f1a", graph)
    assert "f1a" not in graph and len(graph) == 2


def test_graph_ignores_follower_entities_and_normalises_addresses():
    graph = graph_of(follow_change("f", FOLLOWERS[0].upper().replace("0X", "0x"), LEADER_A.upper().replace("0X", "0x")))
    follower_change = {**follow_change("x", FOLLOWERS[1], LEADER_A), "entity": "FOLLOWER"}
    apply_config_change(follower_change, graph)
    assert graph.follows_of(LEADER_A) == (Follow("f", FOLLOWERS[0], LEADER_A, True),)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"follower": "0x12", "leader": LEADER_A}),
        json.dumps({"follower": FOLLOWERS[0]}),
        json.dumps({"follow_id": "other", "follower": FOLLOWERS[0], "leader": LEADER_A}),
        json.dumps({"follower": FOLLOWERS[0], "leader": LEADER_A, "enabled": "yes"}),
    ],
)
def test_bad_follow_bodies_are_rejected_and_leave_the_graph_alone(body):
    graph = three_followers_two_leaders()
    with pytest.raises(ConfigError):
        apply_config_change(follow_change("f1a", None, None, body=body), graph)
    assert len(graph) == 4 and graph.get("f1a").leader == LEADER_A


def test_upsert_without_body_is_rejected():
    with pytest.raises(ConfigError):
        apply_config_change({**follow_change("f", FOLLOWERS[0], LEADER_A), "body": None}, FollowGraph())


# ------------------------------------------------------------------------- plan


def test_plan_fans_out_to_each_enabled_follow_of_the_leader():
    graph = three_followers_two_leaders()
    fill = leader_fill(LEADER_A)
    candidates, state = plan(fill, graph, now_us=NOW)
    assert state is graph
    assert [(c["follow_id"], c["follower"]) for c in candidates] == [("f1a", FOLLOWERS[0]), ("f2a", FOLLOWERS[1])]
    fill_id = fill["envelope"]["event_id"]
    for c in candidates:
        assert c["envelope"]["event_id"] == ids.candidate_id(fill_id, c["follow_id"])
        assert c["envelope"]["causation_id"] == fill_id
        assert c["envelope"]["occurred_at_us"] == fill["envelope"]["occurred_at_us"]
        assert c["envelope"]["produced_at_us"] == NOW and c["envelope"]["source"] == "plan"
        assert (c["leader"], c["token_id"], c["side"]) == (LEADER_A, "123456789", "BUY")
        assert (c["leader_shares_e6"], c["leader_collateral_e6"], c["leader_price"]) == (10_000_000, 5_300_000, "0.53")
        default_codec().encode("CopyCandidate", c)  # schema-valid


def test_plan_compares_leaders_lowercase_and_is_deterministic():
    graph = three_followers_two_leaders()
    upper = leader_fill("0x" + "A" * 40)
    first, _ = plan(upper, graph, now_us=NOW)
    again, _ = plan(upper, graph, now_us=NOW)
    assert len(first) == 2 and first == again


def test_plan_skips_disabled_and_deleted_follows_and_unknown_leaders():
    graph = three_followers_two_leaders()
    apply_config_change(follow_change("f1a", FOLLOWERS[0], LEADER_A, enabled=False), graph)
    apply_config_change(follow_change("f2a", None, None, op="DELETE"), graph)
    assert plan(leader_fill(LEADER_A), graph, now_us=NOW)[0] == []
    assert plan(leader_fill("0x" + "c" * 40), graph, now_us=NOW)[0] == []
    # re-enabling brings it back
    apply_config_change(follow_change("f1a", FOLLOWERS[0], LEADER_A, enabled=True), graph)
    assert [c["follow_id"] for c in plan(leader_fill(LEADER_A), graph, now_us=NOW)[0]] == ["f1a"]


# ------------------------------------------------------------------------- decide / execute / settle


def view_for(graph):
    """Every follow of the graph copies a fixed $5; every follower has $1,000; one 0.01-tick market."""
    config = ConfigState()
    for leader in graph.leaders():
        for f in graph.follows_of(leader):
            config.follows[f.follow_id] = parse_follow_config(
                {"follow_id": f.follow_id, "follower": f.follower, "leader": f.leader, "sizing": {"amount": "5"}}
            )
            config.followers[f.follower] = parse_follower({"follower": f.follower})
    market = MarketInfo(
        token_id="123456789",
        condition_id="0x" + "c" * 64,
        tick_size=Decimal("0.01"),
        min_order_size=Decimal(5),
        fees=NO_FEES,
    )
    return StaticView(
        config,
        ControlState(),
        markets={market.token_id: market},
        balances={f: Balance(1_000_000_000, NOW) for f in config.followers},
    )


def pipeline_for(fill, graph):
    candidates, _ = plan(fill, graph, now_us=NOW)
    view = view_for(graph)
    decisions = [d for c in candidates for d in decide(c, DecideState(), now_us=NOW, view=view)[0]]
    results = [r for d in decisions for r in execute(d, now_us=NOW)[0]]
    settlements = [s for r in results for s in settle(r, now_us=NOW)[0]]
    return candidates, decisions, results, settlements


def test_decide_copies_one_decision_per_candidate():
    candidates, decisions, _, _ = pipeline_for(leader_fill(LEADER_B), three_followers_two_leaders())
    assert len(decisions) == len(candidates) == 2
    for c, d in zip(candidates, decisions):
        cid = c["envelope"]["event_id"]
        assert d["envelope"]["event_id"] == ids.decision_id(cid)
        assert d["envelope"]["causation_id"] == cid and d["envelope"]["source"] == "decide"
        assert d["envelope"]["occurred_at_us"] == c["envelope"]["occurred_at_us"]
        assert d["action"] == "COPY" and d["order_type"] == "FAK" and d["expires_at_us"] == NOW + 60_000_000
        assert d["intent_id"] == ids.intent_id(c["follow_id"], c["leader_fill_id"])
        # $5 at worst 0.54 (0.53 + 2%, down to the tick), in steps whose notional is whole cents
        assert (d["size_e6"], d["worst_price"], d["token_id"], d["side"]) == (9_000_000, "0.54", "123456789", "BUY")
        assert d["reserved_e6"] == 4_860_000
        assert d["reason_code"] is None
        default_codec().encode("CopyDecision", d)


def test_execute_dry_runs_copies_and_ignores_skips():
    _, decisions, results, _ = pipeline_for(leader_fill(LEADER_A), three_followers_two_leaders())
    assert len(results) == 2
    for d, r in zip(decisions, results):
        assert r["status"] == "DRY_RUN" and r["intent_id"] == d["intent_id"]
        assert r["envelope"]["event_id"] == ids.result_id(d["intent_id"], 0)
        assert r["envelope"]["causation_id"] == d["envelope"]["event_id"]
        assert (r["filled_shares_e6"], r["order_hash"], r["follower"]) == (0, None, d["follower"])
        default_codec().encode("ExecutionResult", r)
    skip = {**decisions[0], "action": "SKIP", "intent_id": None, "reason_code": "PAUSED"}
    assert execute(skip, now_us=NOW)[0] == []


def test_settle_is_not_required_for_every_result():
    _, _, results, settlements = pipeline_for(leader_fill(LEADER_A), three_followers_two_leaders())
    assert len(settlements) == len(results) == 2
    for r, s in zip(results, settlements):
        assert s["kind"] == "NOT_REQUIRED" and s["intent_id"] == r["intent_id"] and s["follower"] == r["follower"]
        assert s["envelope"]["event_id"] == ids.settlement_id(r["envelope"]["event_id"], "NOT_REQUIRED")
        assert s["envelope"]["causation_id"] == r["envelope"]["event_id"]
        default_codec().encode("SettlementEvent", s)


def test_whole_pipeline_is_deterministic_apart_from_produced_at():
    fill = leader_fill(LEADER_A)
    first = pipeline_for(fill, three_followers_two_leaders())
    second = pipeline_for(fill, three_followers_two_leaders())
    assert first == second
    all_ids = [e["envelope"]["event_id"] for events in first for e in events]
    assert len(all_ids) == len(set(all_ids)) == 8


def test_dead_letter_record_keeps_the_original_bytes():
    from horus.kafka.dead_letter import dead_letter_record

    record = dead_letter_record(
        topic="t.leader.fills",
        partition=3,
        offset=42,
        key=b"k",
        original=b"\x00garbage",
        error=ValueError("bad"),
        stage="decode",
        now_us=NOW,
    )
    decoded = default_codec().decode(default_codec().encode("DeadLetter", record))[1]
    assert decoded["original"] == b"\x00garbage" and decoded["key"] == b"k"
    assert decoded["error"] == "ValueError: bad" and decoded["source_offset"] == 42
    assert decoded["envelope"]["event_id"] == ids.dead_letter_id("t.leader.fills", 3, 42, "decode")


# ------------------------------------------------------------------------- the runner, without a broker


class FakeProducer:
    def __init__(self):
        self.sent = []

    def produce(self, topic, value=None, key=None, on_delivery=None, headers=None):
        self.sent.append((topic, key, value))

    def poll(self, timeout=0):
        return 0

    def flush(self, timeout=None):
        return 0


def test_runner_produces_keyed_outputs_and_parks_what_it_cannot_process():
    from horus.settings import Settings
    from horus.topics import COPY_CANDIDATES, LEADER_FILLS
    from streams.runtime import Runtime, StageSpec

    settings = Settings(topic_prefix="u.")
    producer = FakeProducer()
    runtime = Runtime(settings, producer=producer)
    graph = three_followers_two_leaders()
    spec = StageSpec(
        name="plan",
        source=LEADER_FILLS,
        input_type="LeaderFill",
        sink=COPY_CANDIDATES,
        output_type="CopyCandidate",
        fn=plan,
        state=graph,
    )
    codec = default_codec()
    good = codec.encode("LeaderFill", leader_fill(LEADER_A))
    wrong = codec.encode("ConfigChange", follow_change("x", FOLLOWERS[0], LEADER_A))
    messages = [
        ("u.leader.fills", 0, 10, b"k", b"garbage"),
        ("u.leader.fills", 0, 11, None, wrong),
        ("u.leader.fills", 0, 12, None, None),
        ("u.leader.fills", 0, 13, LEADER_A.encode(), good),
    ]
    assert runtime.process(spec, messages, now_us=NOW) == 2
    outputs = [(k, codec.decode(v)[1]) for t, k, v in producer.sent if t == "u.copy.candidates"]
    assert [(k, c["follow_id"]) for k, c in outputs] == [(FOLLOWERS[0], "f1a"), (FOLLOWERS[1], "f2a")]
    letters = [codec.decode(v)[1] for t, k, v in producer.sent if t == "u.dead.letters"]
    assert [(d["source_offset"], d["stage"], d["original"]) for d in letters] == [
        (10, "decode", b"garbage"),
        (11, "plan", wrong),
        (12, "decode", b""),
    ]
    assert all(k == "u.leader.fills" for t, k, v in producer.sent if t == "u.dead.letters")


def test_plan_reads_past_retractions_without_parking_them():
    from horus.settings import Settings
    from streams.plan import build
    from streams.runtime import Runtime

    producer = FakeProducer()
    runtime = Runtime(Settings(topic_prefix="u."), producer=producer)
    spec = build(runtime)
    spec.tail = None  # no broker: the graph stays empty
    retraction = {
        "envelope": envelope("r1", "chain", NOW),
        "leader_fill_id": "lf",
        "leader": LEADER_A,
        "tx_hash": "0x" + "f" * 64,
        "block_number": 7,
        "reason": "reorg: log removed",
    }
    value = default_codec().encode("LeaderFillRetracted", retraction)
    assert runtime.process(spec, [("u.leader.fills", 0, 5, LEADER_A.encode(), value)], now_us=NOW) == 0
    assert producer.sent == []  # not a dead letter: a retraction is a fact, not bad input


def test_stage_names_are_validated():
    from streams.app import StageError, parse_stages

    assert parse_stages("settle, plan") == ("plan", "settle")
    assert parse_stages(["decide"]) == ("decide",)
    with pytest.raises(StageError, match="unknown stage foo"):
        parse_stages("plan,foo")
    with pytest.raises(StageError, match="no stages"):
        parse_stages(" , ")


def test_worker_command_rejects_unknown_stages_before_touching_the_broker():
    import typer
    from typer.testing import CliRunner

    from horus.cli.worker import worker

    app = typer.Typer()
    app.command()(worker)
    result = CliRunner().invoke(app, ["--stages", "plan,bogus"])
    assert result.exit_code == 2
    assert "unknown stage bogus" in result.output


@pytest.mark.parametrize(
    "change, error",
    [
        ({"side": "UNRECOGNIZED"}, "side"),
        ({"token_id": "7" * 600_000}, "token_id"),  # every candidate copies it: past the broker's message size
        ({"price": "0." + "5" * 5000}, "price"),
    ],
)
def test_plan_refuses_a_fill_no_candidate_can_be_written_for(change, error):
    from horus.domain.plan import FillInvalid

    with pytest.raises(FillInvalid, match=error):
        plan({**leader_fill(), **change}, three_followers_two_leaders(), now_us=NOW)


def test_plan_passes_hostile_values_on_for_decide_to_skip_with_a_reason():
    hostile = {**leader_fill(), "price": "-3", "shares_e6": -5}
    candidates, _ = plan(hostile, three_followers_two_leaders(), now_us=NOW)
    assert len(candidates) == 2 and all(c["leader_price"] == "-3" for c in candidates)


def test_only_well_formed_token_ids_are_looked_up():
    from horus.domain.decide import token_id_wellformed

    assert token_id_wellformed("71321045679252212594626385532706912750332728571942532289631379312455583992563")
    for forged in ("", "abc", "../../admin", "-1", "1" * 79, "١٢٣", "0x12"):
        assert not token_id_wellformed(forged)
