"""Benchmark of the CLOB V2 simulator: signature verification µs/order (in-process) and POST /order and
POST /orders throughput through a `horus venue` server process, with and without simulated latency.

    .venv/bin/python bench/venue_simulator.py [--orders 3000] [--concurrency 256] [--latency-ms 250]

Orders are pre-signed with py-clob-client-v2's builder so only the server's work is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx
from eth_account import Account
from py_clob_client_v2.clob_types import ApiCreds, RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, order_to_json_v2
from py_clob_client_v2.order_utils.model.side import Side
from py_clob_client_v2.signer import Signer

from horus.venue.simulator.clob.signatures import OrderStruct, exchange_domain_separator, verify_order

EXCHANGE = "0xE111180000d2663C0091e4f400237545B87B996B"
CID, TOKEN = "0x" + "cd" * 32, "9001"


def sign_orders(signer: Signer, count: int) -> list:
    orders = []
    for i in range(count):
        builder = ExchangeOrderBuilderV2(EXCHANGE, 137, signer, generate_salt=lambda i=i: str(10_000 + i))
        orders.append(
            builder.build_signed_order(
                OrderDataV2(
                    maker=signer.address(),
                    tokenId=TOKEN,
                    makerAmount="5200000",
                    takerAmount="10000000",
                    side=Side.BUY,
                    signer=signer.address(),
                    signatureType=0,
                    timestamp=str(1_700_000_000_000 + i),
                )
            )
        )
    return orders


def verify_us(orders: list) -> float:
    domain = exchange_domain_separator("2", 137, EXCHANGE)
    structs = [
        (
            OrderStruct(
                int(o.salt),
                o.maker,
                o.signer,
                int(o.tokenId),
                int(o.makerAmount),
                int(o.takerAmount),
                int(o.side),
                int(o.signatureType),
                int(o.timestamp),
                o.metadata,
                o.builder,
            ),
            o.signature,
        )
        for o in orders
    ]
    started = time.perf_counter()
    for struct, signature in structs:
        verify_order(struct, signature, domain, 137)
    return (time.perf_counter() - started) / len(structs) * 1e6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(latency_ms: float) -> tuple[subprocess.Popen, str]:
    seed = {
        "markets": [
            {
                "condition_id": CID,
                "tokens": [{"token_id": TOKEN, "price": "0.5"}],
                "fee_rate": "0.02",
                "replenish": True,
            }
        ]
    }
    path = os.path.join(tempfile.mkdtemp(), "seed.json")
    with open(path, "w") as handle:
        json.dump(seed, handle)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "horus.cli.main",
            "venue",
            "--port",
            str(port),
            "--seed-markets",
            path,
            "--latency-ms",
            str(latency_ms),
            "--default-collateral-e6",
            str(10**15),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/_sim/health").raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("simulator did not start")


def signed_post(signer: Signer, creds: ApiCreds, path: str, payload) -> tuple[str, str, dict]:
    """One POST as `fire` sends it: the path, the compact JSON body and its L2 headers."""
    text = json.dumps(payload, separators=(",", ":"))
    return path, text, create_level_2_headers(signer, creds, RequestArgs("POST", path, serialized_body=text))


async def fire(url: str, requests: list[tuple[str, str, dict]], concurrency: int) -> tuple[float, int]:
    """POST everything with `concurrency` keep-alive connections. aiohttp, not httpx: httpx's connection pool
    slows down as connections grow (measured ~200 req/s at 256 connections against ~1,500 at one)."""
    import aiohttp

    ok = 0
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector) as http:

        async def worker():
            nonlocal ok
            while queue:
                path, body, headers = queue.pop()
                async with http.post(path, data=body, headers=headers) as reply:
                    await reply.read()
                    ok += reply.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=250)
    args = parser.parse_args()
    account = Account.create()
    signer = Signer("0x" + account.key.hex().removeprefix("0x"), 137)
    started = time.perf_counter()
    orders = sign_orders(signer, args.orders * 3)
    print(f"pre-signed {len(orders)} orders in {time.perf_counter() - started:.1f}s (client-side, not timed)")
    print(f"verify: {verify_us(orders[:2000]):.1f} µs/order (in-process, fast path)")

    for latency in (0.0, args.latency_ms):
        process, url = start_server(latency)
        try:
            body = httpx.get(f"{url}/auth/derive-api-key", headers=create_level_1_headers(signer)).json()
            creds = ApiCreds(body["apiKey"], body["secret"], body["passphrase"])

            chunk = orders[: args.orders] if latency == 0 else orders[args.orders : 2 * args.orders]
            singles = [signed_post(signer, creds, "/order", order_to_json_v2(o, creds.api_key, "FOK")) for o in chunk]
            elapsed, ok = asyncio.run(fire(url, singles, args.concurrency))
            print(
                f"latency {latency:.0f} ms  POST /order : {len(singles) / elapsed:7.0f} orders/s "
                f"({ok}/{len(singles)} ok, {args.concurrency} connections)"
            )
            if latency == 0:
                rest = orders[2 * args.orders :]
                batches = [
                    signed_post(
                        signer, creds, "/orders", [order_to_json_v2(o, creds.api_key, "FOK") for o in rest[i : i + 15]]
                    )
                    for i in range(0, len(rest), 15)
                ]
                elapsed, ok = asyncio.run(fire(url, batches, min(64, len(batches))))
                print(
                    f"latency {latency:.0f} ms  POST /orders: {len(rest) / elapsed:7.0f} orders/s "
                    f"(batches of 15, {ok}/{len(batches)} ok)"
                )
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
