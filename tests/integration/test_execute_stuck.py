"""A ledger row the reconciler cannot settle: the venue processed the order but lost the reply, and every
lookup of it fails. Past `reconcile_alert_after_s` the row is counted by `horus_execute_stuck_rows` and
listed by `horus reconcile --report` (exit 3), and it stays UNKNOWN: never FAILED by guesswork. Once the
venue answers lookups again the reconciler settles it from the venue's record and the gauge drops to 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from prometheus_client import REGISTRY

from horus.db.engine import psycopg_conninfo, scratch_database
from tests.integration.execute_helpers import (
    REPO,
    Results,
    ServiceThread,
    all_terminal,
    copy_decision,
    make_followers,
    orders_by_intent,
    paper_settings,
    private_settings,
    produce_decisions,
    set_faults,
    simulator,
)
from tests.integration.pipeline_helpers import wait_until

pytestmark = pytest.mark.integration

ALERT_AFTER_S = 3.0


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def row_of(settings, intent: str) -> tuple:
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        return conn.execute(
            "SELECT status, order_hash, unknown_since FROM copy_trades WHERE idempotency_key = %s", (intent,)
        ).fetchone()


def report(settings) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "horus.cli.main", "reconcile", "--report", "--json"],
        cwd=REPO,
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_row_open_past_the_alert_bound_is_counted_and_reported_until_the_venue_lets_it_settle(settings):
    sim = simulator(reply_lost_rate=1.0, read_error_rate=1.0)  # order processed, reply lost; lookups all 5xx
    # the gauge counts the whole ledger: a database holding this test's rows alone
    with scratch_database(settings, f"horus_stuck_{uuid.uuid4().hex[:8]}") as own:
        s = paper_settings(private_settings(own, reconcile_alert_after_s=ALERT_AFTER_S), sim)
        follower = make_followers(s, 1)[0]
        d = copy_decision(follower.address, 0, tag="stuck")
        intent = d["intent_id"]
        results = Results(s)
        produce_decisions(s, [d])
        with ServiceThread(s, [follower], resend_unknown=0):
            results.wait(lambda latest: latest.get(intent, {}).get("status") == "UNKNOWN")
            assert gauge("horus_execute_stuck_rows") == 0  # open, but not for long yet
            wait_until(lambda: gauge("horus_execute_stuck_rows") == 1, 30, "the stuck-rows gauge at 1")
            # rounds go on: each looks at the row (the lookups fail) and neither settles nor fails it
            wait_until(lambda: gauge("horus_execute_open_rows") == 1, 10, "a round looking at the row")
            assert gauge("horus_execute_stuck_rows") == 1
            assert row_of(s, intent)[0] == "UNKNOWN"
            listed = report(s)
            assert listed.returncode == 3, listed.stdout + listed.stderr
            rows = json.loads(listed.stdout)
            assert [(r["idempotency_key"], r["status"]) for r in rows] == [(intent, "UNKNOWN")]
            assert row_of(s, intent)[0] == "UNKNOWN"  # still not FAILED

            set_faults(sim, read_error_rate=0.0)  # the venue's record of the order is readable again
            latest = results.wait(all_terminal({intent}), timeout=30)
            wait_until(lambda: gauge("horus_execute_stuck_rows") == 0, 10, "the stuck-rows gauge back at 0")
        status, order_hash, unknown_since = row_of(s, intent)
        assert status == latest[intent]["status"] == "FILLED" and unknown_since is None
        orders = orders_by_intent(sim, {intent})[intent]
        assert [(o["order_id"], o["post_count"]) for o in orders] == [(order_hash, 1)]  # settled by lookup alone
        assert {r["status"] for r in results.seen if r["intent_id"] == intent} == {"UNKNOWN", "FILLED"}  # no FAILED
        cleared = report(s)
        assert cleared.returncode == 0 and json.loads(cleared.stdout) == [], cleared.stdout + cleared.stderr
        results.close()
    sim.stop()
