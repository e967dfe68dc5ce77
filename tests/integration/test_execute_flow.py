"""The executor against real Kafka + Postgres + the CLOB simulator: one venue order per COPY, the same
result on redelivery, rejections with reasons, dry run, per-follower order, dead letters."""

from __future__ import annotations

import psycopg
import pytest

from horus.db.engine import psycopg_conninfo
from horus.domain import ids
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
    skip_decision,
)

pytestmark = pytest.mark.integration


def ledger(settings, intents):
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, status, order_hash, body_text, attempts, result_seq, "
            "result_sent_seq, signature_generation FROM copy_trades WHERE idempotency_key = ANY(%s)",
            (sorted(intents),),
        ).fetchall()
    return {r[0]: r for r in rows}


def test_each_copy_is_one_venue_order_and_redelivery_changes_nothing(settings):
    sim = simulator()
    s = paper_settings(private_settings(settings), sim)
    followers = make_followers(s, 6)
    decisions = [copy_decision(f.address, n, tag="a") for f in followers for n in range(3)]
    skips = [skip_decision(followers[0].address, 99, tag="a")]
    intents = {d["intent_id"] for d in decisions}
    produce_decisions(s, decisions + skips + decisions[:5])  # some duplicated in the topic already
    results = Results(s)
    # no reconciler: a fill's confirmation (the next result, final) is not what this test is about
    with ServiceThread(s, followers, reconcile=False):
        latest = results.wait(all_terminal(intents))
    assert {r["status"] for r in latest.values()} == {"FILLED"}
    orders = orders_by_intent(sim, intents)
    assert all(len(o) == 1 for o in orders.values()), {i: len(o) for i, o in orders.items() if len(o) != 1}
    rows = ledger(s, intents)
    for intent, result in latest.items():
        order = orders[intent][0]
        assert result["order_hash"] == order["order_id"] == rows[intent][2]
        assert result["filled_shares_e6"] == 10_000_000 and result["avg_price"] == "0.51"
        assert result["envelope"]["event_id"] == ids.result_id(intent, 1)
        assert rows[intent][1] == "FILLED" and rows[intent][5] == rows[intent][6] == 1
    first_results = {r["envelope"]["event_id"]: raw for r, raw in zip(results.seen, results.raw)}

    # the whole topic again under a new consumer group: every decision is a redelivery now
    with ServiceThread(s.model_copy(update={"app_id": s.app_id + "-again"}), followers, reconcile=False):
        count = len(results.seen)
        results.wait(lambda _latest: len(results.seen) >= count + len(decisions) + 5, timeout=60)
    assert all(len(o) == 1 for o in orders_by_intent(sim, intents).values())  # still one order each
    for r, raw in zip(results.seen[count:], results.raw[count:]):
        assert first_results[r["envelope"]["event_id"]] == raw  # the very same event, byte for byte
    results.close()
    sim.stop()


def test_unknown_follower_is_rejected_with_a_reason_and_dry_run_never_posts(settings):
    sim = simulator()
    s = paper_settings(private_settings(settings), sim)
    known = make_followers(s, 1)
    stranger = "0x" + "5e" * 20
    decisions = [copy_decision(stranger, 0, tag="b"), copy_decision(known[0].address, 0, tag="b", worst_price="0.555")]
    produce_decisions(s, decisions)
    results = Results(s)
    with ServiceThread(s, known):
        latest = results.wait(all_terminal({d["intent_id"] for d in decisions}))
    rejected, off_grid = latest[decisions[0]["intent_id"]], latest[decisions[1]["intent_id"]]
    assert rejected["status"] == "REJECTED" and "no account configured" in rejected["error"]
    assert off_grid["status"] == "REJECTED" and "tick" in off_grid["error"]
    assert venue_count(sim) == 0

    dry = s.model_copy(update={"venue_mode": "dry-run", "topic_prefix": s.topic_prefix + "dry."})
    from horus.kafka.admin import create_topics

    create_topics(dry, partitions=2)
    d = copy_decision(known[0].address, 1, tag="b-dry")
    produce_decisions(dry, [d])
    dry_results = Results(dry)
    with ServiceThread(dry, known):
        latest = dry_results.wait(all_terminal({d["intent_id"]}))
    result = latest[d["intent_id"]]
    assert result["status"] == "DRY_RUN" and result["envelope"]["event_id"] == ids.result_id(d["intent_id"], 0)
    row = ledger(dry, {d["intent_id"]})[d["intent_id"]]
    assert row[1] == "DRY_RUN" and row[2].startswith("0x") and '"signature"' in row[3]  # signed and recorded
    assert venue_count(sim) == 0
    results.close()
    dry_results.close()
    sim.stop()


def venue_count(sim) -> int:
    import httpx

    return len(httpx.get(f"{sim.url}/_sim/orders", timeout=10).json()["orders"])


def test_ledger_and_reconcile_commands_show_rows_without_secrets(settings, tmp_path):
    import json
    import os
    import subprocess
    import sys
    import uuid

    from horus.db.engine import scratch_database

    sim = simulator()
    # the report and a reconcile round cover the whole ledger: a database holding this test's rows alone
    with scratch_database(settings, f"horus_cli_{uuid.uuid4().hex[:8]}") as own:
        s = paper_settings(private_settings(own), sim)
        followers = make_followers(s, 1)
        d = copy_decision(followers[0].address, 0, tag="cli")
        produce_decisions(s, [d])
        results = Results(s)
        with ServiceThread(s, followers):
            results.wait(all_terminal({d["intent_id"]}))
        env = {**os.environ, **s.as_env()}
        horus = [sys.executable, "-m", "horus.cli.main"]
        out = subprocess.run(
            [*horus, "ledger", "--intent", d["intent_id"], "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        assert [r["status"] for r in rows] == ["FILLED"] and rows[0]["order_hash"].startswith("0x")
        assert '"signature":' not in out.stdout and followers[0].private_key[2:] not in out.stdout
        report = subprocess.run([*horus, "reconcile", "--report"], env=env, capture_output=True, text=True, timeout=60)
        assert report.returncode == 0 and "0 rows" in report.stdout
        accounts = tmp_path / "accounts.json"
        accounts.write_text(json.dumps([json.loads(followers[0].config().to_body())]))
        once = subprocess.run(
            [*horus, "reconcile", "--once", "--accounts", str(accounts)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert once.returncode == 0 and "settled 0" in once.stdout, once.stdout + once.stderr
        results.close()
    sim.stop()
