"""Reads of the caller's own data (L2 auth): its orders and trades (paged, with the read-error fault) and its
balance and allowances."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request
from starlette.responses import Response

from horus.venue.simulator.clob.faults import read_fault
from horus.venue.simulator.clob.rejections import Rejected
from horus.venue.simulator.clob.routes.common import authenticate, venue
from horus.venue.simulator.clob.views import json_response, open_order_view, trade_view

INITIAL_CURSOR, END_CURSOR = "MA==", "LTE="  # base64 of "0" and "-1"
MAX_ALLOWANCE = str(2**256 - 1)

router = APIRouter()


def _page(rows: list, cursor: str | None, size: int) -> dict:
    """One page of `rows` from the offset the cursor encodes (base64 of a decimal offset, "-1" past the end)."""
    try:
        start = int(base64.b64decode(cursor or INITIAL_CURSOR).decode())
    except ValueError:
        start = 0
    if start < 0:
        return {"data": [], "next_cursor": END_CURSOR, "limit": size, "count": 0}
    chunk = rows[start : start + size]
    following = start + size
    next_cursor = base64.b64encode(str(following).encode()).decode() if following < len(rows) else END_CURSOR
    return {"data": chunk, "next_cursor": next_cursor, "limit": size, "count": len(chunk)}


@router.get("/data/order/{order_id}")
async def get_order(order_id: str, request: Request) -> Response:
    state = venue(request)
    key, _ = await authenticate(request, state)
    fault = read_fault(state.faults)
    if fault is not None:
        return fault
    order = state.orders.get(order_id.lower())
    if order is None or order.owner != key.api_key:
        return json_response(None)  # the real venue answers an unknown id with an empty body, not 404
    return json_response(open_order_view(order))


@router.get("/data/orders")
async def get_orders(
    request: Request,
    market: str | None = None,
    asset_id: str | None = None,
    id: str | None = None,
    next_cursor: str | None = None,
) -> Response:
    state = venue(request)
    key, _ = await authenticate(request, state)
    fault = read_fault(state.faults)
    if fault is not None:
        return fault
    rows = [
        open_order_view(o)
        for o in state.orders.values()
        if o.owner == key.api_key
        and o.status == "LIVE"
        and (not market or o.market == market.lower())
        and (not asset_id or o.token_id == asset_id)
        and (not id or o.order_id == id.lower())
    ]
    return json_response(_page(rows, next_cursor, state.config.page_size))


@router.get("/data/trades")
async def get_trades(
    request: Request,
    id: str | None = None,
    maker_address: str | None = None,
    market: str | None = None,
    asset_id: str | None = None,
    before: int | None = None,
    after: int | None = None,
    next_cursor: str | None = None,
) -> Response:
    state = venue(request)
    key, _ = await authenticate(request, state)
    fault = read_fault(state.faults)
    if fault is not None:
        return fault
    rows = [
        trade_view(t, key)
        for t in state.matching.trades_for(key)
        if (not id or t["id"] == id)
        and (not market or t["market"] == market.lower())
        and (not asset_id or t["asset_id"] == asset_id)
        and (
            not maker_address
            or maker_address.lower() in {t["maker_address"], *(m["maker_address"] for m in t["maker_orders"])}
        )
        and (before is None or int(t["match_time"]) < before)
        and (after is None or int(t["match_time"]) > after)
    ]
    return json_response(_page(rows, next_cursor, state.config.page_size))


async def _balance(
    request: Request, asset_type: str | None, token_id: str | None, signature_type: int | None
) -> Response:
    state = venue(request)
    key, _ = await authenticate(request, state)
    account = state.accounts.of(state.accounts.funder_for(key, signature_type or 0))
    kind = (asset_type or "COLLATERAL").upper()
    if kind == "COLLATERAL":
        balance = account.collateral_e6
    elif kind in ("CONDITIONAL", "CONDITIONAL-V2"):
        if not token_id:
            raise Rejected("token_id is required for asset_type CONDITIONAL")
        balance = account.tokens_e6.get(token_id, 0)
    else:
        raise Rejected("asset_type must be COLLATERAL, CONDITIONAL or CONDITIONAL-V2")
    exchanges = {m.exchange for m in state.markets}
    return json_response({"balance": str(balance), "allowances": {e: MAX_ALLOWANCE for e in sorted(exchanges)}})


@router.get("/balance-allowance")
async def balance_allowance(
    request: Request, asset_type: str | None = None, token_id: str | None = None, signature_type: int | None = None
) -> Response:
    return await _balance(request, asset_type, token_id, signature_type)


@router.get("/balance-allowance/update")
async def update_balance_allowance(
    request: Request, asset_type: str | None = None, token_id: str | None = None, signature_type: int | None = None
) -> Response:
    return await _balance(request, asset_type, token_id, signature_type)
