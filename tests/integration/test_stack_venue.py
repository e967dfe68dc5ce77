"""D1: `horus stack up` runs the paper venue (the CLOB simulator) and writes its URL where every command reads
it, so paper mode works on a fresh machine with no extra step. A private stack of just that part: the shared
stack is never touched."""

from __future__ import annotations

import json
import os

import httpx
import psutil
import pytest

from horus.ops.stack import LocalStack
from horus.settings import load_settings
from horus.venue.guard import require_venue

pytestmark = pytest.mark.integration


def test_stack_up_runs_the_paper_venue_and_paper_mode_finds_it(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith("HORUS_")]:
        monkeypatch.delenv(name)
    state = tmp_path / "stack"
    stack = LocalStack(load_settings(state_dir=state))
    try:
        env = stack.up(("venue",))
        url = env["HORUS_CLOB_URL"]
        assert url.startswith("http://127.0.0.1:")
        assert f"HORUS_CLOB_URL={url}\n" in (state / "stack.env").read_text()
        record = json.loads((state / "run" / "venue.json").read_text())

        paper = load_settings(state_dir=state)  # what every command reads
        assert paper.venue_mode == "paper" and paper.clob_url == url and paper.gamma_url == ""
        assert require_venue(paper)["follow_leaders"] is True  # an empty paper venue: decide makes its markets

        lines: list[str] = []
        LocalStack(paper).up(("venue",), progress=lines.append)  # idempotent: the same process stays
        assert "venue: already running" in lines
        assert json.loads((state / "run" / "venue.json").read_text())["pid"] == record["pid"]
        row = next(r for r in stack.status() if r.name == "venue")
        assert row.healthy and row.address == url and row.pid == record["pid"], row

        # a paper follower needs no funding step: an account never seen holds HORUS_PAPER_BALANCE
        account = httpx.get(f"{url}/_sim/accounts/0x{'ab' * 20}", timeout=5).json()
        assert int(account["collateral_e6"]) == int(paper.paper_balance) * 1_000_000, account
        # loopback only
        listening = [c.laddr for c in psutil.Process(record["pid"]).net_connections() if c.status == "LISTEN"]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    finally:
        stopped = stack.down()
    assert stopped == ["venue"]
    assert not psutil.pid_exists(record["pid"]) or psutil.Process(record["pid"]).status() == psutil.STATUS_ZOMBIE
    assert not (state / "stack.env").exists()
    assert not next(r for r in stack.status() if r.name == "venue").healthy
