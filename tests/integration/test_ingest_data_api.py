"""`horus ingest data-api` against a real HTTP Data API stand-in, Kafka, Postgres and anvil: the chain and the
Data API report the same fills, and leader.fills holds each once, whichever source sees them first."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from typer.testing import CliRunner
from web3 import Web3

from horus.cli.main import app as horus_app
from horus.domain import ids
from horus.ops.testchain import V2Fill, emit_batch, emit_v2
from horus.settings import Settings
from horus.topics import LEADER_FILLS
from horus.venue.polymarket.exchanges import ExchangeBook
from horus.venue.polymarket.fills import decode_log
from horus.venue.simulator.data_api import DataApiStandIn
from tests.integration.ingest_helpers import (
    LEADERS,
    STRANGER,
    HorusProcess,
    Ingest,
    _v2,
    expected_from,
    fill_ids,
    follow,
    free_port,
    head,
    metric_values,
    read_topic,
)
from tests.integration.pipeline_helpers import wait_until


class StandInServer:
    """`DataApiStandIn(rows).app` on a real local HTTP port: a stdlib threading server whose handler hands
    each GET to the ASGI app (httpx.ASGITransport) and writes its answer back."""

    def __init__(self, stand_in: DataApiStandIn) -> None:
        asgi = stand_in.app

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                async def call() -> httpx.Response:
                    async with httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=asgi), base_url="http://stand-in"
                    ) as client:
                        return await client.get(self.path)

                response = asyncio.run(call())
                self.send_response(response.status_code)
                self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def stand_in():
    api = DataApiStandIn()
    server = StandInServer(api)
    api.url = server.url
    try:
        yield api
    finally:
        server.close()


def rows_for(settings: Settings, receipts, book: ExchangeBook, leaders) -> list[dict]:
    """Data API /v2/activity rows (field names of the captured fixture) for the fills of `leaders` in
    `receipts`: one row per OrderFilled log, as the API reports a multi-fill transaction."""
    w3 = Web3(Web3.HTTPProvider(settings.eth_rpc_url))
    rows = []
    for receipt in receipts:
        stamp = w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        for log in receipt["logs"]:
            try:
                fill = decode_log(log, book)
            except ValueError:
                continue
            if fill.leader not in leaders:
                continue
            rows.append(
                {
                    "proxy_wallet": fill.leader,
                    "timestamp": stamp,
                    "type": "TRADE",
                    "size": fill.shares_e6 / 1e6,
                    "usdc_size": fill.collateral_e6 / 1e6,
                    "transaction_hash": fill.tx_hash,
                    "price": round(fill.collateral_e6 / fill.shares_e6, 10),
                    "token_id": fill.token_id,
                    "side": fill.side,
                    "outcome_index": 0,
                    "title": "test market",
                    "outcome": "Yes",
                }
            )
    return rows


def emit_fills(settings: Settings, emitters, leaders: list[str], seed: int) -> list:
    """Per leader: a BUY, a SELL, and one transaction with two fills of the same order side and token
    (one event, summed) next to a stranger's fill. Prices 0.5, 1/3, 0.25."""
    rpc = settings.eth_rpc_url
    receipts = []
    for i, leader in enumerate(leaders):
        n = seed + 10 * i
        receipts.append(emit_v2(rpc, emitters.v2, _v2(leader, n)))
        receipts.append(
            emit_v2(
                rpc,
                emitters.v2,
                V2Fill(
                    order_hash=_v2(leader, n + 1).order_hash,
                    maker=leader,
                    taker=None,
                    side=1,
                    token_id=8,
                    maker_amount_filled=3_000_000,
                    taker_amount_filled=1_000_000,
                ),
            )
        )
        receipts.append(
            emit_batch(
                rpc,
                emitters.v2,
                [
                    V2Fill(
                        order_hash=_v2(leader, n + 2).order_hash,
                        maker=leader,
                        taker=None,
                        side=0,
                        token_id=9,
                        maker_amount_filled=1_000_000,
                        taker_amount_filled=4_000_000,
                    ),
                    V2Fill(
                        order_hash=_v2(leader, n + 3).order_hash,
                        maker=leader,
                        taker=emitters.v2,
                        side=0,
                        token_id=9,
                        maker_amount_filled=2_500_000,
                        taker_amount_filled=10_000_000,
                    ),
                    _v2(STRANGER, n + 4),
                ],
            )
        )
    return receipts


def stopped_totals(proc: HorusProcess) -> dict:
    lines = [json.loads(line) for line in proc.log().splitlines() if line.startswith("{")]
    return next(line["totals"] for line in reversed(lines) if line["msg"].startswith("data api source stopped"))


def metrics_or_empty(port: int) -> dict[str, float]:
    """The process's metrics, or {} while its metrics server is not up yet."""
    try:
        return metric_values(port)
    except OSError:
        return {}


def leader_fills(settings: Settings) -> dict[str, dict]:
    return {r["envelope"]["event_id"]: r for name, r in read_topic(settings, LEADER_FILLS) if name == "LeaderFill"}


@pytest.mark.integration
def test_chain_then_data_api_leader_fills_holds_each_once(iso, emitters, stand_in, tmp_path):
    """Chain and Data API report the same fills; leader.fills holds each once (the chain first)."""
    book = ExchangeBook.of(emitters.v1, emitters.v2)
    l1, l2 = LEADERS[0], LEADERS[1]
    follow(iso, "fa", l1)
    follow(iso, "fb", l2)
    first = head(iso) + 1
    receipts = emit_fills(iso, emitters, [l1, l2], 100)
    expected = expected_from(receipts, book, {l1, l2})
    assert len(expected) == 6

    chain = Ingest(iso, emitters, tmp_path / "chain.log", first)
    try:
        wait_until(lambda: set(fill_ids(iso)) >= expected, 30, "the chain source's fills")
        assert chain.stop() == 0
    finally:
        chain.stop()

    stand_in.add(*rows_for(iso, receipts, book, {l1, l2, STRANGER}))
    stand_in.add({**stand_in.rows[0], "type": "REDEEM", "transaction_hash": "0x" + "ab" * 32})  # not a fill
    stand_in.fail_next = 1  # a --once round with a failed fetch exits 1, after a clear message
    failed = HorusProcess(
        iso, tmp_path / "data-api-failed.log", "ingest", "data-api", "--once", HORUS_DATA_API_URL=stand_in.url
    )
    assert failed.wait(60) == 1, failed.log()
    assert "503 Service Unavailable" in failed.log() and "1 leader fetch(es) failed" in failed.log()
    assert "Traceback" not in failed.log()
    api = HorusProcess(iso, tmp_path / "data-api.log", "ingest", "data-api", "--once", HORUS_DATA_API_URL=stand_in.url)
    assert api.wait(60) == 0, api.log()
    totals = stopped_totals(api)
    assert (totals["rounds"], totals["records"], totals["produced"], totals["duplicates"]) == (1, 6, 0, 6), totals
    assert {params["user"] for path, params in stand_in.requests if path == "/v2/activity"} == {l1, l2}

    counts = fill_ids(iso)
    assert set(counts) == expected and max(counts.values()) == 1, counts
    assert {r["envelope"]["source"] for r in leader_fills(iso).values()} == {"chain"}


@pytest.mark.integration
def test_data_api_then_chain_live_follow_and_http_failure(iso, emitters, stand_in, tmp_path):
    """The reverse order, with the data-api source running: a 503 is logged and retried next round, a leader
    followed while it runs is polled from the next round, SIGTERM stops it with exit 0; then the chain
    source sees the same fills and produces none of them."""
    book = ExchangeBook.of(emitters.v1, emitters.v2)
    l3, l4 = LEADERS[2], LEADERS[3]
    follow(iso, "fc", l3)
    first = head(iso) + 1
    receipts = emit_fills(iso, emitters, [l3, l4], 200)
    stand_in.add(*rows_for(iso, receipts, book, {l3, l4, STRANGER}))
    stand_in.fail_next = 1
    port = free_port()
    api = HorusProcess(
        iso,
        tmp_path / "data-api.log",
        "ingest",
        "data-api",
        "--interval",
        "0.3",
        "--metrics-port",
        str(port),
        HORUS_DATA_API_URL=stand_in.url,
    )
    try:
        only_l3 = expected_from(receipts, book, {l3})
        wait_until(lambda: set(fill_ids(iso)) >= only_l3, 30, "the data-api source's fills of the followed leader")
        assert "fetching " + l3 + " failed, retrying next round" in api.log() and "503" in api.log()
        assert not set(fill_ids(iso)) - only_l3

        follow(iso, "fd", l4)
        expected = expected_from(receipts, book, {l3, l4})
        wait_until(lambda: set(fill_ids(iso)) >= expected, 30, "the fills of the leader followed while running")
        assert metric_values(port)['horus_ingest_fills_total{source="data-api"}'] == len(expected) == 6
        api.signal(signal.SIGTERM)
        assert api.wait(15) == 0, api.log()
    finally:
        api.stop()
    assert stopped_totals(api)["produced"] == 6

    chain_port = free_port()
    chain = Ingest(iso, emitters, tmp_path / "chain.log", first, "--metrics-port", str(chain_port))
    try:
        key = 'horus_ingest_duplicates_suppressed_total{source="chain"}'
        wait_until(
            lambda: metrics_or_empty(chain_port).get(key, 0) >= len(expected),
            30,
            "the chain source to see the same fills",
        )
        metrics = metric_values(chain_port)
        assert metrics[key] == len(expected)
        assert metrics.get('horus_ingest_fills_total{source="chain"}', 0) == 0
        assert chain.stop() == 0
    finally:
        chain.stop()

    counts = fill_ids(iso)
    assert set(counts) == expected and max(counts.values()) == 1, counts
    # the Data API rows describe the same fills: same summed amounts as the chain logs
    fills = leader_fills(iso)
    chain_sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for receipt in receipts:
        for log in receipt["logs"]:
            fill = decode_log(log, book)
            if fill.leader in (l3, l4):
                eid = ids.leader_fill_id(fill.tx_hash, fill.leader, fill.token_id, fill.side)
                chain_sums[eid][0] += fill.shares_e6
                chain_sums[eid][1] += fill.collateral_e6
    for eid, record in fills.items():
        assert record["envelope"]["source"] == "data-api"
        assert [record["shares_e6"], record["collateral_e6"]] == chain_sums[eid], record


@pytest.mark.integration
def test_a_poisoned_leader_is_parked_and_every_other_leaders_fills_flow(iso, stand_in, tmp_path):
    """D14: leader B's rows (a `1e30` timestamp; two rows of one fill whose shares sum beyond 2^63-1) used to
    fail every round, so no leader's fills were ever produced again, and bad rows left no dead letter. Now
    A's fills (and B's good one) are produced and B's bad rows are parked with their JSON, once."""
    from horus.topics import DEAD_LETTERS

    a, b = LEADERS[0], LEADERS[1]
    follow(iso, "pa", a)
    follow(iso, "pb", b)

    def row(n, leader, stamp, size=10, price=0.5):
        return {
            "proxy_wallet": leader,
            "timestamp": stamp,
            "type": "TRADE",
            "transaction_hash": "0x" + f"{n:064x}",
            "token_id": "1234567",
            "condition_id": "0x" + "cd" * 32,
            "side": "BUY",
            "size": size,
            "price": price,
            "usdc_size": size * price,
        }

    good = [row(1, a, 1_790_000_001), row(2, a, 1_790_000_002), row(3, b, 1_790_000_003)]
    poisoned = [row(4, b, "1e30"), row(5, b, 1_790_000_005, size=9e12), row(5, b, 1_790_000_005, size=9e12, price=0.6)]
    stand_in.add(good[0], poisoned[0], good[1], *poisoned[1:], good[2])
    for attempt in (1, 2):  # a second run sees the same rows: nothing new produced, the bad rows parked again
        api = HorusProcess(
            iso, tmp_path / f"data-api-{attempt}.log", "ingest", "data-api", "--once", HORUS_DATA_API_URL=stand_in.url
        )
        assert api.wait(60) == 0, api.log()
        assert "Traceback" not in api.log()
    expected = {ids.leader_fill_id(r["transaction_hash"], r["proxy_wallet"], r["token_id"], r["side"]) for r in good}
    counts = fill_ids(iso)
    assert set(counts) == expected and max(counts.values()) == 1, counts
    parked = [r for name, r in read_topic(iso, DEAD_LETTERS) if name == "DeadLetter"]
    assert {r["stage"] for r in parked} == {"ingest-data-api"}
    originals = sorted(json.dumps(json.loads(r["original"]), sort_keys=True) for r in parked)
    assert originals == sorted(2 * [json.dumps(r, sort_keys=True) for r in poisoned])  # each run parks each once
    assert len({r["envelope"]["event_id"] for r in parked}) == 3  # under one dead-letter id per bad row


def test_data_api_command_rejects_bad_options():
    runner = CliRunner()
    result = runner.invoke(horus_app, ["ingest", "data-api", "--endpoint", "bogus", "--once"])
    assert result.exit_code == 2
    assert "--endpoint" in result.output and "'bogus' is not one of activity, trades" in result.output
    result = runner.invoke(horus_app, ["ingest", "data-api", "--interval", "0", "--once"])
    assert result.exit_code == 2 and "--interval" in result.output
