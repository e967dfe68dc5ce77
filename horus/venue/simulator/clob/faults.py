"""Fault injection: the settings in force with the seeded RNG every roll draws from (`Faults`), and the faults
around the venue's replies: latency on every call, and on order endpoints a 425 restart window, 5xx before
processing, a reply held past the client's timeout, or a reply lost after processing.
(Faults inside the venue's rules live with those rules: balance_before_duplicate in state.py, hidden fills in
matching.py, the trade settlement lag in settlement.py.) Every roll comes from the one seeded RNG, so a run
with the same seed and request order repeats."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from starlette.responses import Response

from horus.venue.simulator.clob.config import FaultConfig
from horus.venue.simulator.clob.rejections import RESTARTING
from horus.venue.simulator.clob.views import json_response

RECEIVED_AT = "sim.received_at"  # ASGI scope key: epoch seconds the request arrived, before the latency


class Faults:
    """The fault settings in force, the restart window they opened, and the venue's seeded RNG."""

    def __init__(self, settings: FaultConfig, rng: random.Random):
        self.rng = rng
        self.settings = settings
        self.restart_until = 0.0
        self.post_only_until = 0.0
        self.set(settings)

    def set(self, settings: FaultConfig, now: float | None = None) -> None:
        """Install fault settings; a positive restart window starts now."""
        self.settings = settings
        now = time.time() if now is None else now
        if settings.restart_seconds > 0 or settings.post_only_seconds > 0:
            self.restart_until = now + settings.restart_seconds
            self.post_only_until = self.restart_until + settings.post_only_seconds

    def roll(self, rate: float) -> bool:
        """True with probability `rate`; a rate of 0 draws nothing from the RNG."""
        return rate > 0 and self.rng.random() < rate

    def reply_delay_ms(self) -> float:
        """The latency before a venue reply: the fixed part plus a uniform jitter (drawn only when set)."""
        settings = self.settings
        return settings.latency_ms + (self.rng.uniform(0, settings.jitter_ms) if settings.jitter_ms else 0)


class DropReply(Exception):
    """Raised after the order was processed: the connection is cut mid-reply."""


def restarting_reply() -> Response:
    """425: the matching engine restarts (the `restart_seconds` window); the client should retry later."""
    return json_response({"error": RESTARTING}, 425)


def before_order(faults: Faults) -> Response | None:
    """A reply that replaces processing (425 while the engine restarts, or an injected 5xx), else None."""
    if time.time() < faults.restart_until:
        return restarting_reply()
    if faults.roll(faults.settings.error_rate):
        return json_response({"error": "Internal Server Error"}, faults.settings.error_status)
    return None


async def after_order(faults: Faults, response: Response) -> Response:
    """The processed order's reply, possibly held (timeout) or lost (5xx / dropped connection)."""
    settings = faults.settings
    if faults.roll(settings.timeout_rate):
        await asyncio.sleep(settings.timeout_seconds)
    if faults.roll(settings.reply_lost_rate):
        if settings.reply_lost_mode == "drop":
            raise DropReply()
        return json_response({"error": "Bad Gateway"}, 502)
    return response


def read_fault(faults: Faults) -> Response | None:
    """An injected 5xx for an authenticated read, else None."""
    if faults.roll(faults.settings.read_error_rate):
        return json_response({"error": "Internal Server Error"}, faults.settings.error_status)
    return None


class LatencyMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): sleeps the configured latency before venue calls so many
    requests overlap, brings in-flight trades to their status by the clock (`advance`), and turns DropReply
    into a reply cut short."""

    def __init__(self, app, faults: Faults, advance: Callable[[], None]):
        self.app = app
        self.faults = faults
        self.advance = advance

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[RECEIVED_AT] = time.time()
        if not scope["path"].startswith("/_sim"):
            delay_ms = self.faults.reply_delay_ms()
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
        self.advance()  # in-flight trades reach their status by the clock, before anyone reads them
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
