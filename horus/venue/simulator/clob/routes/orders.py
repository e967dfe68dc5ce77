"""Order entry and cancels (L2 auth): POST /order and /orders, DELETE /order, /orders, /cancel-all and
/cancel-market-orders, each through the reply faults (faults.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from horus.venue.simulator.clob.auth import ApiKey
from horus.venue.simulator.clob.faults import RECEIVED_AT, after_order, before_order, restarting_reply
from horus.venue.simulator.clob.rejections import Rejected
from horus.venue.simulator.clob.routes.common import authenticate, venue
from horus.venue.simulator.clob.state import VenueState
from horus.venue.simulator.clob.views import json_response

MAX_BATCH = 15

router = APIRouter()

# (venue, key, parsed body or None when it is not JSON, when the request arrived) -> the reply
OrderReply = Callable[[VenueState, ApiKey, object, float | None], Response]
# (venue, parsed body, key) -> the cancel result
CancelResult = Callable[[VenueState, object, ApiKey], dict]


async def _order_post(request: Request, reply: OrderReply) -> Response:
    """What both order POSTs do around their reply: L2 auth, the faults before processing (425 while the
    engine restarts, an injected 5xx), the body parsed, and the faults after processing (held or lost)."""
    state = venue(request)
    key, body = await authenticate(request, state)
    early = before_order(state.faults)
    if early is not None:
        return early
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    return await after_order(state.faults, reply(state, key, payload, request.scope.get(RECEIVED_AT)))


def _one_order(state: VenueState, key: ApiKey, payload: object, received_at: float | None) -> Response:
    try:
        return json_response(state.submit(payload, key, received_at=received_at))
    except Rejected as exc:
        return json_response({"error": exc.message}, exc.status)


def _batch(state: VenueState, key: ApiKey, payloads: object, received_at: float | None) -> Response:
    """Up to MAX_BATCH orders, each answered on its own (a refused one as a failed entry, not an error)."""
    if not isinstance(payloads, list) or not payloads:
        raise Rejected("Invalid order payload: expected a non-empty list of orders")
    if len(payloads) > MAX_BATCH:
        raise Rejected(f"Too many orders in payload: max {MAX_BATCH}")
    replies = []
    for payload in payloads:
        try:
            replies.append(state.submit(payload, key, received_at=received_at))
        except Rejected as exc:
            replies.append(_failed(exc.message, exc.order_id))
    return json_response(replies)


def _failed(message: str, order_id: str = "") -> dict:
    return {
        "success": False,
        "errorMsg": message,
        "orderID": order_id,
        "status": "",
        "makingAmount": "",
        "takingAmount": "",
        "transactionsHashes": [],
        "tradeIDs": [],
    }


@router.post("/order")
async def post_order(request: Request) -> Response:
    return await _order_post(request, _one_order)


@router.post("/orders")
async def post_orders(request: Request) -> Response:
    return await _order_post(request, _batch)


async def _cancel(request: Request, cancel: CancelResult) -> Response:
    """What every cancel does around its result: L2 auth, refused only while the engine restarts (cancels
    are allowed in post-only mode), the body parsed, and the faults after processing."""
    state = venue(request)
    key, body = await authenticate(request, state)
    if time.time() < state.faults.restart_until:
        return restarting_reply()
    try:
        parsed = json.loads(body) if body else {}
    except ValueError as exc:
        raise Rejected("Invalid payload") from exc
    return await after_order(state.faults, json_response(cancel(state, parsed, key)))


def _cancel_one(state: VenueState, parsed: object, key: ApiKey) -> dict:
    if not isinstance(parsed, dict) or not parsed.get("orderID"):
        raise Rejected("Invalid payload: orderID is required")
    return state.matching.cancel([str(parsed["orderID"])], key)


def _cancel_listed(state: VenueState, parsed: object, key: ApiKey) -> dict:
    if not isinstance(parsed, list):
        raise Rejected("Invalid payload: expected a list of order ids")
    return state.matching.cancel([str(i) for i in parsed], key)


def _cancel_all(state: VenueState, _parsed: object, key: ApiKey) -> dict:
    return state.matching.cancel_where(key)


def _cancel_market(state: VenueState, parsed: object, key: ApiKey) -> dict:
    where = parsed if isinstance(parsed, dict) else {}
    return state.matching.cancel_where(key, where.get("market"), where.get("asset_id"))


@router.delete("/order")
async def cancel_order(request: Request) -> Response:
    return await _cancel(request, _cancel_one)


@router.delete("/orders")
async def cancel_orders(request: Request) -> Response:
    return await _cancel(request, _cancel_listed)


@router.delete("/cancel-all")
async def cancel_all(request: Request) -> Response:
    return await _cancel(request, _cancel_all)


@router.delete("/cancel-market-orders")
async def cancel_market_orders(request: Request) -> Response:
    return await _cancel(request, _cancel_market)
