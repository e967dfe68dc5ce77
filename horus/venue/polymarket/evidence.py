"""Find out what happened to one order hash: the venue's order record, its parts in venue trades, and its
on-chain `OrderFilled` logs, each read into the domain's facts (horus/domain/execute.py) by replies.py.

Each source either answers (possibly "nothing there") or fails; `Evidence.complete` is True only
when every configured source answered, which is what proving an order absent requires (DESIGN
invariant 4: no guessing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from horus.domain.execute import ChainFill, TradePart, VenueOrder
from horus.venue.polymarket.auth import ApiCreds
from horus.venue.polymarket.exchanges import ORDER_FILLED_TOPICS, ExchangeBook
from horus.venue.polymarket.fills import FillDecodeError, decode_log
from horus.venue.polymarket.replies import order_trades, venue_order

log = logging.getLogger("horus.venue")


@dataclass
class Evidence:
    venue_order: VenueOrder | None = None
    trades: list[TradePart] = field(default_factory=list)  # the order's own parts
    chain_fills: list[ChainFill] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures


class ChainLookup:
    """`OrderFilled` logs with topic1 = the order hash, over the exchange book, via eth_getLogs."""

    def __init__(self, rpc_url: str, book: ExchangeBook, *, lookback_blocks: int = 0, timeout_s: float = 10.0):
        self.rpc_url = rpc_url
        self.book = book
        self.lookback_blocks = lookback_blocks  # 0: from genesis (dev chains)
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._id = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        self._id += 1
        response = await self._client.post(
            self.rpc_url, json={"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        )
        response.raise_for_status()
        body = response.json()
        if body.get("error"):
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    async def fills(self, order_hash: str) -> list[ChainFill]:
        from_block = "0x0"
        if self.lookback_blocks:
            head = int(await self._rpc("eth_blockNumber", []), 16)
            from_block = hex(max(0, head - self.lookback_blocks))
        flt = self.book.log_filter()
        logs = await self._rpc(
            "eth_getLogs",
            [
                {
                    "address": flt["address"],
                    "fromBlock": from_block,
                    "toBlock": "latest",
                    "topics": [sorted(ORDER_FILLED_TOPICS.values()), order_hash.lower()],
                }
            ],
        )
        found = []
        for entry in logs:
            try:
                fill = decode_log(entry, self.book)
            except FillDecodeError as exc:
                log.warning("chain lookup of %s: undecodable log skipped: %s", order_hash, exc)
                continue
            found.append(ChainFill(fill.shares_e6, fill.collateral_e6, fill.fee_e6, fill.removed))
        return found


def chain_lookup(rpc_url: str, exchanges: str, lookback_blocks: int) -> ChainLookup:
    """The chain look-up over the configured exchange book (HORUS_EXCHANGES on top of mainnet's)."""
    return ChainLookup(rpc_url, ExchangeBook.configured(exchanges), lookback_blocks=lookback_blocks)


class Lookup:
    """All three sources for one order; `venue` is the CLOB client (clob.py), `chain` optional."""

    def __init__(self, venue: Any, chain: ChainLookup | None = None) -> None:
        self.venue = venue
        self.chain = chain

    async def evidence(
        self, order_hash: str, *, creds: ApiCreds, address: str, maker: str, token_id: str, after_s: int | None = None
    ) -> Evidence:
        """The three sources for one order; `after_s` (unix seconds): only trades matched after it can be its own."""
        ev = Evidence()
        reply = await self.venue.get_order(order_hash, creds, address)
        if reply.status_code == 404 or (reply.ok and not reply.body):
            ev.venue_order = None
        elif reply.ok and isinstance(reply.body, dict):
            ev.venue_order = venue_order(reply.body)
        else:
            ev.failures.append(f"venue order: HTTP {reply.status_code}: {reply.error}")
        reply = await self.venue.get_trades(creds, address, maker_address=maker, asset_id=token_id, after=after_s)
        if reply.ok and isinstance(reply.body, dict):
            ev.trades = order_trades(order_hash, reply.body.get("data") or [])
        else:
            ev.failures.append(f"venue trades: HTTP {reply.status_code}: {reply.error}")
        if self.chain is not None:
            try:
                ev.chain_fills = await self.chain.fills(order_hash)
            except Exception as exc:  # node down, bad reply: the evidence is incomplete, not empty
                ev.failures.append(f"chain: {type(exc).__name__}: {exc}")
        return ev
