"""DataApiSource against the local Data API stand-in (FastAPI app over httpx.ASGITransport)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from horus.domain.ids import leader_fill_id
from horus.ingest.data_api import DataApiSource
from horus.settings import Settings
from horus.venue.simulator.data_api import DataApiStandIn

FIXTURES = Path("/work/shared/fixtures/polymarket/data_api_v2")
ACTIVITY = json.loads((FIXTURES / "activity.json").read_text())
TRADES = json.loads((FIXTURES / "trades.json").read_text())
LEADER = ACTIVITY[0]["proxy_wallet"]
OTHER = TRADES[1]["proxy_wallet"]
SETTINGS = Settings(data_api_url="http://data-api.test", data_api_page_limit=2, data_api_lookback_s=60)

from tests.unit.test_venue_data_api import camel  # noqa: E402  (the classic camelCase form of a v2 row)


def trade(
    n: int,
    ts: int,
    *,
    wallet: str = LEADER,
    side: str = "BUY",
    size=10,
    price=0.5,
    kind="TRADE",
    token: str = "1234567",
    **extra,
) -> dict:
    return {
        "proxy_wallet": wallet,
        "timestamp": ts,
        "type": kind,
        "transaction_hash": "0x" + f"{n:064x}",
        "token_id": token,
        "condition_id": "0x" + "cd" * 32,
        "side": side,
        "size": size,
        "price": price,
        "usdc_size": round(size * price, 6),
        **extra,
    }


def ids(records):
    return [r["envelope"]["event_id"] for r in records]


def expected_id(row):
    return leader_fill_id(
        row.get("transaction_hash") or row["transactionHash"],
        row.get("proxy_wallet") or row["proxyWallet"],
        row.get("token_id") or row["asset"],
        row["side"],
    )


def run(stand: DataApiStandIn, body, **kw):
    async def main():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stand.app), base_url="http://data-api.test"
        ) as client:
            source = DataApiSource(SETTINGS, client, [LEADER], **kw)
            return await body(source)

    return asyncio.run(main())


def test_fixture_rows_map_to_the_chain_event_ids():
    stand = DataApiStandIn([*ACTIVITY, *TRADES])
    records = run(stand, lambda s: s.fetch_leader(LEADER))
    assert sorted(ids(records)) == sorted(expected_id(r) for r in ACTIVITY)
    assert all(r["envelope"]["source"] == "data-api" and r["leader"] == LEADER for r in records)
    path, params = stand.requests[0]
    assert path == "/v2/activity" and params["user"] == LEADER and params["type"] == "TRADE"


def test_cursor_paging_reads_every_page():
    rows = [trade(i, 1_700_000_000 + i) for i in range(7)]
    stand = DataApiStandIn(rows)
    records = run(stand, lambda s: s.fetch_leader(LEADER))
    assert sorted(ids(records)) == sorted(expected_id(r) for r in rows)
    assert len(stand.requests) == 4  # 2 + 2 + 2 + 1
    assert "cursor" not in stand.requests[0][1]
    cursors = [p["cursor"] for _, p in stand.requests[1:]]
    assert len(set(cursors)) == 3 and all(p["limit"] == "2" for _, p in stand.requests)


def test_rows_of_one_fill_on_different_pages_are_summed_into_one_event():
    rows = [
        trade(1, 1_700_000_000, size=3),
        trade(1, 1_700_000_000, size=4),
        trade(1, 1_700_000_000, size=5),
        trade(2, 1_700_000_001, side="SELL"),
    ]
    stand = DataApiStandIn(rows)
    records = run(stand, lambda s: s.fetch_leader(LEADER))
    by_id = {r["envelope"]["event_id"]: r for r in records}
    assert len(records) == 2 and len(stand.requests) == 2
    assert by_id[expected_id(rows[0])]["shares_e6"] == 12_000_000
    assert by_id[expected_id(rows[0])]["collateral_e6"] == 6_000_000


def test_since_ts_stops_paging_and_drops_older_fills():
    rows = [trade(i, 1_700_000_000 + 10 * i) for i in range(10)]
    stand = DataApiStandIn(rows)
    records = run(stand, lambda s: s.fetch_leader(LEADER, since_ts=1_700_000_070))
    assert sorted(ids(records)) == sorted(expected_id(r) for r in rows[7:])
    assert all(p["start"] == "1700000070" for _, p in stand.requests)
    assert len(stand.requests) == 2


def test_since_ts_holds_even_if_the_server_ignores_start():
    rows = [trade(i, 1_700_000_000 + 10 * i) for i in range(10)]
    stand = DataApiStandIn(rows)
    calls = []

    async def handler(request: httpx.Request) -> httpx.Response:  # drops `start` before the stand-in sees it
        calls.append(request.url)
        url = request.url.copy_remove_param("start")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stand.app)) as inner:
            return await inner.get(url)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await DataApiSource(SETTINGS, client, [LEADER]).fetch_leader(LEADER, since_ts=1_700_000_065)

    records = asyncio.run(main())
    assert sorted(ids(records)) == sorted(expected_id(r) for r in rows[7:])
    assert len(calls) == 3  # pages (90,80) (70,60) (50,40): the third is wholly older -> stop


def test_non_trade_rows_are_skipped_and_bad_rows_reported():
    rows = [
        trade(1, 1_700_000_001),
        trade(2, 1_700_000_002, kind="REDEEM"),
        trade(3, 1_700_000_003, kind="SPLIT"),
        trade(4, 1_700_000_004, side="HOLD"),
    ]
    stand = DataApiStandIn(rows)
    bad = []
    # ask the stand-in for every activity type so the source sees (and skips) the non-trade rows
    stand_rows = run(stand, lambda s: s.fetch_rows(LEADER))
    assert [r["type"] for r in stand_rows] == ["TRADE", "TRADE"]  # type=TRADE is sent

    async def body(source):
        source._request = lambda leader, since: ("/v2/activity", {"user": leader, "limit": 10})
        return await source.fetch_leader(LEADER)

    records = run(stand, body, on_bad_row=lambda row, err: bad.append((row, err)))
    assert ids(records) == [expected_id(rows[0])]
    assert len(bad) == 1 and bad[0][0]["side"] == "HOLD" and "side" in str(bad[0][1])


def test_trades_endpoint_asks_for_maker_fills_too():
    rows = [
        trade(1, 1_700_000_001, _role="TAKER"),
        trade(2, 1_700_000_002, _role="MAKER"),
        trade(3, 1_700_000_003, kind="REDEEM"),
    ]
    stand = DataApiStandIn(rows)
    records = run(stand, lambda s: s.fetch_leader(LEADER), endpoint="trades")
    assert sorted(ids(records)) == sorted(expected_id(r) for r in rows[:2])
    path, params = stand.requests[0]
    assert path == "/v2/trades" and params["taker_only"] == "false" and "offset" not in params


@pytest.mark.parametrize("endpoint", ["classic-activity", "classic-trades"])
def test_classic_camel_case_rows_give_the_same_event_ids(endpoint):
    rows = [trade(i, 1_700_000_000 + i, side="SELL" if i % 2 else "BUY") for i in range(5)]
    v2 = run(DataApiStandIn(rows), lambda s: s.fetch_leader(LEADER))
    stand = DataApiStandIn([camel(r) for r in rows])
    classic = run(stand, lambda s: s.fetch_leader(LEADER), endpoint=endpoint)
    assert ids(classic) == ids(v2) and len(classic) == 5
    assert [r["shares_e6"] for r in classic] == [r["shares_e6"] for r in v2]
    assert [int(p["offset"]) for _, p in stand.requests] == [0, 2, 4]
    assert stand.requests[0][0] == ("/activity" if endpoint == "classic-activity" else "/trades")


def test_stand_in_rejects_offset_on_v2_and_bad_cursor():
    stand = DataApiStandIn([trade(1, 1_700_000_000)])

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stand.app), base_url="http://x") as c:
            return [
                (await c.get("/v2/activity", params=p)).status_code
                for p in ({"user": LEADER, "offset": 0}, {"user": LEADER, "cursor": "nope"}, {})
            ]

    assert asyncio.run(main()) == [400, 400, 400]


def test_http_error_raises_from_fetch_and_is_retried_by_poll():
    rows = [trade(1, 1_700_000_000)]
    stand = DataApiStandIn(rows)
    emitted = []

    async def body(source):
        stand.fail_next = 1
        with pytest.raises(httpx.HTTPStatusError):
            await source.fetch_leader(LEADER)
        stand.fail_next = 1
        assert await source.poll_once(emitted.append) == 0
        assert await source.poll_once(emitted.append) == 1

    run(stand, body)
    assert [ids(batch) for batch in emitted] == [[expected_id(rows[0])]]


def test_poll_forever_emits_each_round_and_reads_from_the_watermark():
    rows = [trade(1, 1_700_000_000), trade(2, 1_700_000_100)]
    stand = DataApiStandIn(rows)
    emitted = []

    async def body(source):
        stop = asyncio.Event()

        async def emit(records):  # an async emit, like FillSink.emit
            emitted.append(ids(records))
            if len(emitted) == 1:
                stand.add(trade(3, 1_700_000_200), trade(4, 1_700_000_050, wallet=OTHER))
            else:
                stop.set()

        await asyncio.wait_for(source.poll_forever(emit, interval_s=0.01, stop_event=stop), 10)
        return source

    source = run(stand, body)
    assert emitted[0] == [expected_id(rows[0]), expected_id(rows[1])]
    # second round starts lookback_s (60) before the newest fill seen (…100): re-reads row 2, the sink dedupes
    assert stand.requests[-1][1]["start"] == str(1_700_000_100 - 60)
    assert emitted[1] == [expected_id(rows[1]), expected_id(trade(3, 1_700_000_200))]
    assert source.newest_seen[LEADER] == 1_700_000_200


def test_failed_emit_does_not_advance_the_watermark():
    stand = DataApiStandIn([trade(1, 1_700_000_000)])

    async def body(source):
        def emit(records):
            raise RuntimeError("kafka down")

        with pytest.raises(RuntimeError):
            await source.poll_once(emit)
        return source.newest_seen

    assert run(stand, body) == {}


def test_one_leaders_poisoned_rows_are_reported_and_every_other_fill_keeps_flowing():
    """D14: leader B's rows hold a `1e30` timestamp (it used to pass parsing and break the round's encode)
    and two 9e12-share rows of one transaction (their sum overflows: aggregate raised for the whole leader,
    and the round failed). A's fills and B's good fill are emitted; B's bad rows go to on_bad_row, once each
    however many rounds see them again."""
    from horus.codec import default_codec

    good_a = [trade(1, 1_700_000_001), trade(2, 1_700_000_002, side="SELL")]
    far = trade(3, "1e30", wallet=OTHER)
    huge = [
        trade(4, 1_700_000_004, wallet=OTHER, size=9e12, price=0.5),
        trade(4, 1_700_000_004, wallet=OTHER, size=9e12, price=0.6),
    ]
    good_b = trade(5, 1_700_000_005, wallet=OTHER)
    stand = DataApiStandIn([*good_a, far, *huge, good_b])
    emitted, bad = [], []

    async def body(source):
        source.leaders = [LEADER, OTHER]
        for _ in range(2):
            assert await source.poll_once(emitted.append) == 3

    run(stand, body, on_bad_row=lambda row, err: bad.append((row, err)))
    assert [sorted(ids(batch)) for batch in emitted] == 2 * [sorted(expected_id(r) for r in (*good_a, good_b))]
    for batch in emitted:
        for record in batch:
            default_codec().encode("LeaderFill", record)
    assert len(bad) == 3, bad
    reported = {json.dumps(row, sort_keys=True): str(err) for row, err in bad}
    assert "timestamp" in reported[json.dumps(far, sort_keys=True)]
    assert all("2^63-1" in reported[json.dumps(row, sort_keys=True)] for row in huge)
