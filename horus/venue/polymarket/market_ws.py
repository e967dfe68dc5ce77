"""The CLOB market channel, for one job: apply live `tick_size_change` events to the metadata cache.

Subscribes to the tokens the cache knows (and to new ones as they are cached), keeps the socket alive
with text PINGs, and reconnects with backoff; a bad frame is counted and skipped, never fatal.
Protocol (platform notes 8.1): subscribe `{"type": "market", "assets_ids": [...]}`, later
`{"operation": "subscribe", "assets_ids": [...]}`; frames are one event object or a list of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import websockets
from prometheus_client import Counter
from websockets.asyncio.client import ClientConnection

from horus.venue.polymarket.metadata import MarketMetadata

log = logging.getLogger("horus.venue.market_ws")

FRAMES = Counter("horus_market_ws_frames_total", "Market-channel frames by outcome", ["outcome"])
RECONNECTS = Counter("horus_market_ws_reconnects_total", "Market-channel reconnects")

PING_EVERY_S = 10.0


def events_of(frame: str | bytes) -> list[dict[str, Any]]:
    """The event objects in one text frame ('PONG' and other non-JSON frames give none)."""
    try:
        data = json.loads(frame)
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


class MarketChannel:
    def __init__(self, url: str, metadata: MarketMetadata, tokens: Callable[[], Iterable[str]]):
        self.url = url
        self.metadata = metadata
        self.tokens = tokens  # the token ids to watch, asked again after each frame and ping
        self.subscribed: set[str] = set()
        self.applied = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                async with websockets.connect(self.url, ping_interval=None) as socket:
                    backoff = 0.2
                    session = asyncio.ensure_future(self._session(socket))
                    stopped = asyncio.ensure_future(stop.wait())
                    await asyncio.wait({session, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    stopped.cancel()
                    if not session.done():  # stopping: leave now, not at the next frame or ping
                        session.cancel()
                    else:
                        session.result()  # a closed socket raises here and reconnects
            except (OSError, websockets.WebSocketException) as exc:
                RECONNECTS.inc()
                log.warning("market channel: %s; reconnecting in %.1fs", exc, backoff)
                try:
                    await asyncio.wait_for(stop.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 5.0)

    async def _session(self, socket: ClientConnection) -> None:
        self.subscribed = set()
        await self._subscribe(socket, first=True)
        while True:
            try:
                frame = await asyncio.wait_for(socket.recv(), PING_EVERY_S)
            except TimeoutError:
                await socket.send("PING")
                await self._subscribe(socket)
                continue
            for event in events_of(frame):
                self.handle(event)
            await self._subscribe(socket)

    async def _subscribe(self, socket: ClientConnection, first: bool = False) -> None:
        new = sorted(set(self.tokens()) - self.subscribed)
        if not new and not first:
            return
        message = {"type": "market", "assets_ids": new} if first else {"operation": "subscribe", "assets_ids": new}
        await socket.send(json.dumps(message))
        self.subscribed |= set(new)

    def handle(self, event: dict[str, Any]) -> None:
        if event.get("event_type") != "tick_size_change":
            FRAMES.labels("ignored").inc()
            return
        if self.metadata.apply_tick_size_change(event) is None:
            FRAMES.labels("bad").inc()
        else:
            FRAMES.labels("tick_size_change").inc()
            self.applied += 1
