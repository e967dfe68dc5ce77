"""Async HTTP client for the CLOB V2 REST API (platform notes 4): one keep-alive `httpx.AsyncClient` per venue.

Every call returns a `VenueReply` and never raises for what the network or the venue does (HTTP errors,
timeouts, resets): the executor decides what an answer means. A body is serialized once and those exact bytes
are both HMAC-signed and sent, so a stored order body can be re-sent byte for byte.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from horus.venue.polymarket.auth import ApiCreds, l1_headers, l2_headers

INITIAL_CURSOR = "MA=="
END_CURSOR = "LTE="
MAX_BATCH = 15  # POST /orders takes at most 15 orders (notes 3.3)
_ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True)
class VenueReply:
    """What the venue answered. `status_code` None means no HTTP answer arrived (`transport_error` True: timeout,
    reset, refused). `body` is the decoded JSON (a dict; a list for POST /orders), None if it was not JSON.
    `error` is the venue's error text (or the transport failure), None on success."""

    status_code: int | None
    body: Any
    error: str | None
    transport_error: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and self.error is None


def serialize_body(body: Any) -> str:
    """The one serialization used for signing and sending: compact JSON, as py-clob-client-v2 sends it."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _venue_error(status: int, body: Any, text: str) -> str | None:
    if isinstance(body, dict):
        message = body.get("error") or body.get("errorMsg") or body.get("error_msg")
        if message:
            return str(message)
        if body.get("success") is False:
            return "success=false"
    if 200 <= status < 300:
        return None
    return text[:_ERROR_TEXT_LIMIT] or f"HTTP {status}"


class ClobHttp:
    """The CLOB REST API over one `httpx.AsyncClient` (keep-alive; HTTP/2 when the server offers it via ALPN).

    `timeout_s` bounds each request; `time_offset_s` corrects the local clock for the L1/L2 timestamps (the venue
    rejects stale ones). Pass `transport` to plug in another httpx transport (tests)."""

    def __init__(self, base_url: str, *, chain_id: int = 137, timeout_s: float = 5.0,
                 connect_timeout_s: float | None = None, http2: bool = True, max_connections: int = 200,
                 time_offset_s: int = 0, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.base_url = base_url.rstrip("/")
        self.chain_id = chain_id
        self.time_offset_s = time_offset_s
        self._clock = clock
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            http2=http2,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s or timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": "horus", "Accept": "*/*", "Content-Type": "application/json"},
            transport=transport,
        )

    async def __aenter__(self) -> ClobHttp:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _timestamp(self) -> int:
        return int(self._clock()) + self.time_offset_s

    # --- plumbing -------------------------------------------------------------------------------------------------
    async def _send(self, method: str, path: str, *, headers: dict | None = None, params: dict | None = None,
                    content: str | None = None) -> VenueReply:
        try:
            response = await self._client.request(
                method, path, headers=headers, params=params,
                content=content.encode() if content is not None else None)
        except httpx.TimeoutException as exc:
            return VenueReply(None, None, f"timeout ({type(exc).__name__}) on {method} {path}", True)
        except httpx.TransportError as exc:  # connect/read/write errors, resets, protocol errors
            return VenueReply(None, None, f"{type(exc).__name__} on {method} {path}: {exc}", True)
        text = response.text
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return VenueReply(response.status_code, body, _venue_error(response.status_code, body, text), False)

    async def _l2(self, method: str, path: str, creds: ApiCreds, address: str, *, params: dict | None = None,
                  content: str | None = None) -> VenueReply:
        headers = l2_headers(creds, address, method, path, content, self._timestamp())
        return await self._send(method, path, headers=headers, params=params, content=content)

    # --- orders ---------------------------------------------------------------------------------------------------
    async def post_order(self, body: dict | str, creds: ApiCreds, address: str) -> VenueReply:
        """POST /order. `body` is `orders.order_body(...)` or its stored serialization (sent byte for byte)."""
        content = body if isinstance(body, str) else serialize_body(body)
        return await self._l2("POST", "/order", creds, address, content=content)

    async def post_orders(self, bodies: Sequence[dict] | str, creds: ApiCreds, address: str) -> VenueReply:
        """POST /orders: up to 15 order bodies of ONE API key (each carries `owner`); the reply body is a list."""
        if not isinstance(bodies, str):
            if not 1 <= len(bodies) <= MAX_BATCH:
                raise ValueError(f"bodies: POST /orders takes 1..{MAX_BATCH} orders, got {len(bodies)}")
            bodies = serialize_body(list(bodies))
        return await self._l2("POST", "/orders", creds, address, content=bodies)

    async def get_order(self, order_hash: str, creds: ApiCreds, address: str) -> VenueReply:
        return await self._l2("GET", f"/data/order/{order_hash}", creds, address)

    async def get_trades(self, creds: ApiCreds, address: str, *, max_pages: int = 100, **filters) -> VenueReply:
        """GET /data/trades with filters (market, asset_id, id, maker_address, before, after), following
        next_cursor to the end. Success: body = {"data": [every trade], "next_cursor": ...}. A failing page is
        returned as is."""
        params = {k: str(v) for k, v in filters.items() if v is not None}
        cursor, trades = INITIAL_CURSOR, []
        for _ in range(max_pages):
            reply = await self._l2("GET", "/data/trades", creds, address, params={**params, "next_cursor": cursor})
            if not reply.ok or not isinstance(reply.body, dict):
                return reply
            trades.extend(reply.body.get("data") or [])
            cursor = reply.body.get("next_cursor") or END_CURSOR
            if cursor == END_CURSOR:
                break
        return VenueReply(200, {"data": trades, "next_cursor": cursor}, None, False)

    async def cancel(self, order_hashes: str | Sequence[str], creds: ApiCreds, address: str) -> VenueReply:
        """DELETE /order for one hash, DELETE /orders for several -> {"canceled": [...], "not_canceled": {...}}."""
        if isinstance(order_hashes, str):
            return await self._l2("DELETE", "/order", creds, address,
                                  content=serialize_body({"orderID": order_hashes}))
        return await self._l2("DELETE", "/orders", creds, address, content=serialize_body(list(order_hashes)))

    async def cancel_all(self, creds: ApiCreds, address: str) -> VenueReply:
        return await self._l2("DELETE", "/cancel-all", creds, address)

    # --- account and market data ----------------------------------------------------------------------------------
    async def balance_allowance(self, creds: ApiCreds, address: str, asset_type: str, token_id: str | None = None,
                                signature_type: int | None = None) -> VenueReply:
        """GET /balance-allowance (asset_type COLLATERAL | CONDITIONAL) -> {balance, allowances}."""
        params = {"asset_type": asset_type}
        if token_id is not None:
            params["token_id"] = str(token_id)
        if signature_type is not None:
            params["signature_type"] = str(signature_type)
        return await self._l2("GET", "/balance-allowance", creds, address, params=params)

    async def book(self, token_id: str) -> VenueReply:
        return await self._send("GET", "/book", params={"token_id": str(token_id)})

    async def server_time(self) -> VenueReply:
        return await self._send("GET", "/time")

    # --- API credentials (L1) -------------------------------------------------------------------------------------
    async def derive_api_key(self, private_key: bytes | str, nonce: int = 0) -> VenueReply:
        """GET /auth/derive-api-key: the existing credentials of (signer, nonce). `ApiCreds.from_venue(body)`."""
        headers = l1_headers(private_key, self.chain_id, self._timestamp(), nonce)
        return await self._send("GET", "/auth/derive-api-key", headers=headers)

    async def create_api_key(self, private_key: bytes | str, nonce: int = 0) -> VenueReply:
        """POST /auth/api-key: new credentials (the venue refuses if they exist: derive first)."""
        headers = l1_headers(private_key, self.chain_id, self._timestamp(), nonce)
        return await self._send("POST", "/auth/api-key", headers=headers)
