"""A local Polymarket Data API stand-in (public, no auth): a FastAPI app serving rows you hand it.

Routes (platform notes 8.4):

- ``GET /v2/activity?user=(required)&type=TRADE,SPLIT,...&start&end&sort_direction=ASC|DESC&limit<=1000&cursor``
- ``GET /v2/trades?user&taker_only(default true)&start&end&side&condition_id&cursor`` (``limit`` accepted)
  Both answer the keyset envelope ``{"data": [...], "pagination": {"has_more", "next_cursor"}}``; rows are
  ordered by ``(timestamp, sequence)`` where the sequence is the row's position in the list given to the
  stand-in; ``offset`` is rejected (400), as on the real v2 routes. The cursor is opaque (base64 of the
  last row's sort key and the direction), so paging is true keyset paging: rows added while a client pages
  do not shift the pages.
- ``GET /activity?user&type&start&end&sortDirection&limit<=500&offset<=5000`` and
  ``GET /trades?user&takerOnly(default true)&limit&offset``: the classic routes, a bare JSON list.

Rows are served as given (snake_case or camelCase). The wallet is ``proxy_wallet`` or ``proxyWallet``
(compared case-insensitively); rows without ``type`` are trades; ``/trades`` serves trade rows only. A row
may carry a private ``"_role": "MAKER" | "TAKER"`` key (stripped from responses) so that the trades
routes can model ``taker_only``: with taker_only true (the default) MAKER rows are left out.

``requests`` records every request (path and query) for assertions; ``fail_next`` makes the next N
requests answer 503. Serve it in-process with ``httpx.ASGITransport(app=stand_in.app)`` or with any ASGI
server. Imports nothing of the engine.
"""

from __future__ import annotations

import base64
import json
from typing import Any, overload

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["DataApiStandIn"]

_MS_THRESHOLD = 10**11


def _wallet(row: dict) -> str:
    return str(row.get("proxy_wallet") or row.get("proxyWallet") or "").lower()


def _type(row: dict) -> str:
    return str(row.get("type") or "TRADE").upper()


def _seconds(row: dict) -> int:
    stamp = int(float(row.get("timestamp") or 0))
    return stamp // 1000 if stamp > _MS_THRESHOLD else stamp


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _encode_cursor(key: tuple[int, int], direction: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([key[0], key[1], direction]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[tuple[int, int], str]:
    ts, seq, direction = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    if direction not in ("ASC", "DESC"):
        raise ValueError(direction)
    return (int(ts), int(seq)), direction


class _BadRequest(Exception):
    pass


class DataApiStandIn:
    def __init__(
        self,
        rows: list[dict] | None = None,
        *,
        default_limit: int = 100,
        max_limit: int = 1000,
        classic_max_limit: int = 500,
        classic_max_offset: int = 5000,
    ):
        self.rows: list[dict] = list(rows or [])
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.classic_max_limit = classic_max_limit
        self.classic_max_offset = classic_max_offset
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.fail_next = 0
        self.app = FastAPI(title="Data API stand-in")
        self.app.add_api_route("/v2/activity", self._v2_activity, methods=["GET"])
        self.app.add_api_route("/v2/trades", self._v2_trades, methods=["GET"])
        self.app.add_api_route("/activity", self._classic_activity, methods=["GET"])
        self.app.add_api_route("/trades", self._classic_trades, methods=["GET"])

    def add(self, *rows: dict) -> None:
        self.rows.extend(rows)

    # ------------------------------------------------------------------ helpers

    def _record(self, request: Request) -> dict[str, str] | JSONResponse:
        params = dict(request.query_params)
        self.requests.append((request.url.path, params))
        if self.fail_next:
            self.fail_next -= 1
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        return params

    # with an int default the answer is an int (what limits and offsets are read with)
    @overload
    @staticmethod
    def _int(params: dict, name: str, default: int) -> int: ...

    @overload
    @staticmethod
    def _int(params: dict, name: str, default: None = None) -> int | None: ...

    @staticmethod
    def _int(params: dict, name: str, default: int | None = None) -> int | None:
        if name not in params:
            return default
        try:
            return int(params[name])
        except ValueError:
            raise _BadRequest(f"{name} must be an integer") from None

    def _select(self, params: dict, *, activity: bool, taker_only_param: str, type_param: bool = True) -> list:
        user = params.get("user", "").lower()
        if not user:
            raise _BadRequest("user is required")
        types = None
        if activity and type_param and params.get("type"):
            types = {t.strip().upper() for t in params["type"].split(",") if t.strip()}
        taker_only = not activity and params.get(taker_only_param, "true").lower() != "false"
        start, end = self._int(params, "start"), self._int(params, "end")
        side = params.get("side", "").upper()
        chosen = []
        for seq, row in enumerate(self.rows):
            if _wallet(row) != user:
                continue
            kind = _type(row)
            if (types is not None and kind not in types) or (not activity and kind != "TRADE"):
                continue
            if taker_only and str(row.get("_role", "TAKER")).upper() == "MAKER":
                continue
            ts = _seconds(row)
            if (start is not None and ts < start) or (end is not None and ts > end):
                continue
            if side and str(row.get("side", "")).upper() != side:
                continue
            chosen.append(((ts, seq), row))
        return chosen

    def _keyset(self, params: dict, chosen: list) -> JSONResponse:
        if "offset" in params:
            raise _BadRequest("offset is not supported on /v2 routes; use cursor")
        limit = self._int(params, "limit", self.default_limit)
        if not 1 <= limit <= self.max_limit:
            raise _BadRequest(f"limit must be 1..{self.max_limit}")
        direction = params.get("sort_direction", "DESC").upper()
        if direction not in ("ASC", "DESC"):
            raise _BadRequest("sort_direction must be ASC or DESC")
        chosen.sort(key=lambda item: item[0], reverse=direction == "DESC")
        if params.get("cursor"):
            try:
                after, direction_then = _decode_cursor(params["cursor"])
            except (ValueError, TypeError, json.JSONDecodeError):
                raise _BadRequest("invalid cursor") from None
            if direction_then != direction:
                raise _BadRequest("cursor belongs to another sort direction")
            chosen = [c for c in chosen if (c[0] < after if direction == "DESC" else c[0] > after)]
        page = chosen[:limit]
        has_more = len(chosen) > limit
        return JSONResponse(
            {
                "data": [_public(row) for _, row in page],
                "pagination": {
                    "has_more": has_more,
                    "next_cursor": _encode_cursor(page[-1][0], direction) if has_more else None,
                },
            }
        )

    def _offset_page(self, params: dict, chosen: list) -> JSONResponse:
        limit = self._int(params, "limit", self.default_limit)
        offset = self._int(params, "offset", 0)
        if not 1 <= limit <= self.classic_max_limit:
            raise _BadRequest(f"limit must be 1..{self.classic_max_limit}")
        if not 0 <= offset <= self.classic_max_offset:
            raise _BadRequest(f"offset must be 0..{self.classic_max_offset}")
        direction = params.get("sortDirection", "DESC").upper()
        chosen.sort(key=lambda item: item[0], reverse=direction != "ASC")
        return JSONResponse([_public(row) for _, row in chosen[offset : offset + limit]])

    def _answer(self, request: Request, build) -> JSONResponse:
        params = self._record(request)
        if isinstance(params, JSONResponse):
            return params
        try:
            return build(params)
        except _BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    # ------------------------------------------------------------------ routes

    async def _v2_activity(self, request: Request) -> Any:
        return self._answer(request, lambda p: self._keyset(p, self._select(p, activity=True, taker_only_param="")))

    async def _v2_trades(self, request: Request) -> Any:
        return self._answer(
            request, lambda p: self._keyset(p, self._select(p, activity=False, taker_only_param="taker_only"))
        )

    async def _classic_activity(self, request: Request) -> Any:
        return self._answer(
            request, lambda p: self._offset_page(p, self._select(p, activity=True, taker_only_param=""))
        )

    async def _classic_trades(self, request: Request) -> Any:
        return self._answer(
            request, lambda p: self._offset_page(p, self._select(p, activity=False, taker_only_param="takerOnly"))
        )
