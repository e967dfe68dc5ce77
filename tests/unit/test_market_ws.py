"""The market channel against a real WebSocket server on loopback: it subscribes to the cached tokens
and a live tick_size_change (a real captured frame) lands in the metadata cache at once."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import websockets

from horus.venue.polymarket.market_ws import MarketChannel, events_of
from horus.venue.polymarket.markets import parse_gamma_market
from horus.venue.polymarket.metadata import MarketMetadata
from tests.unit.test_metadata import GAMMA, SETTINGS, UP

CAPTURED_TICK = {
    "asset_id": UP,
    "event_type": "tick_size_change",
    "market": GAMMA["conditionId"],
    "new_tick_size": "0.001",
    "old_tick_size": "0.01",
    "timestamp": "1739068041853",
}


def test_frames_may_be_lists_objects_or_keepalives():
    assert events_of('[{"event_type": "book"}, {"event_type": "price_change"}]') == [
        {"event_type": "book"},
        {"event_type": "price_change"},
    ]
    assert events_of('{"event_type": "book"}') == [{"event_type": "book"}]
    assert events_of("PONG") == []


def test_live_tick_size_change_reaches_the_cache():
    async def scenario():
        received: list[dict] = []

        async def venue(socket):
            received.append(json.loads(await socket.recv()))  # the subscription
            await socket.send("garbage that is not json")
            await socket.send(json.dumps([{"event_type": "book", "asset_id": UP}, CAPTURED_TICK]))
            await socket.wait_closed()

        async with websockets.serve(venue, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with httpx.AsyncClient() as client:
                metadata = MarketMetadata(SETTINGS, client)
                for info in parse_gamma_market(GAMMA):
                    metadata.put(info)
                before = metadata.peek(UP).tick_size
                channel = MarketChannel(f"ws://127.0.0.1:{port}", metadata, metadata.known_tokens)
                stop = asyncio.Event()
                task = asyncio.create_task(channel.run(stop))
                for _ in range(100):
                    if channel.applied:
                        break
                    await asyncio.sleep(0.02)
                stop.set()
                await asyncio.wait_for(task, 15)
        return received, before, metadata.peek(UP).tick_size, channel.applied

    received, before, after, applied = asyncio.run(scenario())
    assert received[0]["type"] == "market" and UP in received[0]["assets_ids"]
    assert applied == 1 and after == Decimal("0.001") and before != after
