"""decide's I/O before each batch: market rules (MarketMetadata), order-book quotes (QuoteSource, TTL <= 5 s) and
follower balances (VenueBalances or FixedBalances), fetched concurrently for the batch's candidates on a private
asyncio loop thread, each with one request in flight per key, into the view the pure decide reads."""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal

import httpx

from horus.domain.decide import StaticView
from horus.venue.guard import require_venue
from horus.venue.polymarket.metadata import MarketMetadata
from horus.venue.polymarket.quotes import FixedBalances, QuoteSource, VenueBalances
from streams.runtime import Runtime

log = logging.getLogger("horus.streams.decide")


class VenueLookups:
    """Market data and balances, fetched on a private asyncio loop thread for each batch."""

    def __init__(self, runtime: Runtime, view: StaticView) -> None:
        settings = runtime.settings
        # paper reads market data and balances from the simulator only, never a real venue
        identity = require_venue(settings)
        self.view, self.timeout_s = view, settings.decide_lookup_timeout_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="horus-decide-venue", daemon=True)
        self.thread.start()
        self.balances: FixedBalances | VenueBalances  # set by build() below, before __init__ returns
        self.paper_markets = None  # paper: the simulator's markets follow the leaders' fills (horus.venue.paper)
        self.settings = settings

        async def build():
            from horus.venue.polymarket.clob import ClobHttp

            self.http = httpx.AsyncClient(timeout=settings.venue_timeout_s)
            self.metadata = MarketMetadata(settings, self.http)
            self.clob = ClobHttp(
                settings.clob_url, chain_id=settings.venue_chain_id, timeout_s=settings.venue_timeout_s
            )
            self.quotes = QuoteSource(self.clob, settings.quote_ttl_s)
            if identity is not None and identity.get("follow_leaders") is True:  # an empty paper venue
                from horus.venue.paper import PaperMarkets

                self.paper_markets = PaperMarkets(settings.clob_url, self.http)
            if settings.balance_source == "fixed":
                self.balances = FixedBalances(int(Decimal(settings.fixed_balance) * 1_000_000))
            else:
                self.balances = VenueBalances(self.clob, self._accounts().get, settings.balance_ttl_s)

        asyncio.run_coroutine_threadsafe(build(), self.loop).result(10)

    def _accounts(self):
        """Signer and API credentials per follower, from the store's API-credentials records only: decide reads
        balances, it never signs, so it never decrypts a signing key (in paper mode the records hold the
        simulator's credentials, derived when the credentials were stored)."""
        from horus.credentials import ApiAccounts, CredentialStore

        store = CredentialStore(self.settings) if self.settings.credentials_key else None
        return ApiAccounts(self.view.config.followers.get, store)

    def prefetch(self, candidates: list[dict]) -> None:
        tokens = {c["token_id"] for c in candidates}
        accounts = {}
        sells: dict[str, set[str]] = {}
        for c in candidates:
            account = self.view.config.followers.get(c["follower"])
            if account is not None:
                accounts[account.follower] = account
                if c["side"] == "SELL":
                    sells.setdefault(account.follower, set()).add(c["token_id"])

        self.view.balances.clear()  # never decide on a balance read for an earlier batch: missing -> SKIP

        async def gather():
            if self.paper_markets is not None:  # first, so the lookups below see the market where the leader traded
                for moved in await self.paper_markets.follow(candidates):
                    self.quotes.cache.forget(moved)

            async def market(t: str) -> None:
                info = await self.metadata.get(t)
                if info is None:  # unknown token (or a failed lookup): absent from the view, which decide reads as None
                    self.view.markets.pop(t, None)
                else:
                    self.view.markets[t] = info

            async def quote(t: str) -> None:
                book = await self.quotes.get(t)
                if book is None:  # no quote: absent from the view, which decide reads as None
                    self.view.quotes.pop(t, None)
                else:
                    self.view.quotes[t] = book

            async def balance(a):
                self.view.balances[a.follower] = await self.balances.get(a, sorted(sells.get(a.follower, ())))

            await asyncio.gather(
                *(market(t) for t in tokens), *(quote(t) for t in tokens), *(balance(a) for a in accounts.values())
            )

        future = asyncio.run_coroutine_threadsafe(gather(), self.loop)
        try:
            future.result(self.timeout_s)
        except TimeoutError:  # decide with what arrived: a missing price or balance is a SKIP, never a guess
            future.cancel()
            log.warning(
                "market data / balances for %d tokens, %d followers took over %.1fs",
                len(tokens),
                len(accounts),
                self.timeout_s,
            )

    def close(self) -> None:
        async def shut():
            await self.http.aclose()
            await self.clob.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        except Exception:  # pragma: no cover - best effort at shutdown
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
