"""`/_sim` admin and test routes (no auth, no latency): fund accounts, list markets, move books, set faults,
read the order log and trades, the simulator's identity and health. A real venue has none of these."""

from __future__ import annotations

import json
from decimal import Decimal

from fastapi import APIRouter, Request
from starlette.responses import Response

from horus.venue.simulator.clob.config import AccountConfig, FaultConfig, MarketConfig
from horus.venue.simulator.clob.rejections import Rejected
from horus.venue.simulator.clob.routes.common import venue
from horus.venue.simulator.clob.views import balance_view, json_response, log_entry
from horus.venue.simulator.identity import IDENTITY_PATH, identity

router = APIRouter()


@router.post("/_sim/accounts")
async def sim_accounts(request: Request) -> Response:
    """One account config, a list of them, or {"accounts": [...]}: set (not add) their balances."""
    state = venue(request)
    body = json.loads(await request.body() or b"{}")
    items = body if isinstance(body, list) else body.get("accounts", [body]) if isinstance(body, dict) else []
    configs = [AccountConfig.model_validate(item) for item in items]
    for account in configs:
        state.accounts.fund(account)
    return json_response([balance_view(c.address, state.accounts.of(c.address)) for c in configs])


@router.get("/_sim/accounts/{address}")
async def sim_account(address: str, request: Request) -> Response:
    state = venue(request)
    return json_response(balance_view(address, state.accounts.of(address)))


@router.post("/_sim/markets")
async def sim_markets(request: Request) -> Response:
    state = venue(request)
    market = state.markets.add(MarketConfig.model_validate_json(await request.body()))
    return json_response(
        {"condition_id": market.condition_id, "exchange": market.exchange, "tokens": list(market.outcomes)}
    )


@router.post("/_sim/books")
async def sim_move_book(request: Request) -> Response:
    """{"token_id", "price"}: the synthetic book around a new price (a demo's market follows its leaders)."""
    state = venue(request)
    body = json.loads(await request.body() or b"{}")
    if not isinstance(body, dict) or "token_id" not in body or "price" not in body:
        raise Rejected('expected {"token_id": ..., "price": ...}')
    book = state.move_book(str(body["token_id"]), Decimal(str(body["price"])))
    return json_response({"token_id": book.token_id, "bids": book.depth("BUY")[:3], "asks": book.depth("SELL")[:3]})


@router.get("/_sim/faults")
async def sim_get_faults(request: Request) -> Response:
    state = venue(request)
    return json_response(state.faults.settings.model_dump())


@router.post("/_sim/faults")
async def sim_faults(request: Request) -> Response:
    """Merge the given settings into the ones in force; a restart window is opened only when asked for."""
    state = venue(request)
    update = json.loads(await request.body() or b"{}")
    if not isinstance(update, dict):
        raise Rejected("expected an object of fault settings")
    faults = state.faults
    settings = FaultConfig.model_validate(
        {**faults.settings.model_dump(), "restart_seconds": 0, "post_only_seconds": 0, **update}
    )
    faults.set(settings)
    return json_response(
        {**settings.model_dump(), "restart_until": faults.restart_until, "post_only_until": faults.post_only_until}
    )


@router.get("/_sim/orders")
async def sim_orders(request: Request, metadata: str | None = None, maker: str | None = None) -> Response:
    """The order log (optionally of one metadata tag or maker), the trade count and the intake counts."""
    state = venue(request)
    orders = [
        log_entry(o)
        for o in state.orders.values()
        if (not metadata or o.metadata == metadata.lower()) and (not maker or o.maker == maker.lower())
    ]
    counts = state.counts
    return json_response(
        {
            "orders": orders,
            "trades": len(state.trades),
            "counts": {
                "posts": counts.posts,
                "accepted": counts.accepted,
                "duplicates": counts.duplicates,
                "rejected": counts.rejected,
                "by_error": counts.by_error,
            },
        }
    )


@router.get("/_sim/trades")
async def sim_trades(request: Request) -> Response:
    state = venue(request)
    return json_response([{k: (sorted(v) if isinstance(v, set) else v) for k, v in t.items()} for t in state.trades])


@router.get(IDENTITY_PATH)
async def sim_identity(request: Request) -> Response:
    """What an engine in paper mode asks before its first request: a real venue has no such route."""
    return json_response(identity(request.app.state.follow_leaders))


@router.get("/_sim/health")
async def sim_health(request: Request) -> Response:
    state = venue(request)
    return json_response(
        {
            "ok": True,
            "markets": len(state.markets),
            "orders": len(state.orders),
            "trades": len(state.trades),
            "api_keys": len(state.api_keys),
        }
    )
