"""Order validation: a POSTed payload parsed into a signed order, and the venue's checks of it (signature and
signer, expiry, amounts against the market's precision, tick and minimum, balance/allowance). The order the
checks run in is VenueState.submit's (state.py)."""

from __future__ import annotations

from dataclasses import dataclass

from horus.venue.simulator.clob.accounts import Account, Accounts
from horus.venue.simulator.clob.auth import ApiKey
from horus.venue.simulator.clob.book import VenueOrder
from horus.venue.simulator.clob.fees import fee_bound_e6
from horus.venue.simulator.clob.markets import Market
from horus.venue.simulator.clob.rejections import (
    INVALID_EXPIRATION,
    INVALID_SIGNATURE,
    NOT_ENOUGH_BALANCE,
    OWNER_MISMATCH,
    POST_ONLY_TYPE,
    SIGNER_MISMATCH,
    Rejected,
)
from horus.venue.simulator.clob.signatures import SIG_POLY_1271, OrderStruct, SignatureError, verify_order
from horus.venue.simulator.clob.units import E6, decimal_text, to_e6

ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")
ZERO32 = "0x" + "00" * 32


@dataclass(frozen=True)
class PostedOrder:
    """One POSTed order, parsed: the signed struct and what the payload says around it."""

    struct: OrderStruct
    signature: str
    expiration: int
    order_type: str
    post_only: bool

    @property
    def side(self) -> str:
        return "BUY" if self.struct.side == 0 else "SELL"

    def venue_order(
        self, order_id: str, key: ApiKey, market: Market, size_e6: int, price_e6: int, now: float, received_at: float
    ) -> VenueOrder:
        """The order as the venue records it, once its checks up to the balance have passed."""
        order = self.struct
        token_id = str(order.token_id)
        return VenueOrder(
            order_id=order_id,
            owner=key.api_key,
            maker=order.maker.lower(),
            signer=order.signer.lower(),
            token_id=token_id,
            market=market.condition_id,
            outcome=market.outcomes[token_id],
            side=self.side,
            price_e6=price_e6,
            size_e6=size_e6,
            maker_amount=order.maker_amount,
            taker_amount=order.taker_amount,
            order_type=self.order_type,
            signature_type=order.signature_type,
            metadata=order.metadata.lower(),
            builder=order.builder.lower(),
            expiration=self.expiration,
            post_only=self.post_only,
            created_ms=int(now * 1000),
            received_us=int(received_at * 1_000_000),
        )


def parse_posted_order(payload: object, key: ApiKey) -> PostedOrder:
    """The payload's order fields, then its owner, order type and post-only flag, checked in that order."""
    if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
        raise Rejected("Invalid order payload: expected {order, owner, orderType}")
    raw = payload["order"]
    try:
        struct = OrderStruct(
            salt=int(raw["salt"]),
            maker=str(raw["maker"]),
            signer=str(raw["signer"]),
            token_id=int(raw["tokenId"]),
            maker_amount=int(raw["makerAmount"]),
            taker_amount=int(raw["takerAmount"]),
            side={"BUY": 0, "SELL": 1}[raw["side"]],
            signature_type=int(raw["signatureType"]),
            timestamp=int(raw["timestamp"]),
            metadata=str(raw.get("metadata") or ZERO32),
            builder=str(raw.get("builder") or ZERO32),
        )
        expiration = int(raw.get("expiration") or 0)
        signature = str(raw["signature"])
    except (KeyError, ValueError, TypeError) as exc:
        raise Rejected(f"Invalid order payload: bad or missing field {exc}") from exc
    if payload.get("owner") != key.api_key:
        raise Rejected(OWNER_MISMATCH)
    order_type = payload.get("orderType")
    if order_type not in ORDER_TYPES:
        raise Rejected(f"Invalid order payload: orderType must be one of {', '.join(ORDER_TYPES)}")
    post_only = bool(payload.get("postOnly"))
    if post_only and order_type not in ("GTC", "GTD"):
        raise Rejected(POST_ONLY_TYPE)
    return PostedOrder(struct, signature, expiration, order_type, post_only)


def check_signer(posted: PostedOrder, market: Market, chain_id: int, key: ApiKey, accounts: Accounts) -> str:
    """Verify the signature and that the key's EOA signed it; returns the order id (its EIP-712 hash).

    Types 0-2 are signed by the key's EOA; type 3 by the EOA registered for the deposit wallet."""
    order = posted.struct
    wallet_signer = None
    if order.signature_type == SIG_POLY_1271:
        wallet_signer = accounts.wallet_signer(order.maker, SIG_POLY_1271)
    try:
        order_id = verify_order(order, posted.signature, market.domain_separator, chain_id, wallet_signer)
    except SignatureError as exc:
        raise Rejected(f"{INVALID_SIGNATURE}: {exc}") from exc
    signing_eoa = wallet_signer if order.signature_type == SIG_POLY_1271 else order.signer.lower()
    if signing_eoa != key.address:
        raise Rejected(SIGNER_MISMATCH, order_id=order_id)
    return order_id


def check_expiration(order_type: str, expiration: int, now: float, gtd_min_seconds: int, order_id: str) -> None:
    """A GTD order expires at least `gtd_min_seconds` from now; any other has no expiration."""
    if order_type == "GTD":
        if expiration < now + gtd_min_seconds:
            raise Rejected(INVALID_EXPIRATION, order_id=order_id)
    elif expiration != 0:
        raise Rejected(INVALID_EXPIRATION, order_id=order_id)


def check_amounts(market: Market, order: OrderStruct, side: str, order_type: str, order_id: str) -> tuple[int, int]:
    """Precision, tick grid and minimum size (platform notes 3.4, 3.6); returns (shares_e6, price_e6)."""
    maker, taker = order.maker_amount, order.taker_amount
    if maker <= 0 or taker <= 0:
        raise Rejected("invalid amounts, makerAmount and takerAmount must be positive", order_id=order_id)
    marketable = order_type in ("FOK", "FAK")
    amount_dp = market.amount_decimals
    if marketable:
        maker_dp, taker_dp = (2, max(4, amount_dp))
    else:
        maker_dp, taker_dp = (amount_dp, 2) if side == "BUY" else (2, amount_dp)
    if maker % 10 ** (6 - maker_dp) or taker % 10 ** (6 - taker_dp):
        kind = "market " if marketable else ""
        raise Rejected(
            f"invalid amounts, the {kind}{side.lower()} orders maker amount supports a max accuracy "
            f"of {maker_dp} decimals, taker amount a max of {taker_dp} decimals",
            order_id=order_id,
        )
    shares, collateral = (taker, maker) if side == "BUY" else (maker, taker)
    tick = market.tick_e6
    # price bounds by cross-multiplication: tick <= collateral/shares <= 1 - tick
    if collateral * E6 < tick * shares or collateral * E6 > (E6 - tick) * shares:
        raise Rejected(
            f"order {order_id} is invalid. Price ({decimal_text(collateral * E6 // shares)}) "
            f"out of range: min {market.config.tick_size}, max "
            f"{decimal_text(E6 - tick)}",
            order_id=order_id,
        )
    price_e6 = collateral * E6 // shares
    if not marketable and (collateral * E6 % shares or price_e6 % tick):
        raise Rejected(
            f"order {order_id} is invalid. Price ({decimal_text(price_e6)}) breaks minimum tick size "
            f"rule: {market.config.tick_size}",
            order_id=order_id,
        )
    if marketable:
        if collateral < E6:
            raise Rejected(
                f"invalid amount for a marketable {side} order (${decimal_text(collateral)}), min size: $1",
                order_id=order_id,
            )
    elif shares < to_e6(market.config.min_order_size):
        raise Rejected(
            f"order {order_id} is invalid. Size ({decimal_text(shares)}) lower than the minimum: "
            f"{format(market.config.min_order_size.normalize(), 'f')}",
            order_id=order_id,
        )
    return shares, price_e6


def check_balance(account: Account, market: Market, order: VenueOrder) -> None:
    """Balance/allowance for the whole order: a BUY its notional plus the largest fee it could pay."""
    cfg = market.config
    if order.side == "BUY":
        needed = order.maker_amount + fee_bound_e6(order.size_e6, order.price_e6, cfg.fee_rate, cfg.fee_exponent)
        if account.free_collateral() < needed:
            raise Rejected(
                f"{NOT_ENOUGH_BALANCE}: the balance is not enough -> balance: "
                f"{account.free_collateral()}, order amount: {needed}",
                order_id=order.order_id,
            )
    elif account.free_tokens(order.token_id) < order.size_e6:
        raise Rejected(
            f"{NOT_ENOUGH_BALANCE}: the balance is not enough -> balance: "
            f"{account.free_tokens(order.token_id)}, order amount: {order.size_e6}",
            order_id=order.order_id,
        )
