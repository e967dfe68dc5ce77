"""The HTTP surface: the CLOB V2 REST subset py-clob-client-v2 uses, plus `/_sim` admin routes (no auth)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from decimal import Decimal

from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from horus.venue.simulator.clob.auth import AuthError, check_l1, check_l2
from horus.venue.simulator.clob.config import AccountConfig, FaultConfig, MarketConfig, SimulatorConfig
from horus.venue.simulator.clob.faults import (
    RECEIVED_AT,
    LatencyMiddleware,
    after_order,
    before_order,
    json_response,
    read_fault,
)
from horus.venue.simulator.clob.state import Market, Rejected, VenueState, decimal_text
from horus.venue.simulator.identity import IDENTITY_PATH, identity

MAX_BATCH = 15
INITIAL_CURSOR, END_CURSOR = "MA==", "LTE="  # base64 of "0" and "-1"
MAX_ALLOWANCE = str(2**256 - 1)


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


def _page(rows: list, cursor: str | None, size: int) -> dict:
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


def _book_view(state: VenueState, token_id: str) -> dict | None:
    market = state.token_market.get(token_id)
    if market is None:
        return None
    book = state.books[token_id]
    # best level last: bids ascending, asks descending (as the real /book)
    bids = [{"price": decimal_text(p), "size": decimal_text(s)} for p, s in reversed(book.depth("BUY"))]
    asks = [{"price": decimal_text(p), "size": decimal_text(s)} for p, s in reversed(book.depth("SELL"))]
    view = {
        "market": market.condition_id,
        "asset_id": token_id,
        "timestamp": str(int(time.time() * 1000)),
        "hash": "",
        "bids": bids,
        "asks": asks,
        "min_order_size": format(market.config.min_order_size.normalize(), "f"),
        "tick_size": market.config.tick_size,
        "neg_risk": market.config.neg_risk,
        "last_trade_price": decimal_text(book.last_trade_price_e6),
    }
    # the real venue's book hash: sha1 of the compact JSON with "hash" empty
    view["hash"] = hashlib.sha1(json.dumps(view, separators=(",", ":")).encode()).hexdigest()
    return view


def _market_view(market: Market) -> dict:
    cfg = market.config
    return {
        "condition_id": market.condition_id,
        "question": f"Simulated market {market.condition_id[:10]}",
        "tokens": [{"token_id": t.token_id, "outcome": t.outcome, "price": float(t.price or 0)} for t in cfg.tokens],
        "minimum_tick_size": float(cfg.tick_size),
        "minimum_order_size": float(cfg.min_order_size),
        "neg_risk": cfg.neg_risk,
        "accepting_orders": cfg.accepting_orders,
        "active": True,
        "closed": False,
        "enable_order_book": True,
        "version": cfg.version,
        "maker_base_fee": 0,
        "taker_base_fee": int(cfg.fee_rate * 10_000),
    }


def _clob_market_view(market: Market) -> dict:
    cfg = market.config
    return {
        "c": market.condition_id,
        "t": [{"t": t.token_id, "o": t.outcome} for t in cfg.tokens],
        "mts": float(cfg.tick_size),
        "mos": float(cfg.min_order_size),
        "nr": cfg.neg_risk,
        "fd": {"r": float(cfg.fee_rate), "e": float(cfg.fee_exponent), "to": cfg.taker_only_fees},
        "mbf": 0,
        "tbf": int(cfg.fee_rate * 10_000),
        "ao": cfg.accepting_orders,
        "sd": 0,
        "itode": False,
    }


def create_app(config: SimulatorConfig | None = None, *, follow_leaders: bool = False) -> FastAPI:
    """`follow_leaders`: declared on /_sim/identity (a paper venue whose markets the engine makes as leaders
    trade; horus.venue.simulator.identity)."""
    state = VenueState(config or SimulatorConfig())
    app = FastAPI(title="Horus CLOB V2 simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.venue = state
    app.add_middleware(LatencyMiddleware, state=state)

    async def authenticate(request: Request) -> tuple:
        body = (await request.body()).decode()
        key = check_l2(request.headers, state.api_keys, request.method, request.url.path, body)
        return key, body

    @app.exception_handler(ClientDisconnect)
    async def _gone(_request: Request, _exc: ClientDisconnect) -> Response:
        return Response(status_code=499)  # the client went away mid-body (a killed worker): nobody to answer

    @app.exception_handler(AuthError)
    async def _auth_error(_request: Request, exc: AuthError) -> Response:
        return json_response({"error": exc.message}, 401)

    @app.exception_handler(Rejected)
    async def _rejected(_request: Request, exc: Rejected) -> Response:
        return json_response({"error": exc.message}, exc.status)

    @app.exception_handler(ValidationError)
    async def _invalid(_request: Request, exc: ValidationError) -> Response:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return json_response({"error": f"invalid input: {fields}"}, 422)

    def market_for(token_id: str | None) -> Market:
        market = state.token_market.get(token_id or "")
        if market is None:
            raise Rejected("market not found", 404)
        return market

    # ----- public -----
    @app.get("/")
    async def root() -> Response:
        return json_response("OK")

    @app.get("/ok")
    async def ok() -> Response:
        return json_response("OK")

    @app.get("/time")
    async def server_time() -> Response:
        return json_response(int(time.time()))

    @app.get("/version")
    async def version() -> Response:
        return json_response({"version": 2})

    @app.get("/tick-size")
    async def tick_size(token_id: str | None = None) -> Response:
        return json_response({"minimum_tick_size": float(market_for(token_id).config.tick_size)})

    @app.get("/neg-risk")
    async def neg_risk(token_id: str | None = None) -> Response:
        return json_response({"neg_risk": market_for(token_id).config.neg_risk})

    @app.get("/fee-rate")
    async def fee_rate(token_id: str | None = None) -> Response:
        return json_response({"base_fee": int(market_for(token_id).config.fee_rate * 10_000)})

    @app.get("/clob-markets/{condition_id}")
    async def clob_market(condition_id: str) -> Response:
        market = state.markets.get(condition_id.lower())
        if market is None:
            raise Rejected("market not found", 404)
        return json_response(_clob_market_view(market))

    @app.get("/markets/{condition_id}")
    async def market_info(condition_id: str) -> Response:
        market = state.markets.get(condition_id.lower())
        if market is None:
            raise Rejected("market not found", 404)
        return json_response(_market_view(market))

    @app.get("/markets-by-token/{token_id}")
    async def market_by_token(token_id: str) -> Response:
        market = market_for(token_id)
        return json_response({"condition_id": market.condition_id, "token_id": token_id})

    @app.get("/book")
    async def book(token_id: str | None = None) -> Response:
        view = _book_view(state, token_id or "")
        if view is None:
            raise Rejected("No orderbook exists for the requested token id", 404)
        return json_response(view)

    @app.post("/books")
    async def books(request: Request) -> Response:
        params = json.loads(await request.body() or b"[]")
        if not isinstance(params, list):
            raise Rejected("Invalid payload: expected a list of {token_id}")
        views = [_book_view(state, str(p.get("token_id", ""))) for p in params if isinstance(p, dict)]
        return json_response([v for v in views if v is not None])

    # ----- API keys (L1) -----
    @app.post("/auth/api-key")
    async def create_api_key(request: Request) -> Response:
        address, nonce = check_l1(request.headers, state.chain_id)
        return json_response(state.create_api_key(address, nonce).public())

    @app.get("/auth/derive-api-key")
    async def derive_api_key(request: Request) -> Response:
        address, nonce = check_l1(request.headers, state.chain_id)
        return json_response(state.derive_api_key(address, nonce).public())

    @app.get("/auth/api-keys")
    async def api_keys(request: Request) -> Response:
        key, _ = await authenticate(request)
        return json_response({"apiKeys": [k.api_key for k in state.api_keys.values() if k.address == key.address]})

    @app.delete("/auth/api-key")
    async def delete_api_key(request: Request) -> Response:
        key, _ = await authenticate(request)
        state.api_keys.pop(key.api_key, None)
        return json_response("OK")

    @app.get("/auth/ban-status/closed-only")
    async def closed_only(request: Request) -> Response:
        await authenticate(request)
        return json_response({"closed_only": False})

    # ----- orders (L2) -----
    @app.post("/order")
    async def post_order(request: Request) -> Response:
        key, body = await authenticate(request)
        early = before_order(state)
        if early is not None:
            return early
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        try:
            response = json_response(state.submit(payload, key, received_at=request.scope.get(RECEIVED_AT)))
        except Rejected as exc:
            response = json_response({"error": exc.message}, exc.status)
        return await after_order(state, response)

    @app.post("/orders")
    async def post_orders(request: Request) -> Response:
        key, body = await authenticate(request)
        early = before_order(state)
        if early is not None:
            return early
        try:
            payloads = json.loads(body)
        except ValueError:
            payloads = None
        if not isinstance(payloads, list) or not payloads:
            raise Rejected("Invalid order payload: expected a non-empty list of orders")
        if len(payloads) > MAX_BATCH:
            raise Rejected(f"Too many orders in payload: max {MAX_BATCH}")
        replies = []
        for payload in payloads:
            try:
                replies.append(state.submit(payload, key, received_at=request.scope.get(RECEIVED_AT)))
            except Rejected as exc:
                replies.append(_failed(exc.message, exc.order_id))
        return await after_order(state, json_response(replies))

    async def _cancel(request: Request, ids_from_body) -> Response:
        key, body = await authenticate(request)
        if time.time() < state.restart_until:
            return before_order(state)
        try:
            parsed = json.loads(body) if body else {}
        except ValueError as exc:
            raise Rejected("Invalid payload") from exc
        return await after_order(state, json_response(ids_from_body(parsed, key)))

    @app.delete("/order")
    async def cancel_order(request: Request) -> Response:
        def run(parsed, key):
            if not isinstance(parsed, dict) or not parsed.get("orderID"):
                raise Rejected("Invalid payload: orderID is required")
            return state.cancel([str(parsed["orderID"])], key)

        return await _cancel(request, run)

    @app.delete("/orders")
    async def cancel_orders(request: Request) -> Response:
        def run(parsed, key):
            if not isinstance(parsed, list):
                raise Rejected("Invalid payload: expected a list of order ids")
            return state.cancel([str(i) for i in parsed], key)

        return await _cancel(request, run)

    @app.delete("/cancel-all")
    async def cancel_all(request: Request) -> Response:
        return await _cancel(request, lambda _parsed, key: state.cancel_where(key))

    @app.delete("/cancel-market-orders")
    async def cancel_market_orders(request: Request) -> Response:
        def run(parsed, key):
            parsed = parsed if isinstance(parsed, dict) else {}
            return state.cancel_where(key, parsed.get("market"), parsed.get("asset_id"))

        return await _cancel(request, run)

    @app.get("/data/order/{order_id}")
    async def get_order(order_id: str, request: Request) -> Response:
        key, _ = await authenticate(request)
        fault = read_fault(state)
        if fault is not None:
            return fault
        order = state.orders.get(order_id.lower())
        if order is None or order.owner != key.api_key:
            return json_response(None)  # the real venue answers an unknown id with an empty body, not 404
        return json_response(state.open_order_view(order))

    @app.get("/data/orders")
    async def get_orders(
        request: Request,
        market: str | None = None,
        asset_id: str | None = None,
        id: str | None = None,
        next_cursor: str | None = None,
    ) -> Response:
        key, _ = await authenticate(request)
        fault = read_fault(state)
        if fault is not None:
            return fault
        rows = [
            state.open_order_view(o)
            for o in state.orders.values()
            if o.owner == key.api_key
            and o.status == "LIVE"
            and (not market or o.market == market.lower())
            and (not asset_id or o.token_id == asset_id)
            and (not id or o.order_id == id.lower())
        ]
        return json_response(_page(rows, next_cursor, state.config.page_size))

    @app.get("/data/trades")
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
        key, _ = await authenticate(request)
        fault = read_fault(state)
        if fault is not None:
            return fault
        rows = [
            state.trade_view(t, key)
            for t in state.trades_for(key)
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
        key, _ = await authenticate(request)
        funder = state.funder_for(key, signature_type or 0)
        account = state.account(funder)
        kind = (asset_type or "COLLATERAL").upper()
        if kind == "COLLATERAL":
            balance = account.collateral_e6
        elif kind in ("CONDITIONAL", "CONDITIONAL-V2"):
            if not token_id:
                raise Rejected("token_id is required for asset_type CONDITIONAL")
            balance = account.tokens_e6.get(token_id, 0)
        else:
            raise Rejected("asset_type must be COLLATERAL, CONDITIONAL or CONDITIONAL-V2")
        exchanges = {m.exchange for m in state.markets.values()}
        return json_response({"balance": str(balance), "allowances": {e: MAX_ALLOWANCE for e in sorted(exchanges)}})

    @app.get("/balance-allowance")
    async def balance_allowance(
        request: Request, asset_type: str | None = None, token_id: str | None = None, signature_type: int | None = None
    ) -> Response:
        return await _balance(request, asset_type, token_id, signature_type)

    @app.get("/balance-allowance/update")
    async def update_balance_allowance(
        request: Request, asset_type: str | None = None, token_id: str | None = None, signature_type: int | None = None
    ) -> Response:
        return await _balance(request, asset_type, token_id, signature_type)

    # ----- admin (/_sim, no auth) -----
    @app.post("/_sim/accounts")
    async def sim_accounts(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        items = body if isinstance(body, list) else body.get("accounts", [body]) if isinstance(body, dict) else []
        configs = [AccountConfig.model_validate(item) for item in items]
        for account in configs:
            state.set_account(account)
        return json_response([state.balance_view(c.address) for c in configs])

    @app.get("/_sim/accounts/{address}")
    async def sim_account(address: str) -> Response:
        return json_response(state.balance_view(address))

    @app.post("/_sim/markets")
    async def sim_markets(request: Request) -> Response:
        market = state.add_market(MarketConfig.model_validate_json(await request.body()))
        return json_response(
            {"condition_id": market.condition_id, "exchange": market.exchange, "tokens": list(market.outcomes)}
        )

    @app.post("/_sim/books")
    async def sim_move_book(request: Request) -> Response:
        """{"token_id", "price"}: the synthetic book around a new price (a demo's market follows its leaders)."""
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict) or "token_id" not in body or "price" not in body:
            raise Rejected('expected {"token_id": ..., "price": ...}')
        book = state.move_book(str(body["token_id"]), Decimal(str(body["price"])))
        return json_response({"token_id": book.token_id, "bids": book.depth("BUY")[:3], "asks": book.depth("SELL")[:3]})

    @app.get("/_sim/faults")
    async def sim_get_faults() -> Response:
        return json_response(state.faults.model_dump())

    @app.post("/_sim/faults")
    async def sim_faults(request: Request) -> Response:
        update = json.loads(await request.body() or b"{}")
        if not isinstance(update, dict):
            raise Rejected("expected an object of fault settings")
        faults = FaultConfig.model_validate(
            {**state.faults.model_dump(), "restart_seconds": 0, "post_only_seconds": 0, **update}
        )
        state.set_faults(faults)
        return json_response(
            {**faults.model_dump(), "restart_until": state.restart_until, "post_only_until": state.post_only_until}
        )

    @app.get("/_sim/orders")
    async def sim_orders(metadata: str | None = None, maker: str | None = None) -> Response:
        orders = [
            state.log_entry(o)
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

    @app.get("/_sim/trades")
    async def sim_trades() -> Response:
        return json_response(
            [{k: (sorted(v) if isinstance(v, set) else v) for k, v in t.items()} for t in state.trades]
        )

    @app.get(IDENTITY_PATH)
    async def sim_identity() -> Response:
        """What an engine in paper mode asks before its first request: a real venue has no such route."""
        return json_response(identity(follow_leaders))

    @app.get("/_sim/health")
    async def sim_health() -> Response:
        return json_response(
            {
                "ok": True,
                "markets": len(state.markets),
                "orders": len(state.orders),
                "trades": len(state.trades),
                "api_keys": len(state.api_keys),
            }
        )

    return app
