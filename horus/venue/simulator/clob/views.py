"""What the venue answers: the JSON bodies of its orders, trades, books, markets and balances, and the
compact JSON response that carries them."""

from __future__ import annotations

import hashlib
import json
import time

from starlette.responses import Response

from horus.venue.simulator.clob.accounts import Account
from horus.venue.simulator.clob.auth import ApiKey
from horus.venue.simulator.clob.book import Book, VenueOrder
from horus.venue.simulator.clob.markets import Market
from horus.venue.simulator.clob.units import decimal_text


def json_response(body: object, status: int = 200) -> Response:
    return Response(content=json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")


def open_order_view(order: VenueOrder) -> dict:
    """An order as /data/order and /data/orders show it."""
    return {
        "id": order.order_id,
        "status": order.status,
        "owner": order.owner,
        "maker_address": order.maker,
        "market": order.market,
        "asset_id": order.token_id,
        "side": order.side,
        "original_size": decimal_text(order.size_e6),
        "size_matched": decimal_text(order.matched_e6),
        "price": decimal_text(order.price_e6),
        "associate_trades": list(order.trade_ids),
        "outcome": order.outcome,
        "order_type": order.order_type,
        "created_at": order.created_ms // 1000,
        "expiration": str(order.expiration),
    }


def trade_view(trade: dict, key: ApiKey) -> dict:
    """A trade as /data/trades shows it to `key`: without the venue's own fields, seen from the key's side."""
    view = {k: v for k, v in trade.items() if not k.startswith("_")}
    if trade["owner"] != key.api_key:
        view["trader_side"] = "MAKER"
    return view


def log_entry(order: VenueOrder) -> dict:
    """An order as the order log (/_sim/orders) shows it, settlement progress included."""
    return {
        "order_id": order.order_id,
        "owner": order.owner,
        "maker": order.maker,
        "signer": order.signer,
        "token_id": order.token_id,
        "market": order.market,
        "side": order.side,
        "maker_amount": order.maker_amount,
        "taker_amount": order.taker_amount,
        "size_e6": order.size_e6,
        "size_matched_e6": order.matched_e6,
        "price_e6": order.price_e6,
        "metadata": order.metadata,
        "builder": order.builder,
        "signature_type": order.signature_type,
        "order_type": order.order_type,
        "post_only": order.post_only,
        "status": order.status,
        "created_ms": order.created_ms,
        "received_us": order.received_us,
        "expiration": order.expiration,
        "post_count": order.post_count,
        "trade_ids": list(order.trade_ids),
        "pending_matched_e6": order.pending_e6,
        "confirmed_matched_e6": order.matched_e6 - order.pending_e6,
    }


def balance_view(address: str, account: Account) -> dict:
    """An account's balances and reservations as /_sim/accounts shows them."""
    return {
        "address": address.lower(),
        "collateral_e6": account.collateral_e6,
        "reserved_collateral_e6": account.reserved_collateral_e6,
        "tokens_e6": dict(account.tokens_e6),
        "reserved_tokens_e6": dict(account.reserved_tokens_e6),
    }


def book_view(market: Market, book: Book) -> dict:
    """A token's book as /book shows it, hashed as the real venue hashes it."""
    # best level last: bids ascending, asks descending (as the real /book)
    bids = [{"price": decimal_text(p), "size": decimal_text(s)} for p, s in reversed(book.depth("BUY"))]
    asks = [{"price": decimal_text(p), "size": decimal_text(s)} for p, s in reversed(book.depth("SELL"))]
    view = {
        "market": market.condition_id,
        "asset_id": book.token_id,
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


def market_view(market: Market) -> dict:
    """A market as /markets/{condition_id} shows it."""
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


def clob_market_view(market: Market) -> dict:
    """A market in the compact shape of /clob-markets/{condition_id}."""
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
