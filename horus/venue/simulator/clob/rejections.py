"""What the venue refuses and how it words it: the `Rejected` exception and the real venue's error texts
(platform notes 3.7, 3.8, 3.10)."""

from __future__ import annotations

FOK_KILLED = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_NO_MATCH = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
NOT_ENOUGH_BALANCE = "not enough balance / allowance"
POST_ONLY_CROSSES = "invalid post-only order: order crosses book"
POST_ONLY_TYPE = "invalid post-only order: only GTC and GTD orders can be post only"
POST_ONLY_MODE = "post-only mode: only post-only orders and cancels are allowed"
MARKET_NOT_READY = "the market is not yet ready to process new orders"
INVALID_EXPIRATION = "invalid expiration"
INVALID_SIGNATURE = "invalid signature"
OWNER_MISMATCH = "the order owner has to be the owner of the API KEY"
SIGNER_MISMATCH = "the order signer address has to be the address of the API KEY"
RESTARTING = "the matching engine is restarting, please retry later"  # served with HTTP 425


def duplicated(order_id: str) -> str:
    return f"order {order_id} is invalid. Duplicated. Same order has already been placed, can't be placed again"


class Rejected(Exception):
    """An order or request the venue refuses; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400, order_id: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.order_id = order_id
