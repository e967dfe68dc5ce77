"""The executor's pure rules: a refusal after an attempt that may have landed is never believed (D5), the input
contract that parks unexecutable COPYs (D10), the send gate (D4), and the crash-point setting."""

from __future__ import annotations

import time

import pytest

from horus.domain.config import config_change, parse_follow_config, parse_follower
from horus.domain.control import ControlState, apply_control, control_command
from horus.domain.copy_check import BadCopyDecision, check_copy_decision
from horus.domain.execute import OrderShape, classify_reply
from horus.domain.ids import intent_id
from horus.domain.send_gate import ExecutorConfig, apply_executor_config, blocked
from horus.execution.crash import CrashPoints
from horus.venue.polymarket.replies import reply_facts

SHAPE = OrderShape("BUY", "FAK", 5_500_000, 10_000_000)
F = "0x" + "f1" * 20
LEADER = "0x" + "1e" * 20


# ----------------------------------------------------------------------------------------------- D5
@pytest.mark.parametrize(
    "status, body",
    [
        (400, {"error": "not enough balance / allowance"}),
        (400, {"error": "the market is closed"}),
        (404, {"error": "market not found for token id 1"}),
        (200, {"success": False, "errorMsg": "invalid signature"}),
    ],
)
def test_a_refusal_of_bytes_that_may_have_landed_is_unknown_until_looked_up(status, body):
    first = classify_reply(reply_facts(status, body, body.get("error") or body.get("errorMsg"), False), SHAPE)
    assert first.status == "REJECTED"  # a first attempt: the venue never took it
    again = classify_reply(
        reply_facts(status, body, body.get("error") or body.get("errorMsg"), False), SHAPE, may_have_landed=True
    )
    assert again.status == "UNKNOWN" and again.confirm and not again.retry


def test_retry_signals_stay_retries_after_a_possible_landing():
    assert classify_reply(
        reply_facts(425, {"error": "restarting"}, "restarting", False), SHAPE, may_have_landed=True
    ).retry
    assert classify_reply(reply_facts(429, None, "slow down", False), SHAPE, may_have_landed=True).retry


# ----------------------------------------------------------------------------------------------- D10
def copy(**changes) -> dict:
    now = time.time_ns() // 1000
    decision = {
        "envelope": {"event_id": "d", "occurred_at_us": now, "produced_at_us": now},
        "follow_id": "fw-1",
        "follower": F,
        "leader_fill_id": "ab" * 32,
        "action": "COPY",
        "token_id": "123",
        "side": "BUY",
        "size_e6": 10_000_000,
        "worst_price": "0.55",
        "order_type": "FAK",
        "expires_at_us": now + 60_000_000,
    }
    decision["intent_id"] = intent_id(decision["follow_id"], decision["leader_fill_id"])
    decision.update(changes)
    return decision


def test_a_good_copy_passes():
    check_copy_decision(copy(), time.time_ns() // 1000)
    check_copy_decision(copy(order_type=None, expires_at_us=None), time.time_ns() // 1000)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"worst_price": "abc"}, "worst_price"),
        ({"worst_price": "1.5"}, "worst_price"),
        ({"worst_price": "0"}, "worst_price"),
        ({"worst_price": "NaN"}, "worst_price"),
        ({"worst_price": None}, "worst_price"),
        ({"size_e6": 0}, "size_e6"),
        ({"size_e6": -1}, "size_e6"),
        ({"size_e6": 10**18}, "size_e6"),
        ({"token_id": "12\x003"}, "NUL"),
        ({"token_id": "0xabc"}, "token_id"),
        ({"token_id": "9" * 79}, "token_id"),
        ({"follower": "0xF1"}, "follower"),
        ({"side": "UNRECOGNIZED"}, "side"),
        ({"order_type": "UNRECOGNIZED"}, "order_type"),
        ({"expires_at_us": 2**62}, "expires_at_us"),
        ({"envelope": {"event_id": "d", "occurred_at_us": -5, "produced_at_us": 1}}, "occurred_at_us"),
        ({"intent_id": "someone-elses"}, "intent_id"),
        ({"follow_id": "bad id with spaces"}, "follow_id"),
    ],
)
def test_copies_that_cannot_be_executed_name_their_field(changes, field):
    with pytest.raises(BadCopyDecision, match=field):
        check_copy_decision(copy(**changes), time.time_ns() // 1000)


# ----------------------------------------------------------------------------------------------- D4
def test_the_gate_names_the_first_switch_or_config_that_forbids_a_post():
    control, configs = ControlState(), ExecutorConfig()
    ask = dict(follower=F, follow_id="fw-1", condition_id="0x" + "c0" * 32, token_id="123")
    assert blocked(control, configs, **ask) is None  # unknown follow: decide made the decision with it
    follow = parse_follow_config(
        {
            "follow_id": "fw-1",
            "follower": F,
            "leader": LEADER,
            "sizing": {"mode": "fixed", "amount": "5"},
            "enabled": False,
        }
    )
    apply_executor_config(config_change("FOLLOW", "fw-1", follow, "t"), configs)
    assert blocked(control, configs, **ask).code == "FOLLOW_DISABLED"
    apply_executor_config(config_change("FOLLOW", "fw-1", None, "t"), configs)
    assert blocked(control, configs, **ask).code == "FOLLOW_DELETED"
    apply_executor_config(config_change("FOLLOW", "fw-1", follow.model_copy(update={"enabled": True}), "t"), configs)
    assert blocked(control, configs, **ask) is None
    apply_executor_config(config_change("FOLLOWER", F, parse_follower({"follower": F, "enabled": False}), "t"), configs)
    assert blocked(control, configs, **ask).code == "FOLLOWER_DISABLED"
    assert blocked(control, ExecutorConfig(), **ask, follower_enabled=False).code == "FOLLOWER_DISABLED"
    apply_control(control_command("MARKET", "PAUSE", "123"), control)
    assert blocked(control, configs, **ask).code == "PAUSED_MARKET"
    apply_control(control_command("FOLLOWER", "PAUSE", F), control)
    assert blocked(control, configs, **ask).code == "PAUSED_FOLLOWER"
    apply_control(control_command("GLOBAL", "PAUSE"), control)
    assert blocked(control, configs, **ask).code == "PAUSED_GLOBAL"
    apply_control(control_command("GLOBAL", "KILL", reason="runaway"), control)
    stop = blocked(control, configs, **ask)
    assert stop.code == "KILLED" and stop.error.startswith("KILLED: ") and "runaway" in stop.error


# ----------------------------------------------------------------------------------------------- crash points
def test_crash_point_settings_are_checked():
    assert CrashPoints(None).step is None
    point = CrashPoints("after_reply:3")
    assert (point.step, point.remaining) == ("after_reply", 3)
    point.reached("after_post_sent")
    point.reached("after_reply")
    assert point.remaining == 2
    for bad in ("after_lunch:1", "after_reply:0", "after_reply:x"):
        with pytest.raises(ValueError, match="HORUS_CRASH_AT"):
            CrashPoints(bad)
