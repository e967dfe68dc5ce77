"""Replaying a leader fill moves no money: the same LeaderFill bytes produced again, and the same fill as another
source reports it (same leader fill id, other envelope and fields), go through plan -> decide -> execute (one real
`horus worker`, execute in paper mode against the CLOB simulator) and create 0 new intents, 0 new ledger rows and
0 new venue orders. A fresh fill of the same leader produced after the replays is the marker: its results
follow the replays through every stage (same leader key, same follower keys), so once they are in, the replays
have been handled."""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg
import pytest
from pydantic import SecretStr

from horus.codec import default_codec
from horus.credentials import generate_key
from horus.db.engine import psycopg_conninfo
from horus.domain import ids
from horus.domain.config import config_change, parse_follow_config
from horus.domain.events import TERMINAL, envelope
from horus.ops.paper import create_followers, fund, venue_orders
from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS, LEADER_FILLS
from horus.venue.polymarket.orders import intent_metadata
from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator
from tests.integration.pipeline_helpers import WAIT, Producer, Reader, Worker, prefixed, wait_group_stable

pytestmark = pytest.mark.integration

LEADER = "0x" + "d4" * 20
TOKEN = str(10**20 + 77)
CONDITION = "0x" + "d7" * 32


def leader_fill(n: int, source: str = "chain", occurred_us: int | None = None) -> dict:
    tx = "0x" + ids.make_id("replay-tx", n)
    fill_id = ids.leader_fill_id(tx, LEADER, TOKEN, "BUY")
    occurred = occurred_us or time.time_ns() // 1000
    return {
        "envelope": envelope(fill_id, source, occurred),
        "leader": LEADER,
        "exchange": "0x" + "0e" * 20,
        "tx_hash": tx,
        "block_number": 500 + n,
        "log_index": 3,
        "token_id": TOKEN,
        "condition_id": CONDITION,
        "side": "BUY",
        "shares_e6": 10_000_000,
        "collateral_e6": 5_000_000,
        "price": "0.5",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": [],
    }


def as_another_source_reports_it(fill: dict) -> dict:
    """The same trade seen by the Data API instead of the chain: same leader fill id, its own envelope (source,
    times at second resolution), no log position, no order hashes."""
    occurred = fill["envelope"]["occurred_at_us"] // 1_000_000 * 1_000_000
    return {
        **fill,
        "envelope": envelope(fill["envelope"]["event_id"], "data-api", occurred),
        "block_number": 0,
        "log_index": 0,
        "order_hashes": [],
    }


@pytest.fixture(scope="module")
def sim():
    market = MarketConfig(
        condition_id=CONDITION,
        tokens=[TokenConfig(token_id=TOKEN, price="0.5")],
        tick_size="0.01",
        levels=5,
        level_size=10**6,
        replenish=True,
    )
    with run_simulator(SimulatorConfig(markets=[market])) as running:
        yield running


def ledger_intents(settings, follow_ids: list[str]) -> list[str]:
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT idempotency_key FROM copy_trades WHERE follow_id = ANY(%s)", (follow_ids,))
        ]


def test_a_replayed_leader_fill_creates_no_new_intent_and_no_new_venue_order(topics, sim, tmp_path):
    settings = prefixed(topics, "replay").model_copy(
        update={
            "clob_url": sim.url,
            "gamma_url": "",
            "balance_source": "fixed",
            "fixed_balance": "1000",
            "venue_mode": "paper",
            "credentials_key": SecretStr(generate_key()),
        }
    )
    followers = create_followers(settings, ["r0", "r1"], f"replay-{settings.app_id}")
    fund(sim.url, [(f.address, Decimal(1000)) for f in followers])
    follows = [
        parse_follow_config(
            {
                "follow_id": f"{settings.app_id}-{i}",
                "follower": f.address,
                "leader": LEADER,
                "sizing": {"mode": "fixed", "amount": "2"},
                "max_fill_age_s": 3600,
            }
        )
        for i, f in enumerate(followers)
    ]
    follow_ids = [f.follow_id for f in follows]
    producer = Producer(settings)
    producer.configs(
        [config_change("FOLLOWER", f.address, f.config(), "test") for f in followers]
        + [config_change("FOLLOW", f.follow_id, f, "test") for f in follows]
    )
    reader = Reader(settings, (COPY_DECISIONS, EXECUTION_RESULTS))
    worker = Worker(settings, "plan,decide,execute", tmp_path / "worker.log", "confluent")
    try:
        wait_group_stable(settings, 1, [worker])
        wait_group_stable(settings.model_copy(update={"app_id": f"{settings.app_id}-execute"}), 1, [worker])

        def settled(fill: dict) -> set[str]:
            """The fill's intents, once each has a terminal result."""
            want = {ids.intent_id(follow, fill["envelope"]["event_id"]) for follow in follow_ids}
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                reader.poll()
                assert worker.alive(), worker.output()
                done = {r["intent_id"] for _, r, _ in reader.seen[EXECUTION_RESULTS.name] if r["status"] in TERMINAL}
                if want <= done:
                    return want
            raise AssertionError(f"no terminal results for {fill['envelope']['event_id']}\n{worker.output()}")

        original = leader_fill(1)
        original_bytes = default_codec().encode("LeaderFill", original)
        producer.send(LEADER_FILLS, raw=original_bytes, key=LEADER)
        producer.flush()
        first = settled(original)
        copies = {d["intent_id"] for _, d, _ in reader.seen[COPY_DECISIONS.name] if d["action"] == "COPY"}
        assert copies == first, "each follow copies the fill once"
        orders = venue_orders(sim.url)["orders"]
        assert len(orders) == 2 and {o["metadata"] for o in orders} == {intent_metadata(i) for i in first}

        producer.send(LEADER_FILLS, raw=original_bytes, key=LEADER)  # the same bytes again
        producer.send(LEADER_FILLS, as_another_source_reports_it(original), key=LEADER)
        producer.flush()
        marker = leader_fill(2)
        producer.fills([marker])
        second = settled(marker)

        reader.poll(1.0)
        copies = {d["intent_id"] for _, d, _ in reader.seen[COPY_DECISIONS.name] if d["action"] == "COPY"}
        assert copies == first | second, "the replays created intents"
        assert sorted(ledger_intents(settings, follow_ids)) == sorted(first | second)
        orders = venue_orders(sim.url)["orders"]
        by_intent = {i: [o for o in orders if o["metadata"] == intent_metadata(i)] for i in first | second}
        assert all(len(found) == 1 for found in by_intent.values()), by_intent
        assert len(orders) == 4, "the replays reached the venue"
    finally:
        reader.close()
        code = worker.stop()
    assert code == 0, worker.output()
