"""Config and control commands without a broker: validation (exit 2, field named, secrets never echoed),
option merging, and the pure folds that project config.changes / control.commands into tables."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from horus.cli.config import _follow_options, _merge_follow, default_follow_id
from horus.cli.main import app
from horus.codec import default_codec
from horus.db.models import Base
from horus.domain.config import (
    ConfigInvalid,
    ConfigState,
    apply_config,
    config_change,
    parse_follow_config,
    parse_follower,
)
from horus.domain.control import control_command
from horus.domain.events import envelope
from projections.folds import CONFIG_CHANGES_PROJECTION, CONTROL_COMMANDS_PROJECTION, SourceMessage

FOLLOWER = "0x" + "1" * 40
LEADER = "0x" + "a" * 40
SECRET = "0x" + "5e" * 32


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--sizing", "fixed"], "sizing.amount: required when sizing.mode is 'fixed'"),
        (["--amount", "5", "--slippage-bps", "9000"], "slippage_bps"),
        (["--amount", "5", "--price-min", "0.9", "--price-max", "0.1"], "price_min: must not exceed price_max"),
        (["--amount", "5", "--allow", "nba"], "markets_allow"),
        (["--amount", "5", "--order-type", "GTC"], "order_type"),
        (["--amount", "5", "--min-size", "maybe"], "min_size_policy"),
    ],
)
def test_follow_add_refuses_bad_options_with_exit_2_naming_the_field(args, needle):
    result = invoke("follow", "add", "--leader", LEADER, "--follower", FOLLOWER, *args)
    assert result.exit_code == 2, result.output
    assert needle in flat(result.output)


def test_follow_cannot_follow_itself_and_addresses_are_checked():
    same = invoke("follow", "add", "--leader", FOLLOWER, "--follower", FOLLOWER, "--amount", "5")
    assert same.exit_code == 2 and "leader: a follower cannot follow itself" in flat(same.output)
    bad = invoke("follow", "add", "--leader", "0x12", "--follower", FOLLOWER, "--amount", "5")
    assert bad.exit_code == 2 and "leader: must be a 20-byte 0x hex address" in flat(bad.output)


def test_follower_add_refuses_bad_signers():
    result = invoke("follower", "add", FOLLOWER, "--signature-type", "2")
    assert result.exit_code == 2 and "signer: signature_type 2 needs the signing EOA address" in flat(result.output)


def test_a_secret_in_a_config_file_is_refused_and_never_echoed(tmp_path):
    source = tmp_path / "follower.json"
    source.write_text(json.dumps({"follower": FOLLOWER, "private_key": SECRET}))
    result = invoke("follower", "add", FOLLOWER, "--from-file", str(source))
    assert result.exit_code == 2 and "private_key" in result.output
    assert SECRET not in result.output and SECRET[2:] not in result.output


def test_default_follow_id_is_deterministic_and_valid():
    follow_id = default_follow_id(FOLLOWER.upper().replace("0X", "0x"), LEADER)
    assert follow_id == default_follow_id(FOLLOWER, LEADER) == "0x11111111-0xaaaaaaaa"
    parse_follow_config({"follow_id": follow_id, "follower": FOLLOWER, "leader": LEADER, "sizing": {"amount": "1"}})


def test_options_merge_into_the_nested_sizing_and_keep_the_rest():
    current = {
        "follow_id": "f",
        "follower": FOLLOWER,
        "leader": LEADER,
        "slippage_bps": 150,
        "sizing": {"mode": "fixed", "amount": "10", "max_per_trade": "20"},
    }
    options = _follow_options(sizing="ratio", ratio="0.5", allow=["tag:nba"], deny=[], max_fill_age=None, order_ttl=30)
    merged = _merge_follow(current, options)
    assert merged["sizing"] == {"mode": "ratio", "amount": "10", "max_per_trade": "20", "ratio": "0.5"}
    assert merged["markets_allow"] == ["tag:nba"] and "markets_deny" not in merged
    assert merged["order_ttl_s"] == 30 and merged["slippage_bps"] == 150
    assert parse_follow_config(merged).sizing.ratio == Decimal("0.5")


def test_control_commands_need_exactly_one_scope():
    assert invoke("pause").exit_code == 2
    both = invoke("pause", "--global", "--market", "0xabc")
    assert both.exit_code == 2 and "exactly one of" in flat(both.output)
    bad = invoke("pause", "--follower", "nobody")
    assert bad.exit_code == 2 and "--follower" in flat(bad.output)


# ---------------------------------------------------------------------------------------------
# the projection folds (pure)
# ---------------------------------------------------------------------------------------------
def message(record_type: str, record: dict, offset: int = 0) -> SourceMessage:
    raw = default_codec().encode(record_type, record)
    name, decoded = default_codec().decode(raw)
    topic = "t." + (CONFIG_CHANGES_PROJECTION if record_type == "ConfigChange" else CONTROL_COMMANDS_PROJECTION).topic
    return SourceMessage(topic, 1, offset, raw, b"k", 1_000, name, decoded)


def columns(table: str) -> set[str]:
    return {c.name for c in Base.metadata.tables[table].columns}


def test_config_changes_fold_into_the_table_of_their_entity():
    follower = parse_follower({"follower": FOLLOWER, "credentials_ref": "ref-1", "daily_cap": "50"})
    follow = parse_follow_config(
        {"follow_id": "f1", "follower": FOLLOWER, "leader": LEADER, "sizing": {"amount": "10"}, "enabled": False}
    )
    folded = CONFIG_CHANGES_PROJECTION.fold(
        [
            message("ConfigChange", config_change("FOLLOWER", FOLLOWER, follower, "cli", 5_000_000)),
            message("ConfigChange", config_change("FOLLOW", "f1", follow, "cli", 6_000_000), offset=1),
            message("ConfigChange", config_change("FOLLOW", "f1", None, "cli", 7_000_000), offset=2),
        ]
    )
    assert folded.parked == 0
    (follower_row,) = folded.rows["follower_configs"]
    assert set(follower_row) == columns("follower_configs")
    assert (follower_row["follower"], follower_row["credentials_ref"], follower_row["deleted"]) == (
        FOLLOWER,
        "ref-1",
        False,
    )
    assert (
        follower_row["body"].obj == follower.model_dump(mode="json") and follower_row["body"].obj["daily_cap"] == "50"
    )
    upsert, delete = folded.rows["follow_configs"]
    assert set(upsert) == set(delete) == columns("follow_configs")
    assert (upsert["leader"], upsert["enabled"], upsert["kafka_offset"]) == (LEADER, False, 1)
    assert (delete["follow_id"], delete["deleted"], delete["body"], delete["kafka_offset"]) == ("f1", True, None, 2)


def test_an_invalid_config_body_replaces_the_row_naming_the_rule():
    """As in decide (apply_config): the change is in force as "no config", and the row says which rule broke."""
    body = json.dumps({"follow_id": "f1", "follower": FOLLOWER, "leader": LEADER, "sizing": {"mode": "ratio"}})
    bad = config_change("FOLLOW", "f1", body, "someone")
    mismatch = config_change(
        "FOLLOW",
        "f2",
        parse_follow_config({"follow_id": "f1", "follower": FOLLOWER, "leader": LEADER, "sizing": {"amount": "1"}}),
        "someone",
    )
    folded = CONFIG_CHANGES_PROJECTION.fold([message("ConfigChange", bad), message("ConfigChange", mismatch, 1)])
    assert folded.parked == 0 and "dead_letters" not in folded.rows
    first, second = folded.rows["follow_configs"]
    assert (first["follow_id"], first["deleted"], first["enabled"], first["body"]) == ("f1", False, None, None)
    assert "sizing.ratio: required" in first["invalid"]
    assert second["follow_id"] == "f2" and "differs from entity_id" in second["invalid"]
    for change in (bad, mismatch):  # decide refuses the same changes, for the same reason
        with pytest.raises(ConfigInvalid):
            apply_config(change, ConfigState())


def test_control_commands_fold_into_switches():
    pause = control_command("MARKET", "PAUSE", "0xABC", reason="news", issued_by="ops", occurred_at_us=9)
    resume = control_command("MARKET", "RESUME", "0xabc", occurred_at_us=10)
    kill = control_command("GLOBAL", "KILL", reason="incident")
    rows = CONTROL_COMMANDS_PROJECTION.fold(
        [message("ControlCommand", c, i) for i, c in enumerate((pause, resume, kill))]
    ).rows["control_switches"]
    assert [(r["key"], r["command"], r["active"]) for r in rows] == [
        ("MARKET:0xabc", "PAUSE", True),
        ("MARKET:0xabc", "RESUME", False),
        ("GLOBAL", "KILL", True),
    ]
    assert rows[0]["reason"] == "news" and rows[0]["issued_by"] == "ops"
    assert set(rows[0]) == columns("control_switches")


# commands that break the rules, as anyone with broker access can write them (control_command refuses them)
RULE_BREAKERS = [
    ({"scope": "FOLLOWER", "command": "KILL", "target": FOLLOWER}, "KILL is the global kill switch"),
    ({"scope": "MARKET", "command": "KILL", "target": "0xabc"}, "KILL is the global kill switch"),
    ({"scope": "FOLLOWER", "command": "PAUSE", "target": ""}, "FOLLOWER needs a target"),
    ({"scope": "MARKET", "command": "PAUSE", "target": "   "}, "MARKET needs a target"),
    ({"scope": "MARKET", "command": "PAUSE", "target": None}, "MARKET needs a target"),
    ({"scope": "GLOBAL", "command": "PAUSE", "target": "0xabc"}, "GLOBAL takes no target"),
    ({"scope": "GLOBAL", "command": "PAUSE", "target": ""}, "GLOBAL takes no target"),
    ({"scope": "UNRECOGNIZED", "command": "PAUSE", "target": None}, "scope must be one of"),
    ({"scope": "GLOBAL", "command": "UNRECOGNIZED", "target": None}, "command must be one of"),
]


def rule_breaker(fields: dict) -> dict:
    return {"envelope": envelope("cmd", "attacker", 0), "reason": "hostile", "issued_by": None, **fields}


@pytest.mark.parametrize("fields, rule", RULE_BREAKERS)
def test_control_commands_that_break_the_rules_are_refused_by_the_fold_and_change_nothing(fields, rule):
    from horus.domain.control import ControlError, ControlState, apply_control

    state = ControlState()
    apply_control(control_command("MARKET", "PAUSE", "0xdef", reason="kept"), state)
    before = dict(state.active)
    with pytest.raises(ControlError, match=rule):
        apply_control(rule_breaker(fields), state)
    assert state.active == before and not state.killed and not state.global_paused
    with pytest.raises(ControlError, match=rule):  # the same rule where an operator issues a command
        control_command(fields["scope"], fields["command"], fields["target"])
    # the projection parks it too: no switch row for a command no stage honours
    if "UNRECOGNIZED" in fields.values():  # what a newer writer's symbol reads as: no writer can encode it
        raw, name, decoded = b"a newer writer's bytes", "ControlCommand", rule_breaker(fields)
    else:
        raw = default_codec().encode("ControlCommand", rule_breaker(fields))
        name, decoded = default_codec().decode(raw)
    table, row, parked = CONTROL_COMMANDS_PROJECTION.fold_one(
        SourceMessage("t.control.commands", 0, 7, raw, b"k", 1_000, name, decoded)
    )
    assert parked and table == "dead_letters" and rule in row["error"] and row["original"] == raw
