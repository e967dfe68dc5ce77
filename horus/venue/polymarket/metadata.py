"""A TTL cache of :class:`~horus.venue.polymarket.markets.MarketInfo` per outcome token, filled from
Gamma (first) and CLOB REST (fallback), with live tick-size changes applied.

Lookup of one token (each step one HTTP GET):

1. Gamma ``GET {gamma_url}/markets?clob_token_ids={token}`` -> a list of Gamma markets; the market whose
   trading ids (``clobTokenIds``, or ``positionIds`` for ``version == "v2"``) contain the token.
   Assumption (platform notes 8.5 list ``/markets?...`` without naming the filter): ``clob_token_ids`` is
   Gamma's token filter; a Protocol-V2 position id may not match it, hence step 2.
2. Otherwise CLOB ``GET {clob_url}/markets-by-token/{token}`` -> ``condition_id`` (404/400: the token is
   unknown), then ``GET {clob_url}/markets/{condition_id}`` for tokens, tick, min size, neg risk and
   version, and ``GET {clob_url}/clob-markets/{condition_id}`` for the fee schedule ``fd`` (best effort:
   if that call fails only the legacy base fees of ``/markets`` are kept, and the fee is unknown).

Every token of the fetched market is cached, so the sibling outcome costs no request.

Behaviour callers can rely on:

- :meth:`MarketMetadata.get` never raises: an unknown token gives ``None`` (and counts
  ``horus_market_metadata_unknown_total``; the "unknown" answer is remembered for
  ``market_unknown_ttl_s`` so a flood of fills on a brand-new token does not hammer the APIs). An HTTP
  error or a malformed body is logged and counted (``horus_market_metadata_errors_total``), nothing is
  cached, the next ``get`` tries again; meanwhile an expired entry, if any, is served.
- Entries live ``market_metadata_ttl_s``; an expired entry is fetched again on the next ``get``.
- One request chain in flight per token: concurrent ``get`` calls for a token share it (a caller that is
  cancelled does not cancel it for the others).
- :meth:`MarketMetadata.apply_tick_size_change` applies a market-channel ``tick_size_change`` at once to
  the token and to the other cached tokens of the same condition (tick size is a market property). A
  live change also wins over REST bodies for one TTL after it arrived (Gamma/CLOB bodies can lag the
  socket); after that the REST value is taken again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import httpx
from prometheus_client import Counter

from horus.domain.market import FeeParams, MarketInfo
from horus.settings import Settings
from horus.venue.polymarket.markets import (
    MarketDataError,
    TickSizeChange,
    parse_clob_market,
    parse_clob_market_compact,
    parse_gamma_markets,
    parse_market_by_token,
    parse_tick_size_change,
)

__all__ = ["MarketMetadata", "METADATA_REQUESTS", "METADATA_UNKNOWN", "METADATA_ERRORS", "TICK_SIZE_CHANGES"]

log = logging.getLogger(__name__)

METADATA_REQUESTS = Counter(
    "horus_market_metadata_requests_total", "HTTP requests for market metadata", ["service", "status"]
)
METADATA_UNKNOWN = Counter(
    "horus_market_metadata_unknown_total", "Token lookups that found no market (or an invalid token id)"
)
METADATA_ERRORS = Counter(
    "horus_market_metadata_errors_total", "Market metadata lookups that failed (HTTP error or malformed body)", ["kind"]
)
TICK_SIZE_CHANGES = Counter("horus_market_tick_size_changes_total", "tick_size_change messages applied")


class _NotFound(Exception):
    pass


@dataclass
class _Entry:
    info: MarketInfo | None  # None: known to be unknown
    expires_at: float


def _token_key(token_id: Any) -> str | None:
    text = str(token_id).strip() if isinstance(token_id, (str, int)) and not isinstance(token_id, bool) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 80 or int(text) == 0 or int(text) >= 2**256:
        return None
    return str(int(text))


class MarketMetadata:
    """Market metadata by outcome token id; see the module docstring for the lookup and cache rules."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        ttl_s: float | None = None,
        unknown_ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._gamma = settings.gamma_url.rstrip("/")
        self._clob = settings.clob_url.rstrip("/")
        self._client = client
        self.ttl_s = settings.market_metadata_ttl_s if ttl_s is None else ttl_s
        self.unknown_ttl_s = settings.market_unknown_ttl_s if unknown_ttl_s is None else unknown_ttl_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[MarketInfo | None]] = {}
        self._ticks: dict[str, tuple[Decimal, float]] = {}  # token -> (live tick, when applied)

    # ------------------------------------------------------------------ public

    async def get(self, token_id: str) -> MarketInfo | None:
        """The token's market info, fetched if missing or expired; None if the token is unknown (or the
        lookup failed and nothing was cached). Never raises for lookup failures."""
        token = _token_key(token_id)
        if token is None:
            METADATA_UNKNOWN.inc()
            log.warning("market metadata: %r is not a token id", token_id)
            return None
        entry = self._entries.get(token)
        if entry is not None and entry.expires_at > self._clock():
            return entry.info
        task = self._inflight.get(token)
        if task is None:
            task = asyncio.ensure_future(self._load(token))
            self._inflight[token] = task
            task.add_done_callback(functools.partial(self._forget_inflight, token))
        return await asyncio.shield(task)

    def peek(self, token_id: str) -> MarketInfo | None:
        """The cached info (even if expired) without any request."""
        token = _token_key(token_id)
        entry = self._entries.get(token) if token else None
        return None if entry is None else entry.info

    def known_tokens(self) -> list[str]:
        """Tokens with cached market info (what the market channel should watch)."""
        return [token for token, entry in self._entries.items() if entry.info is not None]

    def put(self, info: MarketInfo) -> None:
        """Seed the cache (tests, or a bulk loader)."""
        self._store([info])

    def invalidate(self, token_id: str) -> None:
        token = _token_key(token_id)
        if token:
            self._entries.pop(token, None)

    def apply_tick_size_change(self, msg: Mapping[str, Any] | TickSizeChange) -> TickSizeChange | None:
        """Apply a market-channel ``tick_size_change`` (raw message or parsed) to the cache at once.
        Returns the parsed change, or None (logged, counted) when the message is malformed."""
        if isinstance(msg, TickSizeChange):
            change = msg
        else:
            try:
                change = parse_tick_size_change(msg)
            except MarketDataError as exc:
                METADATA_ERRORS.labels("bad-tick-size-change").inc()
                log.warning("market metadata: ignoring tick_size_change: %s", exc)
                return None
        now = self._clock()
        tokens = {change.token_id}
        own = self._entries.get(change.token_id)
        condition = change.condition_id or (own.info.condition_id if own and own.info else None)
        if condition:
            tokens |= {t for t, e in self._entries.items() if e.info is not None and e.info.condition_id == condition}
        for token in tokens:
            self._ticks[token] = (change.new_tick_size, now)
            entry = self._entries.get(token)
            if entry is not None and entry.info is not None:
                entry.info = entry.info.with_tick_size(change.new_tick_size)
        TICK_SIZE_CHANGES.inc()
        log.info(
            "market metadata: tick size of %s (%s) %s -> %s",
            change.token_id,
            condition or "?",
            change.old_tick_size,
            change.new_tick_size,
        )
        return change

    # ------------------------------------------------------------------ internals

    def _forget_inflight(self, token: str, done: asyncio.Future[MarketInfo | None]) -> None:
        if self._inflight.get(token) is done:
            del self._inflight[token]

    def _store(self, infos: list[MarketInfo]) -> None:
        now = self._clock()
        for info in infos:
            live = self._ticks.get(info.token_id)
            if live is not None:
                tick, applied_at = live
                if now - applied_at < self.ttl_s:
                    info = replace(info, tick_size=tick)
                else:
                    del self._ticks[info.token_id]
            self._entries[info.token_id] = _Entry(info, now + self.ttl_s)

    async def _load(self, token: str) -> MarketInfo | None:
        stale = self._entries.get(token)
        try:
            infos = await self._lookup(token)
        except httpx.HTTPError as exc:
            METADATA_ERRORS.labels("http").inc()
            log.warning(
                "market metadata: lookup of token %s failed, retrying on next use: %s: %s",
                token,
                type(exc).__name__,
                exc,
            )
            return stale.info if stale else None
        except (MarketDataError, ValueError) as exc:  # ValueError: a body that is not JSON
            METADATA_ERRORS.labels("bad-body").inc()
            log.warning(
                "market metadata: lookup of token %s got a malformed body, retrying on next use: %s", token, exc
            )
            return stale.info if stale else None
        except Exception:  # never let a lookup bug reach the caller
            METADATA_ERRORS.labels("internal").inc()
            log.exception("market metadata: lookup of token %s failed", token)
            return stale.info if stale else None
        mine = next((i for i in infos if i.token_id == token), None)
        if mine is None:
            METADATA_UNKNOWN.inc()
            log.warning("market metadata: token %s is unknown to Gamma and the CLOB", token)
            self._entries[token] = _Entry(None, self._clock() + self.unknown_ttl_s)
            return None
        self._store(infos)
        return self._entries[token].info

    async def _lookup(self, token: str) -> list[MarketInfo]:
        """Gamma first, then the CLOB; [] when neither knows the token. If Gamma failed and the CLOB does
        not know the token either, Gamma's error is raised: "unknown" would be a guess."""
        gamma_error: Exception | None = None
        try:
            infos = await self._from_gamma(token)
        except (httpx.HTTPError, MarketDataError, ValueError) as exc:  # the CLOB may still know the market
            gamma_error, infos = exc, []
            log.warning(
                "market metadata: Gamma lookup of %s failed (%s: %s); asking the CLOB", token, type(exc).__name__, exc
            )
        if any(i.token_id == token for i in infos):
            return infos
        try:
            return await self._from_clob(token)
        except _NotFound:
            if gamma_error is not None:
                raise gamma_error from None
            return []

    async def _get_json(
        self, service: str, url: str, params: Mapping[str, str] | None = None, not_found: tuple[int, ...] = (404,)
    ) -> Any:
        response = await self._client.get(url, params=params)
        METADATA_REQUESTS.labels(service, str(response.status_code)).inc()
        if response.status_code in not_found:
            raise _NotFound(url)
        response.raise_for_status()
        try:
            return response.json()
        except json.JSONDecodeError as exc:
            raise MarketDataError(f"{service} {url}: body is not JSON: {exc}") from None

    async def _from_gamma(self, token: str) -> list[MarketInfo]:
        """Gamma's answer, or [] when Gamma is off (empty gamma_url) or does not know the token."""
        if not self._gamma:
            return []
        try:
            return parse_gamma_markets(
                await self._get_json("gamma", f"{self._gamma}/markets", {"clob_token_ids": token})
            )
        except _NotFound:
            return []

    async def _from_clob(self, token: str) -> list[MarketInfo]:
        condition_id = parse_market_by_token(
            await self._get_json("clob", f"{self._clob}/markets-by-token/{token}", not_found=(400, 404))
        )
        infos = parse_clob_market(await self._get_json("clob", f"{self._clob}/markets/{condition_id}"))
        try:
            compact = parse_clob_market_compact(
                await self._get_json("clob", f"{self._clob}/clob-markets/{condition_id}")
            )
        except (httpx.HTTPError, MarketDataError, ValueError, _NotFound) as exc:
            # the legacy base fees of /markets are no V2 rate: the fee stays unknown (FeeParams.known is
            # False) and decide SKIPs BUYs with FEE_UNKNOWN rather than size them with a fee of 0
            log.warning(
                "market metadata: no fee schedule for %s from /clob-markets (%s); fee unknown", condition_id, exc
            )
            return infos
        fees = {c.token_id: c.fees for c in compact}
        return [replace(i, fees=_merge_fees(i, fees.get(i.token_id))) for i in infos]


def _merge_fees(info: MarketInfo, compact: FeeParams | None) -> FeeParams | None:
    if compact is None:
        return info.fees
    base = info.fees
    return replace(
        compact,
        maker_base_fee_bps=compact.maker_base_fee_bps
        if compact.maker_base_fee_bps is not None
        else (base.maker_base_fee_bps if base else None),
        taker_base_fee_bps=compact.taker_base_fee_bps
        if compact.taker_base_fee_bps is not None
        else (base.taker_base_fee_bps if base else None),
    )
