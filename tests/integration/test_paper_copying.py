"""D1: the README's copying steps trade on a fresh paper venue with no extra step.

The paper venue exactly as `horus stack up` runs it (a private stack of that one part: empty, every account
funded with HORUS_PAPER_BALANCE), a follower added with a key-only credentials file, a follow, `horus worker`;
a leader fill for a token the venue has never seen becomes one FILLED paper order for the follower."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from horus.cli.main import app
from horus.credentials import generate_key
from horus.domain import ids
from horus.domain.events import envelope
from horus.ops.paper import venue_orders
from horus.ops.stack import LocalStack
from horus.settings import load_settings
from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS
from horus.venue.polymarket.orders import address_of
from tests.integration.pipeline_helpers import WAIT, Producer, Reader, Worker, prefixed, wait_group_stable

pytestmark = pytest.mark.integration

KEY = "0x" + "3c" * 31 + "09"
LEADER = "0x" + "1e" * 19 + "77"
TOKEN = "48331043336612883890938759509493159234755048973500640148014422747788308965732"  # unknown to the venue


def cli(settings, *argv: str) -> None:
    result = CliRunner().invoke(app, list(argv), env=settings.as_env())
    assert result.exit_code == 0, result.output


def leader_fill() -> dict:
    tx = "0x" + ids.make_id("paper-copying-tx", time.time_ns())
    return {
        "envelope": envelope(ids.leader_fill_id(tx, LEADER, TOKEN, "BUY"), "test", time.time_ns() // 1000),
        "leader": LEADER,
        "exchange": "0x" + "0e" * 20,
        "tx_hash": tx,
        "block_number": 1,
        "log_index": 0,
        "token_id": TOKEN,
        "condition_id": None,
        "side": "BUY",
        "shares_e6": 50_000_000,
        "collateral_e6": 21_000_000,
        "price": "0.42",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": [],
    }


def test_the_readme_copying_steps_trade_on_a_fresh_paper_venue(topics, tmp_path):
    stack = LocalStack(load_settings(state_dir=tmp_path / "stack"))
    venue_url = stack.up(("venue",))["HORUS_CLOB_URL"]
    worker = reader = None
    try:
        s = prefixed(topics, "papercopy").model_copy(
            update={
                "venue_mode": "paper",
                "clob_url": venue_url,
                "credentials_key": SecretStr(generate_key()),
                "session_timeout_s": 6.0,
            }
        )
        assert s.gamma_url == ""
        follower = address_of(KEY).lower()
        creds = tmp_path / "creds.json"
        creds.write_text(json.dumps({"private_key": KEY}))
        cli(
            s,
            "follower",
            "add",
            follower,
            "--signature-type",
            "0",
            "--credentials-file",
            str(creds),
            "--daily-cap",
            "200",
        )
        cli(
            s,
            "follow",
            "add",
            "--follower",
            follower,
            "--leader",
            LEADER,
            "--sizing",
            "fixed",
            "--amount",
            "10",
            "--slippage-bps",
            "200",
        )
        reader = Reader(s, (COPY_DECISIONS, EXECUTION_RESULTS))
        worker = Worker(s, "plan,decide,execute", tmp_path / "worker.log")
        wait_group_stable(s, 1, [worker])
        Producer(s).fills([leader_fill()])

        deadline, final = time.monotonic() + WAIT, None
        while final is None and time.monotonic() < deadline:
            reader.poll()
            assert worker.alive(), worker.output()
            final = next(
                (
                    r
                    for _, r, _ in reader.seen[EXECUTION_RESULTS.name]
                    if r["follower"] == follower
                    and r["status"] in ("FILLED", "PARTIAL", "NOT_FILLED", "REJECTED", "FAILED")
                ),
                None,
            )
        decisions = [d for _, d, _ in reader.seen[COPY_DECISIONS.name]]
        assert final is not None, (
            [(d["action"], d["reason_code"], d["reason_detail"]) for d in decisions],
            worker.output(),
        )
        assert [d["action"] for d in decisions] == ["COPY"], decisions
        assert final["status"] == "FILLED" and final["filled_shares_e6"] > 0, final
        (order,) = venue_orders(venue_url)["orders"]
        assert order["maker"] == follower
    finally:
        if worker is not None:
            worker.stop()
        if reader is not None:
            reader.close()
        stack.down()
