"""Quotes and balances for decide, read from the CLOB simulator (in this process, no stack needed)."""

from __future__ import annotations

import asyncio
import base64
import secrets
from decimal import Decimal

import httpx
import pytest

from horus.domain.config import FollowerConfig
from horus.execution.accounts import Accounts
from horus.venue.cache import SingleFlightCache
from horus.venue.polymarket.clob import ClobHttp
from horus.venue.polymarket.orders import address_of
from horus.venue.polymarket.quotes import QuoteSource, VenueBalances, parse_book
from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
CONDITION = "0x" + "c0" * 32


@pytest.fixture(scope="module")
def sim():
    market = MarketConfig(
        condition_id=CONDITION,
        tokens=[TokenConfig(token_id=TOKEN, price="0.5")],
        tick_size="0.01",
        levels=3,
        level_size=100,
    )
    with run_simulator(SimulatorConfig(markets=[market])) as running:
        yield running


def test_parse_book_orders_best_first_whatever_the_venue_order():
    body = {
        "bids": [{"price": "0.48", "size": "10"}, {"price": "0.49", "size": "5"}],
        "asks": [{"price": "0.52", "size": "7"}, {"price": "0.51", "size": "3"}, {"price": "0.6", "size": "0"}],
    }
    quote = parse_book(body, 123)
    assert (quote.best_bid, quote.best_ask, quote.as_of_us) == (Decimal("0.49"), Decimal("0.51"), 123)
    assert quote.asks == ((Decimal("0.51"), 3_000_000), (Decimal("0.52"), 7_000_000))  # empty level dropped
    assert parse_book({"bids": [], "asks": []}, 1).best_bid is None


def test_quote_source_shares_requests_caps_ttl_and_knows_missing_books(sim):
    async def main():
        async with ClobHttp(sim.url) as clob:
            source = QuoteSource(clob, ttl_s=60)
            assert source.ttl_s == 5  # the setting is capped
            quotes = await asyncio.gather(*(source.get(TOKEN) for _ in range(20)))
            assert source.cache.loads == 1 and all(q is quotes[0] for q in quotes)
            assert quotes[0].best_bid <= Decimal("0.5") < quotes[0].best_ask and len(quotes[0].asks) == 3
            assert await source.get("123") is None  # no book for an unknown token

    asyncio.run(main())


def test_single_flight_cache_keeps_the_last_good_value_when_a_load_fails():
    calls = []

    async def load(key):
        calls.append(key)
        if len(calls) > 1:
            raise httpx.ConnectError("down")
        return "v1"

    async def main():
        now = [0.0]
        cache = SingleFlightCache(load, 1.0, name="t", clock=lambda: now[0])
        assert await cache.get("k") == "v1"
        now[0] = 5.0  # expired: the reload fails, the last value stands
        assert await cache.get("k") == "v1" and len(calls) == 2

    asyncio.run(main())


def test_single_flight_cache_can_pass_failures_on_and_cache_nothing():
    calls = []

    async def load(key):
        calls.append(key)
        if len(calls) == 1:
            raise ValueError("no account")
        return "ok"

    async def main():
        cache = SingleFlightCache(load, 60, name="t", keep_last_on_error=False)
        with pytest.raises(ValueError):
            await cache.get("k")
        assert await cache.get("k") == "ok" and len(calls) == 2  # the failure was not remembered
        cache.forget("k")
        assert await cache.get("k") == "ok" and len(calls) == 3

    asyncio.run(main())


def test_venue_balances_read_with_the_followers_own_derived_credentials(sim):
    key = "0x" + secrets.token_bytes(32).hex()
    follower = address_of(key).lower()
    httpx.post(
        f"{sim.url}/_sim/accounts",
        json={"address": follower, "collateral_e6": 123_450_000, "tokens_e6": {TOKEN: 7_000_000}},
        timeout=10,
    ).raise_for_status()
    config = FollowerConfig(follower=follower, credentials_ref="ref-1")

    class Secrets:
        private_key = key
        api_key, api_secret, api_passphrase = "x", base64.urlsafe_b64encode(b"x" * 32).decode(), "x"
        signer_address = follower

        def api_creds(self):  # placeholders: paper mode derives the real ones from the venue (L1)
            from horus.venue.polymarket.auth import ApiCreds

            return ApiCreds("placeholder", self.api_secret, "placeholder")

    async def main():
        async with ClobHttp(sim.url) as clob:
            accounts = Accounts({follower: config}.get, lambda ref: Secrets(), mode="paper", venue=clob)
            balances = VenueBalances(clob, accounts.get, ttl_s=3)
            balance = await balances.get(config, [TOKEN])
            assert balance.collateral_e6 == 123_450_000 and balance.token(TOKEN) == 7_000_000
            unknown = FollowerConfig(follower="0x" + "9" * 40, credentials_ref="nope")
            assert (await balances.get(unknown)).collateral_e6 is None  # logged, not raised: decide skips

    asyncio.run(main())


def test_single_flight_cache_refreshes_ahead_without_making_the_asker_wait():
    release, versions = asyncio.Event(), iter(["v1", "v2"])

    async def load(key):
        value = next(versions)
        if value == "v2":
            await release.wait()  # a slow venue
        return value

    async def main():
        now = [0.0]
        cache = SingleFlightCache(load, 1.0, name="t", clock=lambda: now[0], refresh_ahead=0.75)
        assert await cache.get("k") == "v1" and cache.loads == 1
        now[0] = 0.5
        assert await cache.get("k") == "v1" and cache.loads == 1  # young: no reload
        now[0] = 0.8  # past 3/4 of the TTL: answered at once, one reload starts behind it
        assert await asyncio.wait_for(cache.get("k"), 0.5) == "v1"
        assert await asyncio.wait_for(cache.get("k"), 0.5) == "v1" and cache.loads == 2  # one reload in flight
        release.set()
        await asyncio.sleep(0.01)
        assert await cache.get("k") == "v2" and cache.loads == 2

    asyncio.run(main())
    with pytest.raises(ValueError):  # an account must never be served stale, so no refresh-ahead there
        SingleFlightCache(load, 1.0, name="t", keep_last_on_error=False, refresh_ahead=0.5)


def test_venue_balances_pair_collateral_with_the_start_of_its_own_read():
    """decide subtracts fills newer than the balance read from the balance: a value from one read paired with
    the start time of a newer read would count fills in between as already paid for (overspend)."""
    from types import SimpleNamespace

    clock_us, reads = [10], iter([100, 200])

    class Clob:
        async def balance_allowance(self, creds, signer, asset_type, token_id=None, signature_type=0):
            if asset_type == "CONDITIONAL":
                await asyncio.sleep(0.01)  # the background collateral reload finishes meanwhile
                return SimpleNamespace(ok=True, body={"balance": "5"}, error=None)
            return SimpleNamespace(ok=True, body={"balance": str(next(reads))}, error=None)

    async def account(follower):
        return SimpleNamespace(creds=None, signer=follower, signature_type=0)

    async def main():
        balances = VenueBalances(Clob(), account, ttl_s=1.0, clock_us=lambda: clock_us[0])
        now = [0.0]
        balances.collateral._clock = lambda: now[0]
        config = FollowerConfig(follower="0x" + "1" * 40, credentials_ref="r")
        first = await balances.get(config)
        assert (first.collateral_e6, first.as_of_us) == (100, 10)
        now[0], clock_us[0] = 0.9, 20  # refresh-ahead: the old value now, a reload (started at 20) behind it
        second = await balances.get(config, ["t1"])
        assert (second.collateral_e6, second.as_of_us) == (100, 10)
        third = await balances.get(config)
        assert (third.collateral_e6, third.as_of_us) == (200, 20)

    asyncio.run(main())


def test_venue_balances_refuse_a_last_good_value_older_than_decide_remembers_fills():
    """While the venue fails, the cache answers the last good balance; past MAX_BALANCE_AGE_US that number may
    predate fills decide no longer subtracts, so there is no balance (decide skips BALANCE_UNAVAILABLE)."""
    from types import SimpleNamespace

    from horus.venue.polymarket.quotes import MAX_BALANCE_AGE_US

    now_us, reads = [1_000_000], iter([SimpleNamespace(ok=True, body={"balance": "100"}, error=None)])

    class Clob:
        async def balance_allowance(self, *args, **kwargs):
            return next(reads, SimpleNamespace(ok=False, body=None, error="HTTP 503"))

    async def account(follower):
        return SimpleNamespace(creds=None, signer=follower, signature_type=0)

    async def main():
        balances = VenueBalances(Clob(), account, ttl_s=1.0, clock_us=lambda: now_us[0])
        balances.collateral._clock = lambda: now_us[0] / 1e6
        config = FollowerConfig(follower="0x" + "1" * 40, credentials_ref="r")
        assert (await balances.get(config)).collateral_e6 == 100
        now_us[0] += 5_000_000  # expired, the reload fails: the last good value, still young enough
        assert (await balances.get(config)).collateral_e6 == 100
        now_us[0] += MAX_BALANCE_AGE_US
        assert (await balances.get(config)).collateral_e6 is None

    asyncio.run(main())
