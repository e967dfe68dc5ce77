"""MarketMetadata: TTL cache over Gamma / CLOB stand-ins (httpx.MockTransport and one real local server)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

from horus.settings import Settings
from horus.venue.polymarket.metadata import MarketMetadata

CAPTURED = Path("/work/shared/fixtures/polymarket/nautilus_trader/captured")
GAMMA = json.loads((CAPTURED / "crates_test_data" / "gamma_market.json").read_text())
UP, DOWN = json.loads(GAMMA["clobTokenIds"])
CLOB_MARKET = json.loads((CAPTURED / "py_http_responses" / "market.json").read_text())
CLOB_YES = CLOB_MARKET["tokens"][0]["token_id"]
TICK_MSG = json.loads((CAPTURED / "crates_test_data" / "ws_market_tick_size_msg.json").read_text())

SETTINGS = Settings(
    gamma_url="http://gamma.test", clob_url="http://clob.test", market_metadata_ttl_s=60, market_unknown_ttl_s=5
)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class StandIn:
    """Gamma + CLOB routes for a few markets; counts requests by path."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.gamma = [GAMMA]
        self.fail_next = 0
        self.compact: dict | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.host + request.url.path] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next:
            self.fail_next -= 1
            return httpx.Response(503, json={"error": "busy"})
        host, path = request.url.host, request.url.path
        if host == "gamma.test" and path == "/markets":
            token = request.url.params.get("clob_token_ids")
            return httpx.Response(200, json=[m for m in self.gamma if token in json.loads(m["clobTokenIds"])])
        if host == "clob.test":
            cid = CLOB_MARKET["condition_id"]
            if path.startswith("/markets-by-token/"):
                token = path.rsplit("/", 1)[1]
                if token in {t["token_id"] for t in CLOB_MARKET["tokens"]}:
                    return httpx.Response(200, json={"condition_id": cid})
                return httpx.Response(404, json={"error": "market not found"})
            if path == f"/markets/{cid}":
                return httpx.Response(200, json=CLOB_MARKET)
            if path == f"/clob-markets/{cid}" and self.compact is not None:
                return httpx.Response(200, json=self.compact)
        return httpx.Response(404, json={"error": "not found"})


def metric(name, labels=None):
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def run(coro):
    return asyncio.run(coro)


async def with_cache(handler, clock=None, **kw):
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return client, MarketMetadata(SETTINGS, client, clock=clock or FakeClock(), **kw)


def test_gamma_lookup_caches_both_outcomes():
    async def main():
        stand = StandIn()
        client, cache = await with_cache(stand)
        async with client:
            up = await cache.get(UP)
            down = await cache.get(DOWN)
            again = await cache.get(int(UP))
        assert (up.outcome, down.outcome, up.source) == ("Up", "Down", "gamma")
        assert up.tick_size == Decimal("0.01") and up.condition_id == GAMMA["conditionId"]
        assert again is up
        assert stand.calls == {"gamma.test/markets": 1}

    run(main())


def test_ttl_expiry_refetches():
    async def main():
        stand, clock = StandIn(), FakeClock()
        client, cache = await with_cache(stand, clock)
        async with client:
            await cache.get(UP)
            clock.now += 59
            await cache.get(UP)
            assert stand.calls["gamma.test/markets"] == 1
            clock.now += 2
            stand.gamma = [GAMMA | {"orderPriceMinTickSize": 0.001}]
            info = await cache.get(UP)
            assert stand.calls["gamma.test/markets"] == 2 and info.tick_size == Decimal("0.001")

    run(main())


def test_concurrent_gets_share_one_request():
    async def main():
        stand = StandIn(delay=0.05)
        client, cache = await with_cache(stand)
        async with client:
            results = await asyncio.gather(*(cache.get(UP) for _ in range(20)), cache.get(DOWN))
        assert len({id(r) for r in results[:20]}) == 1 and results[20].outcome == "Down"
        # UP's lookup is shared by all 20 askers; DOWN asked concurrently before UP's answer cached it
        assert stand.calls["gamma.test/markets"] == 2

    run(main())


def test_cancelled_asker_does_not_cancel_the_shared_lookup():
    async def main():
        stand = StandIn(delay=0.05)
        client, cache = await with_cache(stand)
        async with client:
            first = asyncio.ensure_future(cache.get(UP))
            await asyncio.sleep(0.01)
            second = asyncio.ensure_future(cache.get(UP))
            first.cancel()
            info = await second
        assert info.outcome == "Up" and stand.calls["gamma.test/markets"] == 1

    run(main())


def test_clob_fallback_for_a_token_gamma_does_not_know():
    async def main():
        stand = StandIn()
        stand.compact = {
            "c": CLOB_MARKET["condition_id"],
            "t": [{"t": t["token_id"], "o": t["outcome"]} for t in CLOB_MARKET["tokens"]],
            "mts": 0.001,
            "nr": True,
            "fd": {"r": 0.04, "e": 1, "to": True},
        }
        client, cache = await with_cache(stand)
        async with client:
            info = await cache.get(CLOB_YES)
        assert info.outcome == "Yes" and info.neg_risk is True and info.source == "clob"
        assert info.tick_size == Decimal("0.001") and info.min_order_size == Decimal(5)
        assert info.fees.rate == Decimal("0.04") and info.fees.taker_base_fee_bps == 0
        assert set(stand.calls) == {
            "gamma.test/markets",
            f"clob.test/markets-by-token/{CLOB_YES}",
            f"clob.test/markets/{CLOB_MARKET['condition_id']}",
            f"clob.test/clob-markets/{CLOB_MARKET['condition_id']}",
        }

    run(main())


def test_gamma_down_still_finds_a_market_the_clob_knows():
    async def main():
        stand = StandIn()
        stand.fail_next = 1  # the first request (Gamma) fails
        client, cache = await with_cache(stand)
        async with client:
            info = await cache.get(CLOB_YES)
        assert info is not None and info.outcome == "Yes" and info.source == "clob"

    run(main())


def test_unknown_token_is_none_and_counted_and_remembered_briefly():
    async def main():
        stand, clock = StandIn(), FakeClock()
        client, cache = await with_cache(stand, clock)
        before = metric("horus_market_metadata_unknown_total")
        async with client:
            assert await cache.get("123456789") is None
            assert await cache.get("123456789") is None
            assert stand.calls["gamma.test/markets"] == 1
            clock.now += 6
            assert await cache.get("123456789") is None
            assert stand.calls["gamma.test/markets"] == 2
            assert await cache.get("not-a-token") is None
        assert metric("horus_market_metadata_unknown_total") == before + 3

    run(main())


def test_http_error_is_counted_not_cached_and_retried():
    async def main():
        stand, clock = StandIn(), FakeClock()
        client, cache = await with_cache(stand, clock)
        before = metric("horus_market_metadata_errors_total", {"kind": "http"})
        async with client:
            stand.fail_next = 1
            assert await cache.get(UP) is None
            assert metric("horus_market_metadata_errors_total", {"kind": "http"}) == before + 1
            info = await cache.get(UP)
            assert info.outcome == "Up"
            # an expired entry is served while the venue is down
            clock.now += 61
            stand.fail_next = 1
            assert await cache.get(UP) is info
            assert (await cache.get(UP)).outcome == "Up"
        assert stand.calls["gamma.test/markets"] == 4

    run(main())


def test_malformed_body_is_an_error_not_an_exception():
    async def handler(request):
        return httpx.Response(200, json=[GAMMA | {"clobTokenIds": "oops"}])

    async def main():
        client, cache = await with_cache(handler)
        before = metric("horus_market_metadata_errors_total", {"kind": "bad-body"})
        async with client:
            assert await cache.get(UP) is None
        assert metric("horus_market_metadata_errors_total", {"kind": "bad-body"}) == before + 1

    run(main())


def test_tick_size_change_applies_at_once_to_the_market():
    async def main():
        stand, clock = StandIn(), FakeClock()
        client, cache = await with_cache(stand, clock)
        async with client:
            await cache.get(UP)
            change = cache.apply_tick_size_change(
                TICK_MSG | {"asset_id": UP, "market": GAMMA["conditionId"], "new_tick_size": "0.001"}
            )
            assert change.new_tick_size == Decimal("0.001")
            assert (await cache.get(UP)).tick_size == Decimal("0.001")
            assert (await cache.get(DOWN)).tick_size == Decimal("0.001")  # sibling cached with UP
            assert stand.calls["gamma.test/markets"] == 1
            # a refetch within the TTL after the change keeps the live value (REST bodies can lag)
            cache.invalidate(UP)
            assert (await cache.get(UP)).tick_size == Decimal("0.001")
            # later, the REST value counts again
            clock.now += 61
            assert (await cache.get(UP)).tick_size == Decimal("0.01")
            assert cache.apply_tick_size_change({"event_type": "tick_size_change"}) is None

    run(main())


def test_tick_size_change_before_first_lookup_and_for_unrelated_token():
    async def main():
        stand = StandIn()
        client, cache = await with_cache(stand)
        async with client:
            cache.apply_tick_size_change(
                TICK_MSG | {"asset_id": DOWN, "market": GAMMA["conditionId"], "new_tick_size": "0.001"}
            )
            assert (await cache.get(DOWN)).tick_size == Decimal("0.001")
            assert (await cache.get(UP)).tick_size == Decimal("0.01")
            cache.apply_tick_size_change(TICK_MSG)  # the captured message: a token we never looked up
            assert cache.peek(TICK_MSG["asset_id"]) is None

    run(main())


def test_against_a_real_local_http_server():
    hits = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits[self.path.split("?")[0]] += 1
            body = json.dumps([GAMMA]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"

        async def main():
            async with httpx.AsyncClient(timeout=10) as client:
                cache = MarketMetadata(SETTINGS.model_copy(update={"gamma_url": url}), client)
                return await asyncio.gather(*(cache.get(UP) for _ in range(10)))

        results = run(main())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert all(r.outcome == "Up" for r in results) and hits == {"/markets": 1}
