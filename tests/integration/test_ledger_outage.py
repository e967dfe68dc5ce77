"""The ledger survives a Postgres crash (safety review D3): every failed use returns its pool slot, so the executor
carries on once the database is back; and an executor whose ledger stays down past its bound exits 70 (to be
restarted) instead of hanging. Postgres here is a server of the test's own, killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psycopg
import pytest

from horus.execution.ledger import Ledger
from tests.integration.execute_helpers import (
    Results,
    ServiceThread,
    all_terminal,
    copy_decision,
    make_followers,
    orders_by_intent,
    paper_settings,
    private_settings,
    produce_decisions,
    simulator,
    start_subprocess,
)
from tests.integration.private_postgres import PrivatePostgres

pytestmark = pytest.mark.integration


def test_failed_reconnects_never_shrink_the_pool_and_it_recovers_when_postgres_is_back(settings):
    with PrivatePostgres() as pg:
        s = pg.settings(settings)

        async def scenario() -> tuple[int, float, float, float]:
            ledger = Ledger(s.database_url, connections=2)
            await ledger.open()
            assert await ledger.row("nothing") is None
            pg.kill()
            failures = 0
            for _ in range(6):  # three times the pool: the old pool lost a slot on each and then hung
                try:
                    await asyncio.wait_for(ledger.row("nothing"), 5)
                except psycopg.OperationalError:
                    failures += 1
            down = ledger.unreachable_for()
            await asyncio.to_thread(pg.start)
            started = time.monotonic()
            assert await asyncio.wait_for(ledger.row("nothing"), 5) is None
            back = time.monotonic() - started
            up = ledger.unreachable_for()
            await ledger.close()
            return failures, down, back, up

        failures, down, back, up = asyncio.run(scenario())
    assert failures == 6
    assert down > 0 and up == 0
    assert back < 5


def test_the_executor_carries_on_after_postgres_is_killed_and_restarted_mid_flight(settings):
    sim = simulator(latency_ms=150)
    with PrivatePostgres() as pg:
        s = paper_settings(private_settings(pg.settings(settings)), sim)
        followers = make_followers(s, 8)
        first = [copy_decision(f.address, 0, tag="pgkill") for f in followers]
        then = [copy_decision(f.address, 1, tag="pgkill") for f in followers]
        intents = {d["intent_id"] for d in first + then}
        results = Results(s)
        with ServiceThread(s, followers):
            produce_decisions(s, first)
            deadline = time.monotonic() + 30
            started = first[0]["intent_id"]
            while time.monotonic() < deadline and not orders_by_intent(sim, {started})[started]:
                time.sleep(0.02)
            pg.kill()  # replies arriving now cannot be recorded; the next decisions cannot be prewritten
            produce_decisions(s, then)
            time.sleep(3)
            pg.start()
            latest = results.wait(all_terminal(intents), timeout=90)
        orders = orders_by_intent(sim, intents)
    assert {i: len(o) for i, o in orders.items() if len(o) != 1} == {}  # one venue order per COPY, none lost
    assert {r["status"] for r in latest.values()} == {"FILLED"}
    results.close()
    sim.stop()


def test_an_executor_whose_ledger_stays_down_exits_70_to_be_restarted(settings, tmp_path):
    sim = simulator()
    with PrivatePostgres() as pg:
        s = paper_settings(private_settings(pg.settings(settings), execute_ledger_down_exit_s=3.0), sim)
        followers = make_followers(s, 1)
        child = start_subprocess(s, followers, tmp_path / "exec.log")
        try:
            results = Results(s)
            d = copy_decision(followers[0].address, 0, tag="pgdown")
            produce_decisions(s, [d])
            results.wait(all_terminal({d["intent_id"]}))  # running and serving
            pg.kill()
            produce_decisions(s, [copy_decision(followers[0].address, 1, tag="pgdown")])
            code = child.wait(60)
        finally:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
    assert code == 70, (tmp_path / "exec.log").read_text()[-3000:]
    assert "unreachable" in (tmp_path / "exec.log").read_text()
    results.close()
    sim.stop()
