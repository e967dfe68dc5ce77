"""The paper venue, as the engine sees it: in paper mode the CLOB simulator starts with no market, and decide
makes and moves the simulator's markets around the prices the leaders trade at (`PaperMarkets`). The guard
(horus/venue/guard.py) has checked that the URL is the simulator before this is used. The simulator itself stays a
peer that imports nothing of the engine; accounts, funding and faults for demos and tests are in horus/ops/paper.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import httpx

from horus.domain import ids

log = logging.getLogger("horus.venue.paper")


PAPER_BOOK: dict[str, Any] = {"tick_size": "0.01", "levels": 6, "level_size": 400, "replenish": True}


def paper_condition(token_id: str) -> str:
    """The condition id of a paper market made for a token whose real condition id is not known (or taken)."""
    return "0x" + ids.make_id("paper-market", token_id)


def paper_market(token_id: str, price: str | Decimal, condition_id: str | None = None) -> dict:
    """The simulator's market config (POST /_sim/markets) for one token, its book around `price`."""
    return {
        "condition_id": (condition_id or paper_condition(token_id)).lower(),
        "tokens": [{"token_id": str(token_id), "price": str(price)}],
        **PAPER_BOOK,
    }


class PaperMarkets:
    """Paper trading of real leaders on a paper venue that starts empty (its identity says `follow_leaders`):
    the simulator knows no market until a leader trades it. Before decide reads a batch's market data, each
    token's market is made on the simulator (the fill's condition id when known, else one derived from the
    token), and a token the leader trades at a new price has its book moved there: the best level on the side
    the leader took sits at the leader's price (a BUY lifted the ask, a SELL hit the bid), so a copy within its
    slippage finds it. Paper mode only: the guard has checked that `sim_url` is the simulator. Never raises: a
    market that cannot be made is a SKIP (unknown market) for this batch and is tried again with the next."""

    def __init__(self, sim_url: str, client: httpx.AsyncClient) -> None:
        self.sim_url, self.client = sim_url.rstrip("/"), client
        self.known: set[str] = set()  # tokens with a market on the simulator
        self.prices: dict[str, str] = {}  # token -> the price its book was last centred on

    async def follow(self, candidates: Iterable[dict]) -> set[str]:
        """Make or move the markets of these candidates' tokens; returns the tokens whose book moved."""
        latest: dict[str, tuple[str | None, str, str]] = {}
        for c in candidates:  # the newest fill of a token in the batch sets its price
            latest[str(c["token_id"])] = (c.get("condition_id"), str(c["leader_price"]), str(c.get("side")))
        moved = await asyncio.gather(
            *(self._follow(token, condition, price, side) for token, (condition, price, side) in latest.items())
        )
        return {token for token, changed in zip(latest, moved) if changed}

    async def _follow(self, token: str, condition: str | None, leader_price: str, side: str) -> bool:
        price = _book_centre(leader_price, side)
        if price is None:  # a hostile or broken fill makes no market (decide: the market is unknown)
            log.warning("paper venue: no market for token %s at price %r", token[:80], leader_price[:40])
            return False
        try:
            if token not in self.known:
                created = await self._create(token, condition, price)
                self.known.add(token)
                if created:
                    self.prices[token] = price
                    return True
            if self.prices.get(token) == price:
                return False
            reply = await self.client.post(f"{self.sim_url}/_sim/books", json={"token_id": token, "price": price})
            reply.raise_for_status()
            self.prices[token] = price
            return True
        except Exception as exc:  # noqa: BLE001 - decide goes on: the token's market data is just missing
            log.warning("paper venue: no market for token %s at %s: %s", token, price, exc)
            return False

    async def _create(self, token: str, condition: str | None, price: str) -> bool:
        """True if made now, False if the simulator already had it. The fill's condition id is tried first; the
        derived one if that is refused (taken by a sibling outcome made first: a market cannot gain tokens)."""
        error = ""
        for cid in dict.fromkeys(filter(None, (condition, paper_condition(token)))):
            reply = await self.client.post(f"{self.sim_url}/_sim/markets", json=paper_market(token, price, cid))
            if reply.is_success:
                return True
            error = f"HTTP {reply.status_code}: {_error_of(reply)}"
            if "already belongs to a market" in error:
                return False
        raise RuntimeError(f"/_sim/markets answered {error}")


def _book_centre(leader_price: str, side: str) -> str | None:
    """The price to centre a paper book on so that the leader's side has its best level at the leader's price:
    the simulator puts the best bid at the centre (on the tick grid) and the best ask one tick above, so a BUY
    centres a tick lower. None if `leader_price` is not a price in (0, 1)."""
    try:
        price = Decimal(leader_price)
    except ArithmeticError:  # InvalidOperation: not a number
        return None
    if not Decimal(0) < price < Decimal(1):
        return None
    tick = Decimal(PAPER_BOOK["tick_size"])
    centre = price - tick if side == "BUY" and price - tick >= tick else price
    return str(centre)


def _error_of(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    return str(body.get("error", "")) if isinstance(body, dict) else str(body)[:200]
