"""The real py-clob-client-v2 against a running simulator (uvicorn on a thread, real HTTP): L1 key derivation,
signed orders of every kind, read-backs, duplicates, balance errors, tampering, domain "3" and POLY_1271."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from eth_account import Account
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import (
    AssetType,
    BalanceAllowanceParams,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderType,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException

from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator

CID, CID_V2 = "0x" + "aa" * 32, "0x" + "bb" * 32
YES, NO, POSITION = "7001", "7002", "8001"


@pytest.fixture(scope="module")
def sim():
    config = SimulatorConfig(
        seed=11,
        markets=[
            MarketConfig(
                condition_id=CID,
                tokens=[TokenConfig(token_id=YES, price=Decimal("0.6")), TokenConfig(token_id=NO, outcome="No")],
                fee_rate=Decimal("0.03"),
                replenish=True,
            ),
            MarketConfig(
                condition_id=CID_V2, version="v2", tokens=[TokenConfig(token_id=POSITION, price=Decimal("0.2"))]
            ),
        ],
    )
    running = run_simulator(config)
    yield running
    running.stop()


def fund(sim, address: str, collateral_e6: int, **extra) -> None:
    reply = httpx.post(f"{sim.url}/_sim/accounts", json={"address": address, "collateral_e6": collateral_e6, **extra})
    reply.raise_for_status()


def client_for(sim, account=None, **kwargs) -> ClobClient:
    account = account or Account.create()
    client = ClobClient(sim.url, 137, key="0x" + account.key.hex().removeprefix("0x"), **kwargs)
    client.set_api_creds(client.derive_api_key())
    return client


def test_l1_derivation_is_stable_and_keys_listed(sim):
    account = Account.create()
    client = ClobClient(sim.url, 137, key=account.key.hex())
    created = client.create_or_derive_api_key()
    assert client.derive_api_key() == created
    client.set_api_creds(created)
    assert client.get_api_keys() == {"apiKeys": [created.api_key]}
    assert client.get_ok() == "OK" and client.get_version() == 2


def test_orders_of_every_type_round_trip(sim):
    client = client_for(sim)
    address = client.get_address()
    fund(sim, address, 100_000_000)
    gtc = client.create_and_post_order(OrderArgsV2(token_id=YES, price=0.55, size=10, side="BUY"))
    assert gtc["success"] and gtc["status"] == "live"
    fok = client.create_and_post_market_order(
        MarketOrderArgsV2(token_id=YES, amount=6, side="BUY"), order_type=OrderType.FOK
    )
    assert fok["status"] == "matched" and fok["transactionsHashes"]
    shares = Decimal(fok["takingAmount"])
    sell = client.create_and_post_order(
        OrderArgsV2(token_id=YES, price=0.58, size=float(shares.quantize(Decimal("0.01"), "ROUND_DOWN")), side="SELL"),
        order_type=OrderType.FAK,
    )
    assert sell["status"] == "matched"

    order = client.get_order(gtc["orderID"])
    assert order["status"] == "LIVE" and order["original_size"] == "10" and order["price"] == "0.55"
    assert [o["id"] for o in client.get_open_orders(OpenOrderParams(asset_id=YES))] == [gtc["orderID"]]
    trades = client.get_trades(TradeParams(asset_id=YES))
    assert {t["taker_order_id"] for t in trades} == {fok["orderID"], sell["orderID"]}
    assert all(t["fee_rate_bps"] != "0" for t in trades)  # the market charges taker fees
    collateral = client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    assert 0 < int(collateral["balance"]) < 100_000_000
    assert client.cancel_all()["canceled"] == [gtc["orderID"]]
    assert client.get_order(gtc["orderID"])["status"] == "CANCELED"


def test_batch_duplicate_and_balance_errors(sim):
    client = client_for(sim)
    fund(sim, client.get_address(), 10_000_000)
    signed = client.create_order(OrderArgsV2(token_id=YES, price=0.5, size=10, side="BUY"))
    first = client.post_order(signed, OrderType.GTC)
    assert first["success"]
    with pytest.raises(PolyApiException) as duplicate:
        client.post_order(signed, OrderType.GTC)
    assert duplicate.value.status_code == 400 and "Duplicated" in str(duplicate.value.error_msg)
    too_big = client.create_order(OrderArgsV2(token_id=YES, price=0.5, size=100, side="BUY"))
    with pytest.raises(PolyApiException) as broke:
        client.post_order(too_big, OrderType.GTC)
    assert "not enough balance / allowance" in str(broke.value.error_msg)
    batch = client.post_orders(
        [
            PostOrdersV2Args(order=signed),
            PostOrdersV2Args(order=client.create_order(OrderArgsV2(token_id=NO, price=0.3, size=5, side="BUY"))),
        ]
    )
    assert [r["success"] for r in batch] == [False, True] and "Duplicated" in batch[0]["errorMsg"]
    log = httpx.get(f"{sim.url}/_sim/orders", params={"maker": client.get_address()}).json()
    assert [o["post_count"] for o in log["orders"]] == [3, 1]


def test_tampered_order_is_rejected(sim):
    client = client_for(sim)
    fund(sim, client.get_address(), 10_000_000)
    signed = client.create_order(OrderArgsV2(token_id=YES, price=0.5, size=10, side="BUY"))
    signed.takerAmount = str(int(signed.takerAmount) * 2)  # ask for twice the shares at the same cost
    with pytest.raises(PolyApiException) as rejected:
        client.post_order(signed, OrderType.GTC)
    assert rejected.value.status_code == 400 and "invalid signature" in str(rejected.value.error_msg)


def test_domain_3_position_orders(sim):
    client = client_for(sim)
    fund(sim, client.get_address(), 10_000_000)
    reply = client.create_and_post_order(OrderArgsV2(position_id=POSITION, price=0.25, size=10, side="BUY"))
    assert reply["status"] == "matched"
    assert client.get_order(reply["orderID"])["asset_id"] == POSITION


def test_poly_1271_deposit_wallet_order(sim):
    owner = Account.create()
    wallet = Account.create().address
    fund(sim, wallet, 20_000_000, signer=owner.address, signature_type=3)
    client = client_for(sim, owner, signature_type=3, funder=wallet)
    reply = client.create_and_post_order(OrderArgsV2(token_id=YES, price=0.65, size=10, side="BUY"))
    assert reply["status"] == "matched"
    order = client.get_order(reply["orderID"])
    assert order["maker_address"] == wallet.lower()
    balance = client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=YES))
    assert balance["balance"] == "10000000"
    # a wallet nobody registered cannot trade with a POLY_1271 signature
    stranger = client_for(sim, Account.create(), signature_type=3, funder=Account.create().address)
    with pytest.raises(PolyApiException) as rejected:
        stranger.create_and_post_order(OrderArgsV2(token_id=YES, price=0.65, size=10, side="BUY"))
    assert "invalid signature" in str(rejected.value.error_msg)


@pytest.mark.parametrize("mode", ["5xx", "drop"])
def test_lost_reply_then_same_bytes_reposted_is_a_duplicate(sim, mode):
    client = client_for(sim)
    fund(sim, client.get_address(), 10_000_000)
    signed = client.create_order(OrderArgsV2(token_id=YES, price=0.5, size=10, side="BUY"))
    httpx.post(f"{sim.url}/_sim/faults", json={"reply_lost_rate": 1, "reply_lost_mode": mode}).raise_for_status()
    try:
        with pytest.raises(PolyApiException) as lost:
            client.post_order(signed, OrderType.GTC)
    finally:
        httpx.post(f"{sim.url}/_sim/faults", json={"reply_lost_rate": 0}).raise_for_status()
    assert lost.value.status_code == (502 if mode == "5xx" else None)  # None: the connection broke mid-reply
    with pytest.raises(PolyApiException) as again:
        client.post_order(signed, OrderType.GTC)
    assert "Duplicated" in str(again.value.error_msg)
    [live] = client.get_open_orders(OpenOrderParams(asset_id=YES))
    assert live["status"] == "LIVE" and live["original_size"] == "10"
