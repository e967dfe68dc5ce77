"""Public reads (no auth): liveness and server time, market parameters, markets and order books."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from horus.venue.simulator.clob.markets import Market
from horus.venue.simulator.clob.rejections import Rejected
from horus.venue.simulator.clob.routes.common import venue
from horus.venue.simulator.clob.state import VenueState
from horus.venue.simulator.clob.views import book_view, clob_market_view, json_response, market_view

router = APIRouter()


def _market_for(state: VenueState, token_id: str | None) -> Market:
    market = state.markets.for_token(token_id or "")
    if market is None:
        raise Rejected("market not found", 404)
    return market


def _listed(state: VenueState, condition_id: str) -> Market:
    market = state.markets.get(condition_id)
    if market is None:
        raise Rejected("market not found", 404)
    return market


def _book(state: VenueState, token_id: str) -> dict | None:
    market = state.markets.for_token(token_id)
    return None if market is None else book_view(market, state.markets.books[token_id])


@router.get("/")
async def root() -> Response:
    return json_response("OK")


@router.get("/ok")
async def ok() -> Response:
    return json_response("OK")


@router.get("/time")
async def server_time() -> Response:
    return json_response(int(time.time()))


@router.get("/version")
async def version() -> Response:
    return json_response({"version": 2})


@router.get("/tick-size")
async def tick_size(request: Request, token_id: str | None = None) -> Response:
    state = venue(request)
    return json_response({"minimum_tick_size": float(_market_for(state, token_id).config.tick_size)})


@router.get("/neg-risk")
async def neg_risk(request: Request, token_id: str | None = None) -> Response:
    state = venue(request)
    return json_response({"neg_risk": _market_for(state, token_id).config.neg_risk})


@router.get("/fee-rate")
async def fee_rate(request: Request, token_id: str | None = None) -> Response:
    state = venue(request)
    return json_response({"base_fee": int(_market_for(state, token_id).config.fee_rate * 10_000)})


@router.get("/clob-markets/{condition_id}")
async def clob_market(condition_id: str, request: Request) -> Response:
    state = venue(request)
    return json_response(clob_market_view(_listed(state, condition_id)))


@router.get("/markets/{condition_id}")
async def market_info(condition_id: str, request: Request) -> Response:
    state = venue(request)
    return json_response(market_view(_listed(state, condition_id)))


@router.get("/markets-by-token/{token_id}")
async def market_by_token(token_id: str, request: Request) -> Response:
    state = venue(request)
    market = _market_for(state, token_id)
    return json_response({"condition_id": market.condition_id, "token_id": token_id})


@router.get("/book")
async def book(request: Request, token_id: str | None = None) -> Response:
    state = venue(request)
    view = _book(state, token_id or "")
    if view is None:
        raise Rejected("No orderbook exists for the requested token id", 404)
    return json_response(view)


@router.post("/books")
async def books(request: Request) -> Response:
    state = venue(request)
    params = json.loads(await request.body() or b"[]")
    if not isinstance(params, list):
        raise Rejected("Invalid payload: expected a list of {token_id}")
    views = [_book(state, str(p.get("token_id", ""))) for p in params if isinstance(p, dict)]
    return json_response([v for v in views if v is not None])
