"""Data API source: a leader's fills from Polymarket's Data API, for backfill and cross-checking the chain.

Rows are parsed by :mod:`horus.venue.polymarket.data_api` and summed by
:func:`horus.domain.fills.aggregate`, so every record has the same event id as the chain log of
the same fill (``leader_fill_id(tx, leader, token, side)``) and a sink that dedupes by event id drops the
second sighting.

Endpoints (platform notes 8.4), chosen with ``endpoint=``:

- ``"activity"`` (default): ``GET /v2/activity?user=<leader>&type=TRADE&sort_direction=DESC&limit=N
  [&start=since_ts][&cursor=...]``. Activity covers the leader's maker and taker fills.
- ``"trades"``: ``GET /v2/trades?user=<leader>&taker_only=false[&start=since_ts][&cursor=...]``;
  ``taker_only=false`` because the default (true) hides the leader's maker fills. The notes list no
  ``limit``/``sort_direction`` for this route, so none is sent (server page size and order).
- ``"classic-activity"`` / ``"classic-trades"``: ``GET /activity?user&type=TRADE&limit<=500&offset&
  sortBy=TIMESTAMP&sortDirection=DESC[&start]`` and ``GET /trades?user&takerOnly=false&limit&offset``,
  camelCase rows, offset paging (the API caps ``offset`` at 5000; deeper history needs the v2 routes).

Assumptions (the notes do not pin these down): v2 paging sends the same query plus
``cursor=<pagination.next_cursor>`` until ``pagination.has_more`` is false or ``next_cursor`` is null;
``start`` is an inclusive lower bound in seconds; ``sort_direction`` takes ``ASC``/``DESC``. The source does
not rely on the server honouring ``start`` or the sort order: rows older than ``since_ts`` are dropped
here, and paging stops early once a whole page is older than ``since_ts``.

Feed one endpoint per fetch: ``/v2/activity`` and ``/v2/trades`` rows for the same fill would be summed
twice by :func:`aggregate`. A fill is one group per (tx, leader, token, side) summed over the rows of
every page of one fetch; rows with equal timestamps stay together because ``since_ts`` is inclusive.

Bad rows never stop a fetch, and one leader's never stop another's: a row that does not parse (a
malformed field, a timestamp dated beyond the clock slack) and the rows of a fill whose sums do not fit a
LeaderFill are logged, counted and handed to ``on_bad_row(row, error)`` (the CLI parks them in dead.letters
with their JSON), once per process however many rounds see them again; the leader's other fills go on.
Non-trade activity (SPLIT, MERGE, REDEEM, ...) is skipped and counted. An HTTP error or a malformed page
fails that leader's fetch (:meth:`fetch_leader` raises); :meth:`poll_once` logs it, counts it and retries
the leader next round from the same point, and so it does with any other failure of one leader's fetch.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

import httpx
from prometheus_client import Counter

from horus.domain.fills import DecodedFill, aggregate_apart
from horus.settings import Settings
from horus.venue.polymarket.data_api import SOURCE, RowDecodeError, SkippedRow, page_rows, parse_row, timestamp_seconds
from horus.venue.polymarket.exchanges import normalize_address

__all__ = ["DataApiSource", "ENDPOINTS", "DATA_API_REQUESTS", "DATA_API_ROWS", "DATA_API_ERRORS"]

log = logging.getLogger(__name__)

ENDPOINTS = ("activity", "trades", "classic-activity", "classic-trades")
CLASSIC_MAX_LIMIT = 500
CLASSIC_MAX_OFFSET = 5000
BAD_ROWS_REMEMBERED = 100_000  # digests of rows already reported (the lookback re-reads them every round)

DATA_API_REQUESTS = Counter("horus_data_api_requests_total", "Data API requests", ["endpoint", "status"])
DATA_API_ROWS = Counter("horus_data_api_rows_total", "Data API rows by outcome", ["outcome"])
DATA_API_ERRORS = Counter("horus_data_api_errors_total", "Data API source failures", ["kind"])

Emit = Callable[[list[dict]], Any | Awaitable[Any]]


def _row_seconds(row: Any) -> int | None:
    """The row's time in seconds, by the parser's rules; None when it has no usable one."""
    if not isinstance(row, Mapping):
        return None
    try:
        return timestamp_seconds(row.get("timestamp"))
    except RowDecodeError:
        return None


class DataApiSource:
    """LeaderFill records for ``leaders`` from the Data API (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        leaders: Iterable[str],
        *,
        endpoint: str = "activity",
        page_limit: int | None = None,
        lookback_s: int | None = None,
        max_pages: int = 1000,
        on_bad_row: Callable[[Any, RowDecodeError], None] | None = None,
    ):
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {endpoint!r}")
        self._base = settings.data_api_url.rstrip("/")
        self._client = client
        self.leaders = [normalize_address(w) for w in leaders]
        self.endpoint = endpoint
        self.page_limit = settings.data_api_page_limit if page_limit is None else page_limit
        self.lookback_s = settings.data_api_lookback_s if lookback_s is None else lookback_s
        self.poll_interval_s = settings.data_api_poll_interval_s
        self.max_pages = max_pages
        self.on_bad_row = on_bad_row
        #: per leader: the newest fill timestamp seen so far (poll_forever's watermark)
        self.newest_seen: dict[str, int] = {}
        self._reported: OrderedDict[str, None] = OrderedDict()  # digests of bad rows already reported

    # ------------------------------------------------------------------ one leader

    def _request(self, leader: str, since_ts: int | None) -> tuple[str, dict[str, Any]]:
        start = {} if since_ts is None else {"start": int(since_ts)}
        if self.endpoint == "activity":
            return "/v2/activity", {
                "user": leader,
                "type": "TRADE",
                "sort_direction": "DESC",
                "limit": self.page_limit,
                **start,
            }
        if self.endpoint == "trades":
            return "/v2/trades", {"user": leader, "taker_only": "false", **start}
        limit = min(self.page_limit, CLASSIC_MAX_LIMIT)
        if self.endpoint == "classic-activity":
            return "/activity", {
                "user": leader,
                "type": "TRADE",
                "limit": limit,
                "sortBy": "TIMESTAMP",
                "sortDirection": "DESC",
                **start,
            }
        return "/trades", {"user": leader, "takerOnly": "false", "limit": limit}

    async def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        response = await self._client.get(self._base + path, params=params)
        DATA_API_REQUESTS.labels(path, str(response.status_code)).inc()
        response.raise_for_status()
        try:
            return response.json()
        except ValueError as exc:
            raise RowDecodeError(f"{path}: body is not JSON: {exc}", "bad-page") from None

    async def fetch_rows(self, leader: str, since_ts: int | None = None) -> list:
        """Every raw row of ``leader`` newer than or at ``since_ts`` (all of them if None), all pages."""
        leader = normalize_address(leader)
        path, params = self._request(leader, since_ts)
        classic = self.endpoint.startswith("classic")
        newest_first = self.endpoint in ("activity", "classic-activity")  # the routes we ask for DESC
        rows: list = []
        cursor: str | None = None
        seen_cursors: set[str] = set()
        offset = 0
        for _ in range(self.max_pages):
            query = dict(params)
            if classic:
                query["offset"] = offset
            elif cursor is not None:
                query["cursor"] = cursor
            page = page_rows(await self._get(path, query))
            stamps = [_row_seconds(r) for r in page.rows]
            rows.extend(page.rows)
            if (
                newest_first
                and since_ts is not None
                and page.rows
                and all(s is not None and s < since_ts for s in stamps)
            ):
                break  # a whole page older than since_ts: the rest is older still
            if classic:
                if len(page.rows) < params["limit"]:
                    break
                offset += params["limit"]
                if offset > CLASSIC_MAX_OFFSET:
                    log.warning(
                        "data api: %s of %s reached the classic offset cap %d; older rows need /v2",
                        path,
                        leader,
                        CLASSIC_MAX_OFFSET,
                    )
                    break
                continue
            if not page.has_more or page.next_cursor is None:
                break
            if page.next_cursor in seen_cursors:
                raise RowDecodeError(f"{path}: the server repeated cursor {page.next_cursor!r}", "bad-page")
            seen_cursors.add(page.next_cursor)
            cursor = page.next_cursor
        else:
            log.warning("data api: %s of %s stopped after %d pages", path, leader, self.max_pages)
        return rows

    async def fetch_leader(self, leader: str, since_ts: int | None = None) -> list[dict]:
        """``leader``'s LeaderFill records (Avro dicts, source ``data-api``) with a fill time at or after
        ``since_ts`` (seconds; all history if None). Raises ``httpx.HTTPError`` / ``RowDecodeError`` when a
        request or a page fails; bad rows are only counted and reported."""
        leader = normalize_address(leader)
        now_s = int(time.time())
        fills: list[tuple[DecodedFill, Any]] = []  # (fill, the row it came from)
        for row in await self.fetch_rows(leader, since_ts):
            try:
                parsed = parse_row(row, now_s=now_s)
            except RowDecodeError as error:
                self._bad_row(leader, row, error)
                continue
            if isinstance(parsed, SkippedRow):
                DATA_API_ROWS.labels("skipped").inc()
            elif since_ts is None or cast(int, parsed.block_timestamp) >= since_ts:  # parse_row dates every fill
                fills.append((parsed, row))
        DATA_API_ROWS.labels("fill").inc(len(fills))
        records = self._aggregate(leader, fills)
        if records:
            newest = max(r["envelope"]["occurred_at_us"] for r in records) // 1_000_000
            self.newest_seen[leader] = max(newest, self.newest_seen.get(leader, 0))
        return records

    def _aggregate(self, leader: str, fills: list[tuple[DecodedFill, Any]]) -> list[dict]:
        """The leader's LeaderFill records; the rows of a fill that cannot be summed (a sum beyond the
        schema) are reported as bad rows and the other fills kept."""
        records, apart = aggregate_apart([fill for fill, _ in fills], [leader], source=SOURCE)
        if apart:
            rows_of: dict[tuple, list] = {}
            for fill, row in fills:
                rows_of.setdefault(fill.group_key, []).append(row)
            for members, exc in apart:
                for row in rows_of[members[0].group_key]:
                    self._bad_row(leader, row, RowDecodeError(f"its fill cannot be summed: {exc}", "bad-sum"))
        return records

    def _bad_row(self, leader: str, row: Any, error: RowDecodeError) -> None:
        """Count, log and hand on a bad row, once per process (later rounds re-read it)."""
        digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
        if digest in self._reported:
            return
        self._reported[digest] = None
        if len(self._reported) > BAD_ROWS_REMEMBERED:
            self._reported.popitem(last=False)
        DATA_API_ROWS.labels("bad").inc()
        log.warning("data api: bad row for %s: %s", leader, error)
        if self.on_bad_row is not None:
            self.on_bad_row(row, error)

    # ------------------------------------------------------------------ polling

    def next_since(self, leader: str, initial: int | None) -> int | None:
        """Where the next round starts for ``leader``: ``lookback_s`` before the newest fill seen."""
        newest = self.newest_seen.get(normalize_address(leader))
        if newest is None:
            return initial
        since = newest - self.lookback_s
        return since if initial is None else max(since, initial)

    async def poll_once(self, emit: Emit, since_ts: int | None = None) -> int:
        """One round over every leader; ``emit(records)`` once with the round's records (if any). Returns
        the number of records emitted. A failing leader is logged and counted and retried next round;
        a failing ``emit`` raises (the watermarks are then not advanced)."""
        records: list[dict] = []
        before = dict(self.newest_seen)
        for leader in self.leaders:
            try:
                records.extend(await self.fetch_leader(leader, self.next_since(leader, since_ts)))
            except (httpx.HTTPError, RowDecodeError) as exc:
                DATA_API_ERRORS.labels("http" if isinstance(exc, httpx.HTTPError) else "bad-page").inc()
                log.warning(
                    "data api: fetching %s failed, retrying next round: %s: %s", leader, type(exc).__name__, exc
                )
            except Exception:  # noqa: BLE001 - whatever one leader's data does, the other leaders' fills flow
                DATA_API_ERRORS.labels("unexpected").inc()
                log.exception("data api: fetching %s failed unexpectedly, retrying next round", leader)
        if records:
            try:
                result = emit(records)
                if inspect.isawaitable(result):
                    await result
            except BaseException:
                self.newest_seen = before
                raise
        return len(records)

    async def poll_forever(
        self,
        emit: Emit,
        interval_s: float | None = None,
        stop_event: asyncio.Event | None = None,
        since_ts: int | None = None,
    ) -> None:
        """Rounds of :meth:`poll_once` every ``interval_s`` (default: the setting) until ``stop_event`` is
        set. ``since_ts`` bounds the first round's backfill (None: full history). An ``emit`` failure is
        logged and counted and the round is retried after the interval."""
        interval = self.poll_interval_s if interval_s is None else interval_s
        stop = stop_event or asyncio.Event()
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.poll_once(emit, since_ts)
            except Exception:
                DATA_API_ERRORS.labels("emit").inc()
                log.exception("data api: emitting a round failed; retrying after %.1fs", interval)
            wait = max(0.0, interval - (time.monotonic() - started))
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass
