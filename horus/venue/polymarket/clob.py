"""Async HTTP client for the CLOB V2 REST API (platform notes 4): one keep-alive client per venue (aiohttp by
default, httpx selectable).

Every call returns a `VenueReply` and never raises for what the network or the venue does (HTTP errors,
timeouts, resets): the executor decides what an answer means. A body is serialized once and those exact bytes
are both HMAC-signed and sent, so a stored order body can be re-sent byte for byte.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
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


class _Failed(Exception):
    """No HTTP answer: `timeout` or another transport failure (the backend's own exception is `cause`)."""

    def __init__(self, cause: Exception, *, timeout: bool):
        super().__init__(str(cause))
        self.cause = cause
        self.timeout = timeout


_DEFAULT_HEADERS = {"User-Agent": "horus", "Accept": "*/*", "Content-Type": "application/json"}
BACKENDS = ("aiohttp", "httpx")


class _HttpxBackend:
    """httpx.AsyncClient (HTTP/2 when the server offers it via ALPN); pluggable transport for tests."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        http2: bool,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None,
    ):
        self._client = httpx.AsyncClient(
            base_url=base_url,
            http2=http2,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers=_DEFAULT_HEADERS,
            transport=transport,
        )

    async def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        content: bytes | None,
    ) -> tuple[int, str]:
        try:
            response = await self._client.request(method, path, headers=headers, params=params, content=content)
        except httpx.TimeoutException as exc:
            raise _Failed(exc, timeout=True) from exc
        except httpx.TransportError as exc:  # connect/read/write errors, resets, protocol errors
            raise _Failed(exc, timeout=False) from exc
        return response.status_code, response.text

    async def aclose(self) -> None:
        await self._client.aclose()


class _AiohttpBackend:
    """One aiohttp.ClientSession over a keep-alive TCPConnector with `max_connections` sockets (HTTP/1.1).

    Measured here (docs/benchmarks.md, execute) it serves many times the requests/s of an httpx pool of the
    same size. The session is made on first use, inside the event loop that will use it."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        max_connections: int,
        on_post_sent: Callable[[], None] | None = None,
    ):
        self._base_url = base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._max_connections = max_connections
        self._on_post_sent = on_post_sent
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=self._max_connections, keepalive_timeout=15.0
        )
        traces: list[aiohttp.TraceConfig] = []
        if self._on_post_sent is not None:
            hook = self._on_post_sent

            async def body_sent(
                _session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
            ) -> None:
                if params.method == "POST":
                    hook()

            trace = aiohttp.TraceConfig()
            trace.on_request_chunk_sent.append(body_sent)
            traces.append(trace)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers=_DEFAULT_HEADERS,
            auto_decompress=True,
            raise_for_status=False,
            trace_configs=traces,
        )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        content: bytes | None,
    ) -> tuple[int, str]:
        session = self._session or self._open()
        try:
            async with session.request(
                method, self._base_url + path, headers=headers, params=params, data=content
            ) as response:
                raw = await response.read()
                status, charset = response.status, response.charset
        except TimeoutError as exc:  # total/connect timeouts (aiohttp's own timeout errors subclass it)
            raise _Failed(exc, timeout=True) from exc
        except aiohttp.ClientError as exc:  # refused, reset, server disconnected, malformed reply
            raise _Failed(exc, timeout=False) from exc
        return status, raw.decode(charset or "utf-8", errors="replace")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class ClobHttp:
    """The CLOB REST API over one keep-alive HTTP client.

    `backend` "aiohttp" (default: one ClientSession, HTTP/1.1 keep-alive, `max_connections` sockets, the fast
    one) or "httpx" (one AsyncClient; HTTP/2 when `http2` and the server offers it). `timeout_s` bounds each
    request; `time_offset_s` corrects the local clock for the L1/L2 timestamps (the venue rejects stale ones).
    Passing `transport` (an httpx transport, tests) selects the httpx backend. `on_post_sent` (aiohttp only) is
    called once a POST's body is on the wire, before its reply: the executor's `after_post_sent` crash point."""

    def __init__(
        self,
        base_url: str,
        *,
        chain_id: int = 137,
        timeout_s: float = 5.0,
        connect_timeout_s: float | None = None,
        http2: bool = True,
        max_connections: int = 200,
        time_offset_s: int = 0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        backend: str | None = None,
        on_post_sent: Callable[[], None] | None = None,
    ):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        backend = backend or ("httpx" if transport is not None else "aiohttp")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if transport is not None and backend != "httpx":
            raise ValueError("transport: an httpx transport needs backend='httpx'")
        self.base_url = base_url.rstrip("/")
        self.chain_id = chain_id
        self.time_offset_s = time_offset_s
        self.backend = backend
        self._clock = clock
        connect = connect_timeout_s or timeout_s
        self._http: _HttpxBackend | _AiohttpBackend
        if backend == "httpx":
            self._http = _HttpxBackend(
                self.base_url,
                timeout_s=timeout_s,
                connect_timeout_s=connect,
                http2=http2,
                max_connections=max_connections,
                transport=transport,
            )
        else:
            self._http = _AiohttpBackend(
                self.base_url,
                timeout_s=timeout_s,
                connect_timeout_s=connect,
                max_connections=max_connections,
                on_post_sent=on_post_sent,
            )

    async def __aenter__(self) -> ClobHttp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _timestamp(self) -> int:
        return int(self._clock()) + self.time_offset_s

    # --- plumbing -------------------------------------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: str | None = None,
    ) -> VenueReply:
        try:
            status, text = await self._http.request(
                method, path, headers, params, content.encode() if content is not None else None
            )
        except _Failed as failed:
            name = type(failed.cause).__name__
            if failed.timeout:
                return VenueReply(None, None, f"timeout ({name}) on {method} {path}", True)
            return VenueReply(None, None, f"{name} on {method} {path}: {failed.cause}", True)
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return VenueReply(status, body, _venue_error(status, body, text), False)

    async def _l2(
        self,
        method: str,
        path: str,
        creds: ApiCreds,
        address: str,
        *,
        params: Mapping[str, str] | None = None,
        content: str | None = None,
    ) -> VenueReply:
        headers = l2_headers(creds, address, method, path, content, self._timestamp())
        return await self._send(method, path, headers=headers, params=params, content=content)

    # --- orders ---------------------------------------------------------------------------------------------------
    async def post_order(self, body: dict[str, Any] | str, creds: ApiCreds, address: str) -> VenueReply:
        """POST /order. `body` is `orders.order_body(...)` or its stored serialization (sent byte for byte)."""
        content = body if isinstance(body, str) else serialize_body(body)
        return await self._l2("POST", "/order", creds, address, content=content)

    async def post_orders(self, bodies: Sequence[dict[str, Any]] | str, creds: ApiCreds, address: str) -> VenueReply:
        """POST /orders: up to 15 order bodies of ONE API key (each carries `owner`); the reply body is a list."""
        if not isinstance(bodies, str):
            if not 1 <= len(bodies) <= MAX_BATCH:
                raise ValueError(f"bodies: POST /orders takes 1..{MAX_BATCH} orders, got {len(bodies)}")
            bodies = serialize_body(list(bodies))
        return await self._l2("POST", "/orders", creds, address, content=bodies)

    async def get_order(self, order_hash: str, creds: ApiCreds, address: str) -> VenueReply:
        return await self._l2("GET", f"/data/order/{order_hash}", creds, address)

    async def get_trades(self, creds: ApiCreds, address: str, *, max_pages: int = 100, **filters: object) -> VenueReply:
        """GET /data/trades with filters (market, asset_id, id, maker_address, before, after), following
        next_cursor to the end. Success: body = {"data": [every trade], "next_cursor": ...}. A failing page is
        returned as is, and so is a history longer than `max_pages` (an error reply: the trades read are not all
        of them, so they cannot prove an order absent)."""
        params = {k: str(v) for k, v in filters.items() if v is not None}
        cursor = INITIAL_CURSOR
        trades: list[Any] = []  # the venue's trade objects, as decoded
        for _ in range(max_pages):
            reply = await self._l2("GET", "/data/trades", creds, address, params={**params, "next_cursor": cursor})
            if not reply.ok or not isinstance(reply.body, dict):
                return reply
            trades.extend(reply.body.get("data") or [])
            cursor = reply.body.get("next_cursor") or END_CURSOR
            if cursor == END_CURSOR:
                return VenueReply(200, {"data": trades, "next_cursor": cursor}, None, False)
        return VenueReply(
            200, {"data": trades, "next_cursor": cursor}, f"trades truncated after {max_pages} pages", False
        )

    async def cancel(self, order_hashes: str | Sequence[str], creds: ApiCreds, address: str) -> VenueReply:
        """DELETE /order for one hash, DELETE /orders for several -> {"canceled": [...], "not_canceled": {...}}."""
        if isinstance(order_hashes, str):
            return await self._l2("DELETE", "/order", creds, address, content=serialize_body({"orderID": order_hashes}))
        return await self._l2("DELETE", "/orders", creds, address, content=serialize_body(list(order_hashes)))

    async def cancel_all(self, creds: ApiCreds, address: str) -> VenueReply:
        return await self._l2("DELETE", "/cancel-all", creds, address)

    # --- account and market data ----------------------------------------------------------------------------------
    async def balance_allowance(
        self,
        creds: ApiCreds,
        address: str,
        asset_type: str,
        token_id: str | None = None,
        signature_type: int | None = None,
    ) -> VenueReply:
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
