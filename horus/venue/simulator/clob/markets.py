"""The listed markets, by condition id and by token, with one order book per token and the synthetic
liquidity a market's config seeds into it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from horus.venue.simulator.clob.book import Book, VenueOrder
from horus.venue.simulator.clob.config import AMOUNT_DECIMALS, EXCHANGES, MarketConfig, TokenConfig
from horus.venue.simulator.clob.rejections import Rejected
from horus.venue.simulator.clob.signatures import exchange_domain_separator
from horus.venue.simulator.clob.units import E6, to_e6


@dataclass
class Market:
    config: MarketConfig
    domain_separator: bytes
    exchange: str
    tick_e6: int
    amount_decimals: int
    outcomes: dict[str, str]  # token id -> outcome name

    @property
    def condition_id(self) -> str:
        return self.config.condition_id


class Markets:
    """Iterates the markets; `get` by condition id, `for_token` by token id, `books` by token id."""

    def __init__(self, chain_id: int):
        self._chain_id = chain_id
        self._by_condition: dict[str, Market] = {}
        self._by_token: dict[str, Market] = {}
        self.books: dict[str, Book] = {}

    def __len__(self) -> int:
        return len(self._by_condition)

    def __iter__(self) -> Iterator[Market]:
        return iter(self._by_condition.values())

    def get(self, condition_id: str) -> Market | None:
        return self._by_condition.get(condition_id.lower())

    def for_token(self, token_id: str) -> Market | None:
        return self._by_token.get(token_id)

    def config_for(self, token_id: str) -> MarketConfig:
        """The config of a listed token's market (KeyError for a token not listed)."""
        return self._by_token[token_id].config

    def add(self, config: MarketConfig) -> Market:
        """List a market on the exchange its version and neg-risk flag name, its books seeded from the config."""
        if config.condition_id.lower() in self._by_condition:
            raise Rejected(f"market {config.condition_id} already exists")
        for token in config.tokens:
            if token.token_id in self._by_token:
                raise Rejected(f"token {token.token_id} already belongs to a market")
        exchanges = EXCHANGES[self._chain_id]
        if config.version == "v2":
            exchange, version = exchanges["v3"], "3"
        else:
            exchange, version = exchanges["v2_neg_risk" if config.neg_risk else "v2"], "2"
        market = Market(
            config=config,
            domain_separator=exchange_domain_separator(version, self._chain_id, exchange),
            exchange=exchange,
            tick_e6=to_e6(Decimal(config.tick_size)),
            amount_decimals=AMOUNT_DECIMALS[config.tick_size],
            outcomes={t.token_id: t.outcome for t in config.tokens},
        )
        self._by_condition[config.condition_id.lower()] = market
        for index, token in enumerate(config.tokens):
            self._by_token[token.token_id] = market
            book = self.books[token.token_id] = Book(token.token_id)
            price = token.price
            if price is None and token.bids is None and token.asks is None and len(config.tokens) == 2:
                first = config.tokens[0].price
                price = (1 - first) if index == 1 and first is not None else None
            _seed_book(market, book, token, price)
        return market

    def move_book(self, token_id: str, price: Decimal) -> Book:
        """Re-centre a token's synthetic liquidity on `price` (the market moved); resting user orders stay."""
        market = self._by_token.get(token_id)
        if market is None:
            raise Rejected(f"market not found for token id {token_id}")
        book = self.books[token_id]
        for side in ("BUY", "SELL"):
            for order in list(book.resting(side)):
                if order.synthetic:
                    book.remove(order)
        token = next(t for t in market.config.tokens if t.token_id == token_id)
        _seed_book(market, book, token.model_copy(update={"bids": None, "asks": None}), price)
        return book


def _seed_book(market: Market, book: Book, token: TokenConfig, price: Decimal | None) -> None:
    """Synthetic resting orders: the token's explicit levels, or `levels` a side around `price`."""
    tick = market.tick_e6
    levels: list[tuple[str, int, int]] = []
    if token.bids is not None or token.asks is not None:
        levels += [("BUY", to_e6(lv.price), to_e6(lv.size)) for lv in token.bids or []]
        levels += [("SELL", to_e6(lv.price), to_e6(lv.size)) for lv in token.asks or []]
    elif price is not None:
        # best bid at or below the seed price, best ask spread_ticks above it
        best_bid = to_e6(price) // tick * tick - market.config.spread_ticks // 2 * tick
        best_ask = best_bid + market.config.spread_ticks * tick
        size = to_e6(market.config.level_size)
        for k in range(market.config.levels):
            levels.append(("BUY", best_bid - k * tick, size))
            levels.append(("SELL", best_ask + k * tick, size))
    for side, price_e6, size_e6 in levels:
        if not (tick <= price_e6 <= E6 - tick) or price_e6 % tick:
            continue  # off-grid or outside [tick, 1-tick]: not a valid level
        order = VenueOrder(
            order_id=f"sim-{token.token_id[-8:]}-{side}-{price_e6}",
            owner="",
            maker="",
            signer="",
            token_id=token.token_id,
            market=market.condition_id,
            outcome=token.outcome,
            side=side,
            price_e6=price_e6,
            size_e6=size_e6,
            maker_amount=0,
            taker_amount=0,
            order_type="GTC",
            synthetic=True,
        )
        book.add(order)
