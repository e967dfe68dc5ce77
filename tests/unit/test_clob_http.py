"""ClobHttp against an httpx MockTransport (reply handling, exact bytes, HMAC over what was sent), a real local
socket that never answers (the configured timeout becomes a transport error, not an exception), and both
backends (aiohttp, the default, and httpx) against the real simulator and a raw HTTP/1.1 server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from decimal import Decimal

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from horus.venue.polymarket.auth import ApiCreds
from horus.venue.polymarket.clob import ClobHttp, VenueReply, serialize_body
from horus.venue.polymarket.orders import exchange_for, order_body, order_for_intent, sign_order
from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator
from horus.venue.simulator.clob.rejections import RESTARTING

KEY = "0x" + "61" * 32
ADDRESS = Account.from_key(KEY).address
SECRET = base64.urlsafe_b64encode(b"0123456789abcdef0123456789abcdef").decode()
CREDS = ApiCreds(api_key="key-1", secret=SECRET, passphrase="pass-1")
NOW = 1_764_000_000


def run(coro):
    return asyncio.run(coro)


class Venue:
    """Records every request; answers with `reply(request)`."""

    def __init__(self, reply):
        self.requests: list[httpx.Request] = []
        self._reply = reply

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._reply(request)

    def client(self, **kwargs) -> ClobHttp:
        return ClobHttp("http://venue.test", transport=httpx.MockTransport(self), clock=lambda: NOW + 0.9, **kwargs)


def hmac_ok(request: httpx.Request) -> bool:
    """What the venue checks: HMAC over ts + method + path (no query) + the bytes actually received."""
    message = (
        request.headers["POLY_TIMESTAMP"] + request.method + request.url.path + request.content.decode()
    ).encode()
    expected = base64.urlsafe_b64encode(
        hmac.new(base64.urlsafe_b64decode(SECRET), message, hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(expected, request.headers["POLY_SIGNATURE"])


def signed_body(intent_id: str = "intent-1") -> dict:
    fields = order_for_intent(
        intent_id,
        token_id="123",
        side="BUY",
        size_e6=10_000_000,
        worst_price="0.5",
        tick_size="0.01",
        order_type="FOK",
        maker=ADDRESS,
        signer=ADDRESS,
        signature_type=0,
        builder="0x" + "00" * 32,
        timestamp_ms=NOW * 1000,
    )
    return order_body(sign_order(fields, exchange_for("v1", False), KEY), owner=CREDS.api_key, order_type="FOK")


def test_post_order_sends_the_serialized_bytes_it_signed():
    venue = Venue(lambda r: httpx.Response(200, json={"success": True, "orderID": "0xab", "status": "matched"}))
    body = signed_body()

    async def go():
        async with venue.client() as clob:
            return await clob.post_order(body, CREDS, ADDRESS)

    reply = run(go())
    assert reply == VenueReply(200, {"success": True, "orderID": "0xab", "status": "matched"}, None, False)
    assert reply.ok
    request = venue.requests[0]
    assert (request.method, request.url.path) == ("POST", "/order")
    assert request.content == serialize_body(body).encode()
    assert json.loads(request.content) == body
    assert b", " not in request.content and b": " not in request.content  # compact, as the reference sends
    assert hmac_ok(request)
    assert request.headers["POLY_ADDRESS"] == ADDRESS and request.headers["POLY_API_KEY"] == "key-1"
    assert request.headers["POLY_PASSPHRASE"] == "pass-1" and request.headers["POLY_TIMESTAMP"] == str(NOW)


def test_a_stored_body_is_resent_byte_for_byte():
    venue = Venue(lambda r: httpx.Response(200, json={"success": True}))
    stored = serialize_body(signed_body())

    async def go():
        async with venue.client() as clob:
            await clob.post_order(stored, CREDS, ADDRESS)
            await clob.post_order(stored, CREDS, ADDRESS)

    run(go())
    assert venue.requests[0].content == venue.requests[1].content == stored.encode()
    assert all(hmac_ok(r) for r in venue.requests)


def test_post_orders_batches_up_to_fifteen():
    venue = Venue(lambda r: httpx.Response(200, json=[{"success": True}, {"success": False, "errorMsg": "x"}]))
    bodies = [signed_body("a"), signed_body("b")]

    async def go():
        async with venue.client() as clob:
            reply = await clob.post_orders(bodies, CREDS, ADDRESS)
            with pytest.raises(ValueError, match="1..15 orders"):
                await clob.post_orders([signed_body()] * 16, CREDS, ADDRESS)
            return reply

    reply = run(go())
    assert reply.status_code == 200 and reply.body[1]["errorMsg"] == "x"
    assert venue.requests[0].url.path == "/orders" and json.loads(venue.requests[0].content) == bodies
    assert hmac_ok(venue.requests[0]) and len(venue.requests) == 1


@pytest.mark.parametrize(
    "response,expected",
    [
        (
            httpx.Response(400, json={"error": "order 0x1 is invalid. Duplicated."}),
            VenueReply(400, {"error": "order 0x1 is invalid. Duplicated."}, "order 0x1 is invalid. Duplicated.", False),
        ),
        (
            httpx.Response(200, json={"success": False, "errorMsg": "not enough balance / allowance"}),
            VenueReply(
                200,
                {"success": False, "errorMsg": "not enough balance / allowance"},
                "not enough balance / allowance",
                False,
            ),
        ),
        (
            httpx.Response(502, text="<html>bad gateway</html>"),
            VenueReply(502, None, "<html>bad gateway</html>", False),
        ),
        (httpx.Response(425, text=""), VenueReply(425, None, "HTTP 425", False)),
        (
            httpx.Response(503, json={"error": "Trading is currently disabled"}),
            VenueReply(503, {"error": "Trading is currently disabled"}, "Trading is currently disabled", False),
        ),
    ],
)
def test_http_errors_come_back_as_replies(response, expected):
    venue = Venue(lambda r: response)

    async def go():
        async with venue.client() as clob:
            return await clob.post_order(signed_body(), CREDS, ADDRESS)

    reply = run(go())
    assert reply == expected and not reply.ok


@pytest.mark.parametrize(
    "exception",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("reset"),
        httpx.ReadError("connection reset"),
    ],
)
def test_transport_failures_come_back_as_transport_errors(exception):
    def fail(request):
        raise exception

    async def go():
        async with Venue(fail).client() as clob:
            return await clob.post_order(signed_body(), CREDS, ADDRESS)

    reply = run(go())
    assert reply.transport_error and reply.status_code is None and reply.body is None
    assert type(exception).__name__ in reply.error and not reply.ok


def test_a_silent_server_times_out_at_the_configured_timeout():
    async def go():
        accepted = []

        async def hold(reader, writer):  # accept, read, never answer
            accepted.append(writer)
            await reader.read(1 << 16)

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with ClobHttp(f"http://127.0.0.1:{port}", timeout_s=0.3) as clob:
                started = time.monotonic()
                reply = await clob.post_order(signed_body(), CREDS, ADDRESS)
                return reply, time.monotonic() - started
        finally:
            for writer in accepted:
                writer.close()
            server.close()

    reply, elapsed = run(go())
    assert reply.transport_error and reply.status_code is None and "timeout" in reply.error
    assert 0.25 <= elapsed < 2.0


def test_get_trades_follows_the_cursor_and_signs_the_path_without_query():
    pages = {
        "MA==": {"data": [{"id": "t1"}, {"id": "t2"}], "next_cursor": "Mg=="},
        "Mg==": {"data": [{"id": "t3"}], "next_cursor": "NA=="},
        "NA==": {"data": [], "next_cursor": "LTE="},
    }
    venue = Venue(lambda r: httpx.Response(200, json=pages[r.url.params["next_cursor"]]))

    async def go():
        async with venue.client() as clob:
            return await clob.get_trades(CREDS, ADDRESS, market="0xc0", after=1_700_000_000, id=None)

    reply = run(go())
    assert reply.ok and [t["id"] for t in reply.body["data"]] == ["t1", "t2", "t3"]
    assert [r.url.params["next_cursor"] for r in venue.requests] == ["MA==", "Mg==", "NA=="]
    assert all(r.url.params["market"] == "0xc0" and r.url.params["after"] == "1700000000" for r in venue.requests)
    assert all("id" not in r.url.params for r in venue.requests)
    assert all(r.url.path == "/data/trades" and hmac_ok(r) for r in venue.requests)


def test_get_trades_returns_a_failing_page_as_is():
    venue = Venue(
        lambda r: (
            httpx.Response(200, json={"data": [{"id": "t1"}], "next_cursor": "Mg=="})
            if r.url.params["next_cursor"] == "MA=="
            else httpx.Response(500, json={"error": "boom"})
        )
    )

    async def go():
        async with venue.client() as clob:
            return await clob.get_trades(CREDS, ADDRESS)

    assert run(go()) == VenueReply(500, {"error": "boom"}, "boom", False)


def test_get_order_cancel_balance_and_book():
    venue = Venue(lambda r: httpx.Response(200, json={"ok": r.url.path}))
    order_hash = "0x" + "ab" * 32

    async def go():
        async with venue.client() as clob:
            return [
                await clob.get_order(order_hash, CREDS, ADDRESS),
                await clob.cancel(order_hash, CREDS, ADDRESS),
                await clob.cancel([order_hash, "0x" + "cd" * 32], CREDS, ADDRESS),
                await clob.cancel_all(CREDS, ADDRESS),
                await clob.balance_allowance(CREDS, ADDRESS, "CONDITIONAL", token_id="77", signature_type=2),
                await clob.book("77"),
            ]

    replies = run(go())
    assert all(r.ok for r in replies)
    get, cancel_one, cancel_many, cancel_all, balance, book = venue.requests
    assert (get.method, get.url.path) == ("GET", f"/data/order/{order_hash}") and hmac_ok(get)
    assert (cancel_one.method, cancel_one.url.path) == ("DELETE", "/order")
    assert json.loads(cancel_one.content) == {"orderID": order_hash} and hmac_ok(cancel_one)
    assert (cancel_many.url.path, json.loads(cancel_many.content)) == ("/orders", [order_hash, "0x" + "cd" * 32])
    assert hmac_ok(cancel_many) and cancel_all.url.path == "/cancel-all" and hmac_ok(cancel_all)
    assert balance.url.path == "/balance-allowance" and hmac_ok(balance)
    assert dict(balance.url.params) == {"asset_type": "CONDITIONAL", "token_id": "77", "signature_type": "2"}
    assert book.url.path == "/book" and book.url.params["token_id"] == "77"
    assert "POLY_SIGNATURE" not in book.headers  # public endpoint: no credentials sent


def test_derive_and_create_api_key_send_l1_headers():
    venue = Venue(lambda r: httpx.Response(200, json={"apiKey": "k", "secret": SECRET, "passphrase": "p"}))

    async def go():
        async with venue.client(chain_id=137) as clob:
            return await clob.derive_api_key(KEY, nonce=5), await clob.create_api_key(KEY)

    derived, created = run(go())
    assert ApiCreds.from_venue(derived.body) == ApiCreds("k", SECRET, "p") and created.ok
    derive, create = venue.requests
    assert (derive.method, derive.url.path, create.method, create.url.path) == (
        "GET",
        "/auth/derive-api-key",
        "POST",
        "/auth/api-key",
    )
    assert derive.headers["POLY_NONCE"] == "5" and create.headers["POLY_NONCE"] == "0"
    typed = {
        "primaryType": "ClobAuth",
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": 137},
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "message": {
            "address": ADDRESS,
            "timestamp": str(NOW),
            "nonce": 5,
            "message": "This message attests that I control the given wallet",
        },
    }
    assert (
        Account.recover_message(encode_typed_data(full_message=typed), signature=derive.headers["POLY_SIGNATURE"])
        == ADDRESS
    )


def test_clock_offset_moves_the_signed_timestamp():
    venue = Venue(lambda r: httpx.Response(200, json={}))

    async def go():
        async with venue.client(time_offset_s=-30) as clob:
            await clob.get_order("0x01", CREDS, ADDRESS)

    run(go())
    assert venue.requests[0].headers["POLY_TIMESTAMP"] == str(NOW - 30) and hmac_ok(venue.requests[0])


# --- both backends against real sockets: the simulator (reply classification) and a raw HTTP/1.1 server ------------
BACKENDS = ["aiohttp", "httpx"]
TOKEN = "123"


@pytest.fixture
def sim():
    config = SimulatorConfig(
        seed=5,
        default_collateral_e6=1_000_000_000,
        markets=[
            MarketConfig(condition_id="0x" + "c1" * 32, tokens=[TokenConfig(token_id=TOKEN, price=Decimal("0.5"))])
        ],
    )
    running = run_simulator(config)
    yield running
    running.stop()


def faults(sim, **settings) -> None:
    httpx.post(f"{sim.url}/_sim/faults", json=settings).raise_for_status()


def resting_body(owner: str, intent_id: str, size_e6: int = 10_000_000) -> str:
    """A GTC BUY below the book (rests: no liquidity needed), serialized once like a stored body."""
    fields = order_for_intent(
        intent_id,
        token_id=TOKEN,
        side="BUY",
        size_e6=size_e6,
        worst_price="0.45",
        tick_size="0.01",
        order_type="GTC",
        maker=ADDRESS,
        signer=ADDRESS,
        signature_type=0,
        builder="0x" + "00" * 32,
        timestamp_ms=int(time.time() * 1000),
    )
    return serialize_body(order_body(sign_order(fields, exchange_for("v1", False), KEY), owner=owner, order_type="GTC"))


async def derived(clob: ClobHttp) -> ApiCreds:
    reply = await clob.derive_api_key(KEY)
    assert reply.ok, reply
    return ApiCreds.from_venue(reply.body)


@pytest.mark.parametrize("backend", BACKENDS)
def test_simulator_replies_are_classified_alike(sim, backend):
    async def go():
        async with ClobHttp(sim.url, backend=backend, timeout_s=5) as clob:
            creds = await derived(clob)
            body = resting_body(creds.api_key, "intent-a")
            first = await clob.post_order(body, creds, ADDRESS)
            again = await clob.post_order(body, creds, ADDRESS)  # the same bytes: the venue knows the hash
            broke = await clob.post_order(resting_body(creds.api_key, "intent-b", size_e6=10**13), creds, ADDRESS)
            forged = await clob.post_order(
                resting_body(creds.api_key, "intent-c"), ApiCreds(creds.api_key, SECRET, creds.passphrase), ADDRESS
            )
            batch = await clob.post_orders(
                f"[{resting_body(creds.api_key, 'intent-d')},"
                f"{resting_body(creds.api_key, 'intent-e', size_e6=10**13)}]",
                creds,
                ADDRESS,
            )
            order = await clob.get_order(first.body["orderID"], creds, ADDRESS)
            return first, again, broke, forged, batch, order

    first, again, broke, forged, batch, order = run(go())
    assert first.ok and first.status_code == 200 and first.body["status"] == "live" and first.error is None
    assert again.status_code == 400 and "Duplicated" in again.error and not again.ok and not again.transport_error
    assert broke.status_code == 400 and broke.error.startswith("not enough balance / allowance")
    assert forged.status_code == 401 and not forged.ok and not forged.transport_error  # HMAC checked server-side
    assert batch.status_code == 200 and [r["success"] for r in batch.body] == [True, False]
    assert batch.body[1]["errorMsg"].startswith("not enough balance / allowance")
    assert order.ok and order.body["id"] == first.body["orderID"] and order.body["status"] == "LIVE"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "fault,expected",
    [
        (
            {"error_rate": 1, "error_status": 503},
            VenueReply(503, {"error": "Internal Server Error"}, "Internal Server Error", False),
        ),
        (
            {"reply_lost_rate": 1, "reply_lost_mode": "5xx"},
            VenueReply(502, {"error": "Bad Gateway"}, "Bad Gateway", False),
        ),
        ({"restart_seconds": 60}, VenueReply(425, {"error": RESTARTING}, RESTARTING, False)),
    ],
)
def test_simulator_faults_come_back_as_replies(sim, backend, fault, expected):
    async def go():
        async with ClobHttp(sim.url, backend=backend) as clob:
            creds = await derived(clob)
            faults(sim, **fault)
            return await clob.post_order(resting_body(creds.api_key, "intent-f"), creds, ADDRESS)

    assert run(go()) == expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "fault,needle",
    [
        ({"reply_lost_rate": 1, "reply_lost_mode": "drop"}, "on POST /order"),
        ({"timeout_rate": 1, "timeout_seconds": 3}, "timeout"),
    ],
)
def test_simulator_lost_and_held_replies_are_transport_errors(sim, backend, fault, needle):
    async def go():
        async with ClobHttp(sim.url, backend=backend, timeout_s=0.5) as clob:
            creds = await derived(clob)
            faults(sim, **fault)
            started = time.monotonic()
            reply = await clob.post_order(resting_body(creds.api_key, "intent-g"), creds, ADDRESS)
            return reply, time.monotonic() - started

    reply, elapsed = run(go())
    assert reply.transport_error and reply.status_code is None and reply.body is None and not reply.ok
    assert needle in reply.error and elapsed < 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_connection_is_a_transport_error(backend):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def go():
        async with ClobHttp(f"http://127.0.0.1:{port}", backend=backend, timeout_s=2) as clob:
            return await clob.post_order(serialize_body(signed_body()), CREDS, ADDRESS)

    reply = run(go())
    assert reply.transport_error and reply.status_code is None and "on POST /order" in reply.error


class RawServer:
    """A bare HTTP/1.1 server: records each request's raw head and body, answers with `reply` bytes."""

    def __init__(self, reply: bytes):
        self.reply = reply
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        line, *header_lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if ":" in h)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((line, headers, body))
        writer.write(self.reply)
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_bytes_and_hmac_on_the_wire(backend):
    raw = RawServer(
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 24\r\n"
        b"Connection: close\r\n\r\n<html>bad gateway</html>"
    )
    stored = serialize_body(signed_body())

    async def go():
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with ClobHttp(f"http://127.0.0.1:{port}", backend=backend, clock=lambda: NOW + 0.9) as clob:
                return await clob.post_order(stored, CREDS, ADDRESS)
        finally:
            server.close()

    reply = run(go())
    assert reply == VenueReply(502, None, "<html>bad gateway</html>", False)
    [(line, headers, body)] = raw.requests
    assert line == "POST /order HTTP/1.1" and body == stored.encode()
    assert headers["content-type"] == "application/json" and headers["poly_timestamp"] == str(NOW)
    message = (str(NOW) + "POST" + "/order" + body.decode()).encode()
    expected = base64.urlsafe_b64encode(
        hmac.new(base64.urlsafe_b64decode(SECRET), message, hashlib.sha256).digest()
    ).decode()
    assert headers["poly_signature"] == expected


def test_backend_choice_is_checked():
    with pytest.raises(ValueError, match="backend must be one of aiohttp, httpx"):
        ClobHttp("http://venue.test", backend="curl")
    with pytest.raises(ValueError, match="transport"):
        ClobHttp("http://venue.test", backend="aiohttp", transport=httpx.MockTransport(lambda r: None))
    assert ClobHttp("http://venue.test").backend == "aiohttp"
