"""Fault injection around the venue's replies: latency on every call, and on order endpoints a 425 restart
window, 5xx before processing, a reply held past the client's timeout, or a reply lost after processing.
(Faults inside the venue's rules, balance_before_duplicate and the trade settlement lag, live in state.py.)
Every roll comes from the state's seeded RNG, so a run with the same seed and request order repeats."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.responses import Response

from horus.venue.simulator.clob.state import RESTARTING, VenueState

RECEIVED_AT = "sim.received_at"  # ASGI scope key: epoch seconds the request arrived, before the latency


class DropReply(Exception):
    """Raised after the order was processed: the connection is cut mid-reply."""


def json_response(body: object, status: int = 200) -> Response:
    return Response(content=json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")


def before_order(state: VenueState) -> Response | None:
    """A reply that replaces processing (425 while the engine restarts, or an injected 5xx), else None."""
    if time.time() < state.restart_until:
        return json_response({"error": RESTARTING}, 425)
    faults = state.faults
    if state.roll(faults.error_rate):
        return json_response({"error": "Internal Server Error"}, faults.error_status)
    return None


async def after_order(state: VenueState, response: Response) -> Response:
    """The processed order's reply, possibly held (timeout) or lost (5xx / dropped connection)."""
    faults = state.faults
    if state.roll(faults.timeout_rate):
        await asyncio.sleep(faults.timeout_seconds)
    if state.roll(faults.reply_lost_rate):
        if faults.reply_lost_mode == "drop":
            raise DropReply()
        return json_response({"error": "Bad Gateway"}, 502)
    return response


def read_fault(state: VenueState) -> Response | None:
    if state.roll(state.faults.read_error_rate):
        return json_response({"error": "Internal Server Error"}, state.faults.error_status)
    return None


class LatencyMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): sleeps the configured latency before venue calls so many
    requests overlap, and turns DropReply into a reply cut short."""

    def __init__(self, app, state: VenueState):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[RECEIVED_AT] = time.time()
        if not scope["path"].startswith("/_sim"):
            faults = self.state.faults
            delay_ms = faults.latency_ms + (self.state.rng.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0)
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
        self.state.advance()  # in-flight trades reach their status by the clock, before anyone reads them
        try:
            await self.app(scope, receive, send)
        except DropReply:
            # promise more bytes than are sent: the server closes the connection, the client sees a broken reply
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            try:
                await send({"type": "http.response.body", "body": b'{"success":', "more_body": False})
            except RuntimeError:  # uvicorn refuses the short body and closes the connection: the point
                pass
