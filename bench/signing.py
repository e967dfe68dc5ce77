"""Order signing cost: horus's EIP-712 signer (types 0 and 3) against eth_account's
encode_typed_data + sign_message, measured in the same run on the same machine.

Run: `.venv/bin/python bench/signing.py [--orders 5000]`. No stack needed. Each order has a different salt,
so nothing is served from a cache except the signing key and the domain separator (as in the executor).
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal

from eth_account import Account
from eth_account.messages import encode_typed_data

from horus.venue.polymarket.orders import (
    OrderFields,
    exchange_for,
    order_body,
    order_for_intent,
    order_hash,
    sign_order,
)

KEY = "0x" + "4c" * 32
OWNER = Account.from_key(KEY).address
WALLET = "0x9F2B1a3c4D5E6F708192a3B4c5d6E7F801928374"
TOKEN = 71321045679252212594626385532706912750332728571942532289631379312455583992563
ORDER_TYPE = [
    {"name": n, "type": t}
    for n, t in (
        ("salt", "uint256"),
        ("maker", "address"),
        ("signer", "address"),
        ("tokenId", "uint256"),
        ("makerAmount", "uint256"),
        ("takerAmount", "uint256"),
        ("side", "uint8"),
        ("signatureType", "uint8"),
        ("timestamp", "uint256"),
        ("metadata", "bytes32"),
        ("builder", "bytes32"),
    )
]
DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def orders(n: int, signature_type: int) -> list[OrderFields]:
    maker = OWNER if signature_type == 0 else WALLET
    signer = WALLET if signature_type == 3 else OWNER
    return [
        OrderFields(
            salt=1_000_000 + i,
            maker=maker,
            signer=signer,
            token_id=TOKEN,
            maker_amount=5_300_000,
            taker_amount=10_000_000,
            side=i % 2,
            signature_type=signature_type,
            timestamp_ms=1_764_000_000_000 + i,
            metadata="0x" + f"{i:064x}",
            builder="0x" + "b1" * 32,
        )
        for i in range(n)
    ]


def per_order_us(label: str, func, items) -> float:
    func(items[0])  # warm caches (key, domain separator) as a long-running executor has them
    started = time.perf_counter()
    for item in items:
        func(item)
    micros = (time.perf_counter() - started) / len(items) * 1e6
    print(f"  {label:<58} {micros:8.1f} us/order")
    return micros


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--reference-orders", type=int, default=1000, help="orders for the (slower) reference")
    args = parser.parse_args()
    domain = exchange_for("v1", neg_risk=False)
    v3 = exchange_for("v2", neg_risk=False)

    def reference(f: OrderFields) -> bytes:
        typed = {
            "primaryType": "Order",
            "types": {"EIP712Domain": DOMAIN_TYPE, "Order": ORDER_TYPE},
            "domain": {
                "name": "Polymarket CTF Exchange",
                "version": "2",
                "chainId": 137,
                "verifyingContract": domain.exchange,
            },
            "message": {
                "salt": f.salt,
                "maker": f.maker,
                "signer": f.signer,
                "tokenId": f.token_id,
                "makerAmount": f.maker_amount,
                "takerAmount": f.taker_amount,
                "side": f.side,
                "signatureType": f.signature_type,
                "timestamp": f.timestamp_ms,
                "metadata": bytes.fromhex(f.metadata[2:]),
                "builder": bytes.fromhex(f.builder[2:]),
            },
        }
        return Account.sign_message(encode_typed_data(full_message=typed), private_key=KEY).signature

    def intent_to_body(i: int) -> dict:
        fields = order_for_intent(
            f"follow-{i}:0xabc:{i}:0",
            token_id=str(TOKEN),
            side="BUY",
            size_e6=10_000_000,
            worst_price=Decimal("0.53"),
            tick_size=Decimal("0.01"),
            order_type="FOK",
            maker=OWNER,
            signer=OWNER,
            signature_type=0,
            builder="0x" + "b1" * 32,
            timestamp_ms=1_764_000_000_000,
        )
        return order_body(sign_order(fields, domain, KEY), owner="api-key", order_type="FOK")

    eoa, wallet = orders(args.orders, 0), orders(args.orders, 3)
    print(f"signing {args.orders:,} orders (reference: {args.reference_orders:,})")
    hash_us = per_order_us("order_hash only (type 0)", lambda f: order_hash(f, domain), eoa)
    type0_us = per_order_us("horus sign_order, type 0 (EOA)", lambda f: sign_order(f, domain, KEY), eoa)
    type3_us = per_order_us(
        "horus sign_order, type 3 (POLY_1271, ExchangeV3)", lambda f: sign_order(f, v3, KEY), wallet
    )
    full_us = per_order_us("horus order_for_intent + sign_order + order_body", intent_to_body, range(args.orders))
    reference_us = per_order_us(
        "eth_account encode_typed_data + sign_message (type 0)", reference, eoa[: args.reference_orders]
    )
    print(
        f"  type 0: {reference_us / type0_us:.1f}x faster than the reference; "
        f"type 3: {reference_us / type3_us:.1f}x; {1e6 / type0_us:,.0f} signatures/s on one core"
    )
    print(
        json.dumps(
            {
                "benchmark": "signing",
                "orders": args.orders,
                "hash_us": round(hash_us, 1),
                "type0_us": round(type0_us, 1),
                "type3_us": round(type3_us, 1),
                "intent_to_body_us": round(full_us, 1),
                "reference_us": round(reference_us, 1),
                "ratio_type0": round(reference_us / type0_us, 1),
                "ratio_type3": round(reference_us / type3_us, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
