"""The exchange address book: which contracts' `OrderFilled` logs count as fills, and which layout they emit.

A fill log is only believed when it comes from an address in the book: anyone can deploy a contract that
emits an event with the same signature, so an `OrderFilled` from an unknown address is an error, never a
fill. The Polygon mainnet defaults come from the platform notes (section 6, confidence H):

- CTF Exchange V2 (standard) and NegRisk CTF Exchange V2, and ExchangeV3 (Protocol-V2 markets): V2 layout
  (`OrderFilled(..., uint8 side, uint256 tokenId, ...)`, ExchangeV3 emits the identical event).
- CTF Exchange V1 and NegRisk CTF Exchange V1 (dead since the 2026-04-28 cut-over, kept so history and
  replay files decode): V1 layout (`makerAssetId/takerAssetId`).

Not in the defaults: the second neg-risk V2 exchange `0xe2222d00...0036` (only in a third-party crate, open
question 13.5 of the notes). Add it, or local anvil contracts, with :meth:`ExchangeBook.with_exchange`;
an added address with ``layout=None`` accepts either layout (recognised by topic0).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import is_address, keccak, to_checksum_address, to_hex


class Layout(StrEnum):
    """The two `OrderFilled` data layouts."""

    V1 = "v1"  # makerAssetId, takerAssetId, makerAmountFilled, takerAmountFilled, fee
    V2 = "v2"  # side, tokenId, makerAmountFilled, takerAmountFilled, fee, builder, metadata (also ExchangeV3)


ORDER_FILLED_V1_SIGNATURE = "OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"
ORDER_FILLED_V2_SIGNATURE = "OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)"

#: topic0 of each layout's `OrderFilled`, computed with keccak from the canonical signature.
ORDER_FILLED_TOPICS: dict[Layout, str] = {
    Layout.V1: to_hex(keccak(text=ORDER_FILLED_V1_SIGNATURE)),
    Layout.V2: to_hex(keccak(text=ORDER_FILLED_V2_SIGNATURE)),
}
ORDER_FILLED_V1_TOPIC = ORDER_FILLED_TOPICS[Layout.V1]
ORDER_FILLED_V2_TOPIC = ORDER_FILLED_TOPICS[Layout.V2]
LAYOUT_BY_TOPIC: dict[str, Layout] = {topic: layout for layout, topic in ORDER_FILLED_TOPICS.items()}

# Polygon mainnet (chain 137), platform notes section 6.
CTF_EXCHANGE_V2 = "0xe111180000d2663c0091e4f400237545b87b996b"
NEG_RISK_CTF_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310f59"
EXCHANGE_V3 = "0xe3333700ca9d93003f00f0f71f8515005f6c00aa"
CTF_EXCHANGE_V1 = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"
NEG_RISK_CTF_EXCHANGE_V1 = "0xc5d563a36ae78145c45a50134d48a1215220f80a"
#: Low confidence (one third-party source); deliberately not a default. Add it explicitly if confirmed.
NEG_RISK_EXCHANGE_V2_B_UNVERIFIED = "0xe2222d002000ba0053cef3375333610f64600036"


class AddressBookError(ValueError):
    """An address given to the book is not a 20-byte hex address."""


def normalize_address(address: str | bytes) -> str:
    """Lowercase 0x hex of a 20-byte address given as hex (any case, checksum not required) or bytes."""
    if isinstance(address, (bytes, bytearray, memoryview)):
        raw = bytes(address)
        if len(raw) != 20:
            raise AddressBookError(f"address must be 20 bytes, got {len(raw)}")
        return "0x" + raw.hex()
    if not isinstance(address, str) or not is_address(address.strip().lower()):
        raise AddressBookError(f"{address!r} is not a 20-byte 0x hex address")
    return address.strip().lower()


@dataclass(frozen=True, slots=True)
class Exchange:
    address: str  # lowercase 0x hex
    name: str
    layout: Layout | None = None  # None: either layout, recognised by topic0
    neg_risk: bool = False

    def accepts(self, layout: Layout) -> bool:
        return self.layout is None or self.layout is layout


MAINNET_EXCHANGES: tuple[Exchange, ...] = (
    Exchange(CTF_EXCHANGE_V2, "CTF Exchange V2", Layout.V2),
    Exchange(NEG_RISK_CTF_EXCHANGE_V2, "NegRisk CTF Exchange V2", Layout.V2, neg_risk=True),
    Exchange(EXCHANGE_V3, "ExchangeV3", Layout.V2),
    Exchange(CTF_EXCHANGE_V1, "CTF Exchange V1", Layout.V1),
    Exchange(NEG_RISK_CTF_EXCHANGE_V1, "NegRisk CTF Exchange V1", Layout.V1, neg_risk=True),
)


class ExchangeBook:
    """An immutable set of exchange contracts keyed by lowercase address."""

    __slots__ = ("_by_address",)

    def __init__(self, exchanges: Iterable[Exchange] = ()):
        by_address: dict[str, Exchange] = {}
        for exchange in exchanges:
            address = normalize_address(exchange.address)
            by_address[address] = Exchange(address, exchange.name, exchange.layout, exchange.neg_risk)
        self._by_address = by_address

    @classmethod
    def mainnet(cls) -> ExchangeBook:
        """The Polygon mainnet exchanges (V2, neg-risk V2, V3, and the two V1 ones for history)."""
        return cls(MAINNET_EXCHANGES)

    @classmethod
    def of(cls, *addresses: str, name: str = "custom") -> ExchangeBook:
        """A book of just these addresses, each accepting either layout (e.g. anvil test contracts)."""
        return cls(Exchange(normalize_address(a), name) for a in addresses)

    def with_exchange(
        self, address: str | bytes, name: str = "custom", layout: Layout | None = None, neg_risk: bool = False
    ) -> ExchangeBook:
        """A new book with one more (or one replaced) exchange."""
        address = normalize_address(address)
        return ExchangeBook([*(e for e in self if e.address != address), Exchange(address, name, layout, neg_risk)])

    @classmethod
    def configured(cls, exchanges: str, extra: Iterable[str] = ()) -> ExchangeBook:
        """The mainnet exchanges + an operator's comma-separated list (HORUS_EXCHANGES) + ``extra``, each accepting
        either layout: the book every source and the executor's chain look-up read logs with."""
        return cls.mainnet().with_addresses([*(a.strip() for a in exchanges.split(",") if a.strip()), *extra])

    def with_addresses(self, addresses: Iterable[str], name: str = "custom") -> ExchangeBook:
        """A new book with these extra addresses, each accepting either layout."""
        book = self
        for address in addresses:
            book = book.with_exchange(address, name)
        return book

    def get(self, address: str | bytes) -> Exchange | None:
        try:
            return self._by_address.get(normalize_address(address))
        except AddressBookError:
            return None

    def __contains__(self, address: object) -> bool:
        return isinstance(address, (str, bytes)) and self.get(address) is not None

    def __iter__(self) -> Iterator[Exchange]:
        return iter(sorted(self._by_address.values(), key=lambda e: e.address))

    def __len__(self) -> int:
        return len(self._by_address)

    def __repr__(self) -> str:
        return f"ExchangeBook({[e.address for e in self]})"

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(e.address for e in self)

    def log_filter(self, leaders: Iterable[str] | None = None) -> dict[str, Any]:
        """eth_getLogs / eth_subscribe("logs") filter: every book address, topic0 = either `OrderFilled`,
        and when ``leaders`` is given, topic2 (the order's maker) one of them. Leaders as maker cover both
        roles: the taker's own fill is logged with maker = taker wallet (notes section 7)."""
        topics: list[Any] = [sorted(ORDER_FILLED_TOPICS.values())]
        if leaders is not None:
            topics += [None, sorted({to_hex(abi_encode(["address"], [normalize_address(w)])) for w in leaders})]
        return {"address": [to_checksum_address(a) for a in self.addresses], "topics": topics}
