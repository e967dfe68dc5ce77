"""The CLOB V2 simulator in-process (FastAPI TestClient): signatures, auth, matching, fees, precision,
balances, duplicates and faults. Orders and headers are built with the real py-clob-client-v2 builders."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from decimal import Decimal

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from fastapi.testclient import TestClient
from py_clob_client_v2.clob_types import ApiCreds, CreateOrderOptions, MarketOrderArgsV2, OrderArgsV2, RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.order_builder.builder import OrderBuilder
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.signer import Signer

from horus.domain.execute import OrderShape, settle_from_evidence
from horus.venue.polymarket.replies import order_trades
from horus.venue.polymarket.replies import venue_order as order_record
from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, create_app
from horus.venue.simulator.clob.rejections import FAK_NO_MATCH, FOK_KILLED, POST_ONLY_CROSSES, POST_ONLY_MODE
from horus.venue.simulator.clob.signatures import (
    OrderStruct,
    SignatureError,
    clob_auth_digest,
    eip712_digest,
    exchange_domain_separator,
    order_struct_hash,
    verify_order,
)

CID = "0x" + "11" * 32
CID_V2 = "0x" + "22" * 32
YES, NO, POS = "1001", "1002", "2001"
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"


def market(**overrides) -> MarketConfig:
    fields = dict(
        condition_id=CID,
        tokens=[TokenConfig(token_id=YES, price=Decimal("0.5")), TokenConfig(token_id=NO, outcome="No")],
        fee_rate=Decimal("0.02"),
    )
    fields.update(overrides)
    return MarketConfig(**fields)


class Trader:
    """One account talking to the simulator through a TestClient, signing with the real client's code."""

    def __init__(self, http: TestClient, signature_type: int = 0, funder: str | None = None, key=None):
        self.http = http
        self.account = key or Account.create()
        self.signer = Signer("0x" + self.account.key.hex().removeprefix("0x"), 137)
        self.builder = OrderBuilder(self.signer, signature_type=signature_type, funder=funder)
        self.maker = funder or self.account.address
        reply = http.get("/auth/derive-api-key", headers=create_level_1_headers(self.signer))
        assert reply.status_code == 200, reply.text
        body = reply.json()
        self.creds = ApiCreds(body["apiKey"], body["secret"], body["passphrase"])

    def headers(self, method: str, path: str, body: str | None = None) -> dict:
        return create_level_2_headers(self.signer, self.creds, RequestArgs(method, path, serialized_body=body))

    def limit(self, side: str, price: float, size: float, token: str = YES, tick: str = "0.01", **kw):
        args = OrderArgsV2(token_id=token, price=price, size=size, side=side, **kw)
        return self.builder.build_order(args, CreateOrderOptions(tick_size=tick, neg_risk=False), version=2)

    def market_order(self, side: str, amount: float, price: float, token: str = YES):
        args = MarketOrderArgsV2(token_id=token, amount=amount, side=side, price=price)
        return self.builder.build_market_order(args, CreateOrderOptions(tick_size="0.01", neg_risk=False), version=2)

    def post(self, order, order_type: str = "GTC", post_only: bool = False):
        body = json.dumps(order_to_json_v2(order, self.creds.api_key, order_type, post_only), separators=(",", ":"))
        return self.http.post("/order", content=body, headers=self.headers("POST", "/order", body))

    def get(self, path: str, **params):
        return self.http.get(path, params=params, headers=self.headers("GET", path))

    def balance(self) -> dict:
        return self.http.get(f"/_sim/accounts/{self.maker}").json()


@pytest.fixture
def http():
    app = create_app(SimulatorConfig(markets=[market()], seed=7))
    with TestClient(app) as client:
        yield client


def fund(http: TestClient, address: str, collateral: int = 1_000_000_000, **tokens) -> None:
    body = {"address": address, "collateral_e6": collateral, "tokens_e6": {YES: tokens.get("yes", 0)}}
    assert http.post("/_sim/accounts", json=body).status_code == 200


# ---------- signatures ----------
def _typed(order, version: str, exchange: str) -> dict:
    return {
        "primaryType": "Order",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [
                {"name": n, "type": t}
                for n, t in [
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
                ]
            ],
        },
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": version,
            "chainId": 137,
            "verifyingContract": exchange,
        },
        "message": {
            "salt": order.salt,
            "maker": order.maker,
            "signer": order.signer,
            "tokenId": order.token_id,
            "makerAmount": order.maker_amount,
            "takerAmount": order.taker_amount,
            "side": order.side,
            "signatureType": order.signature_type,
            "timestamp": order.timestamp,
            "metadata": bytes.fromhex(order.metadata[2:]),
            "builder": bytes.fromhex(order.builder[2:]),
        },
    }


@pytest.mark.parametrize("version,exchange", [("2", EXCHANGE_V2), ("3", EXCHANGE_V3)])
def test_fast_order_digest_matches_eth_account(version, exchange):
    rng = random.Random(version)
    for _ in range(20):
        order = OrderStruct(
            salt=rng.getrandbits(53),
            maker=Account.create().address,
            signer=Account.create().address,
            token_id=rng.getrandbits(255),
            maker_amount=rng.getrandbits(40),
            taker_amount=rng.getrandbits(40),
            side=rng.randint(0, 1),
            signature_type=rng.randint(0, 3),
            timestamp=rng.getrandbits(42),
            metadata="0x" + rng.randbytes(32).hex(),
            builder="0x" + rng.randbytes(32).hex(),
        )
        signable = encode_typed_data(full_message=_typed(order, version, exchange))
        assert signable.header == exchange_domain_separator(version, 137, exchange)
        assert signable.body == order_struct_hash(order)
        assert eip712_digest(signable.header, signable.body) == eip712_digest(
            exchange_domain_separator(version, 137, exchange), order_struct_hash(order)
        )


def test_clob_auth_digest_matches_eth_account():
    address = Account.create().address
    typed = {
        "primaryType": "ClobAuth",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": 137},
        "message": {
            "address": address,
            "timestamp": "1700000000",
            "nonce": 3,
            "message": "This message attests that I control the given wallet",
        },
    }
    signable = encode_typed_data(full_message=typed)
    assert clob_auth_digest(address, "1700000000", 3, 137) == eip712_digest(signable.header, signable.body)


def _struct(signed) -> OrderStruct:
    return OrderStruct(
        salt=int(signed.salt),
        maker=signed.maker,
        signer=signed.signer,
        token_id=int(signed.tokenId),
        maker_amount=int(signed.makerAmount),
        taker_amount=int(signed.takerAmount),
        side=int(signed.side),
        signature_type=int(signed.signatureType),
        timestamp=int(signed.timestamp),
        metadata=signed.metadata,
        builder=signed.builder,
    )


def test_verify_accepts_client_signatures_and_rejects_tampering():
    eoa = Account.create()
    signer = Signer(eoa.key.hex(), 137)
    domain = exchange_domain_separator("2", 137, EXCHANGE_V2)
    args = OrderArgsV2(token_id=YES, price=0.5, size=10, side="BUY")
    options = CreateOrderOptions(tick_size="0.01", neg_risk=False)
    signed = OrderBuilder(signer).build_order(args, options, version=2)
    order_hash = verify_order(_struct(signed), signed.signature, domain, 137)
    assert order_hash.startswith("0x") and len(order_hash) == 66
    tampered = dataclasses.replace(_struct(signed), maker_amount=int(signed.makerAmount) + 1)
    with pytest.raises(SignatureError):
        verify_order(tampered, signed.signature, domain, 137)
    with pytest.raises(SignatureError):  # signed for domain 2, checked against domain 3
        verify_order(_struct(signed), signed.signature, exchange_domain_separator("3", 137, EXCHANGE_V3), 137)

    wallet = Account.create().address  # POLY_1271: signer = maker = deposit wallet, signed by its owner EOA
    signed_1271 = OrderBuilder(signer, signature_type=3, funder=wallet).build_order(args, options, version=2)
    assert (
        verify_order(_struct(signed_1271), signed_1271.signature, domain, 137, eoa.address)
        == "0x" + eip712_digest(domain, order_struct_hash(_struct(signed_1271))).hex()
    )
    with pytest.raises(SignatureError):
        verify_order(_struct(signed_1271), signed_1271.signature, domain, 137, Account.create().address)


# ---------- auth ----------
def test_api_keys_are_deterministic_and_l1_checked(http):
    eoa = Account.create()
    signer = Signer(eoa.key.hex(), 137)
    first = http.post("/auth/api-key", headers=create_level_1_headers(signer, nonce=5))
    assert first.status_code == 200
    again = http.post("/auth/api-key", headers=create_level_1_headers(signer, nonce=5))
    assert again.status_code == 400
    derived = http.get("/auth/derive-api-key", headers=create_level_1_headers(signer, nonce=5))
    assert derived.json() == first.json()
    assert http.get("/auth/derive-api-key", headers=create_level_1_headers(signer, nonce=6)).json() != first.json()
    forged = create_level_1_headers(signer, nonce=5)
    forged["POLY_ADDRESS"] = Account.create().address
    reply = http.get("/auth/derive-api-key", headers=forged)
    assert reply.status_code == 401 and "L1" in reply.json()["error"]


def test_l2_rejects_bad_hmac_wrong_passphrase_and_unknown_key(http):
    trader = Trader(http)
    assert trader.get("/data/orders").status_code == 200
    path = "/data/orders"
    headers = trader.headers("GET", path)
    for name, value in [
        ("POLY_SIGNATURE", "AAAA"),
        ("POLY_PASSPHRASE", "nope"),
        ("POLY_API_KEY", "unknown"),
        ("POLY_ADDRESS", Account.create().address),
    ]:
        bad = {**headers, name: value}
        reply = http.get(path, headers=bad)
        assert reply.status_code == 401 and reply.json() == {"error": "Unauthorized/Invalid api key"}
    order = trader.limit("BUY", 0.4, 10)
    body = json.dumps(order_to_json_v2(order, trader.creds.api_key, "GTC"), separators=(",", ":"))
    signed_for_other_body = trader.headers("POST", "/order", body.replace('"GTC"', '"FOK"'))
    assert http.post("/order", content=body, headers=signed_for_other_body).status_code == 401


# ---------- matching, fees, balances ----------
def test_gtc_buy_crosses_at_maker_price_pays_fee_and_rests_remainder(http):
    trader = Trader(http)
    fund(http, trader.maker, collateral=100_000_000)
    # asks: 0.51 x1000 ... ; buy 1500 shares at 0.52 -> 1000 @0.51 + 500 @0.52, nothing rests
    http.post(
        "/_sim/markets",
        json=market(
            condition_id="0x" + "33" * 32,
            tokens=[
                TokenConfig(token_id="3001", asks=[{"price": "0.51", "size": "10"}, {"price": "0.53", "size": "10"}])
            ],
            fee_rate=Decimal("0.02"),
        ).model_dump(mode="json"),
    )
    reply = trader.post(trader.limit("BUY", 0.52, 15, token="3001"))
    body = reply.json()
    assert reply.status_code == 200 and body["success"] and body["status"] == "live"
    assert body["takingAmount"] == "10" and body["makingAmount"] == "5.1" and len(body["tradeIDs"]) == 1
    # fee = 10 * 0.02 * 0.51 * 0.49 = 0.04998 ; resting 5 @0.52 reserves 2.6
    balance = trader.balance()
    assert balance["collateral_e6"] == 100_000_000 - 5_100_000 - 49_980
    assert balance["reserved_collateral_e6"] == 2_600_000
    assert balance["tokens_e6"]["3001"] == 10_000_000
    order = trader.get(f"/data/order/{body['orderID']}").json()
    assert order["status"] == "LIVE" and order["size_matched"] == "10" and order["original_size"] == "15"
    assert order["price"] == "0.52" and order["associate_trades"] == body["tradeIDs"]
    trade = trader.get("/data/trades", id=body["tradeIDs"][0]).json()["data"][0]
    assert trade["price"] == "0.51" and trade["size"] == "10" and trade["trader_side"] == "TAKER"
    assert trade["transaction_hash"].startswith("0x") and trade["taker_order_id"] == body["orderID"]


def test_sell_fee_is_deducted_from_proceeds(http):
    trader = Trader(http)
    fund(http, trader.maker, collateral=0, yes=20_000_000)
    body = trader.post(trader.limit("SELL", 0.5, 20), "FOK").json()
    # best bid 0.50: proceeds 10, fee 20 * 0.02 * 0.25 = 0.1
    assert body["status"] == "matched" and body["makingAmount"] == "20" and body["takingAmount"] == "9.9"
    assert trader.balance()["collateral_e6"] == 9_900_000 and trader.balance()["tokens_e6"][YES] == 0


def test_fok_fak_and_price_time_priority(http):
    maker_a, maker_b, taker = Trader(http), Trader(http), Trader(http)
    for t in (maker_a, maker_b, taker):
        fund(http, t.maker, collateral=1_000_000_000, yes=100_000_000)
    http.post(
        "/_sim/markets",
        json=market(condition_id="0x" + "44" * 32, tokens=[TokenConfig(token_id="4001", asks=[])]).model_dump(
            mode="json"
        ),
    )
    fund_tokens = {"address": maker_a.maker, "tokens_e6": {"4001": 10_000_000}}
    http.post("/_sim/accounts", json=[fund_tokens, {**fund_tokens, "address": maker_b.maker}])
    first = maker_a.post(maker_a.limit("SELL", 0.6, 10, token="4001")).json()["orderID"]
    second = maker_b.post(maker_b.limit("SELL", 0.6, 10, token="4001")).json()["orderID"]
    # FOK for more than the book holds is killed, nothing changes
    killed = taker.post(taker.limit("BUY", 0.6, 25, token="4001"), "FOK")
    assert killed.status_code == 400 and killed.json()["error"] == FOK_KILLED
    # FAK fills what is there, oldest maker first
    fak = taker.post(taker.limit("BUY", 0.6, 15, token="4001"), "FAK").json()
    assert fak["status"] == "matched" and fak["takingAmount"] == "15"
    assert maker_a.get(f"/data/order/{first}").json()["status"] == "MATCHED"
    assert maker_b.get(f"/data/order/{second}").json()["size_matched"] == "5"
    assert maker_a.balance()["collateral_e6"] == 1_000_000_000 + 6_000_000  # makers pay no fee (fd.to)
    maker_trades = maker_b.get("/data/trades").json()["data"]
    assert maker_trades[0]["trader_side"] == "MAKER"
    none_left = taker.post(taker.limit("BUY", 0.55, 10, token="4001"), "FAK")
    assert none_left.status_code == 400 and none_left.json()["error"] == FAK_NO_MATCH


def test_post_only_crossing_and_cancel_releases_reservation(http):
    trader = Trader(http)
    fund(http, trader.maker, collateral=10_000_000)
    crossing = trader.post(trader.limit("BUY", 0.51, 10), "GTC", post_only=True)
    assert crossing.status_code == 400 and crossing.json()["error"] == POST_ONLY_CROSSES
    resting = trader.post(trader.limit("BUY", 0.45, 20), "GTC", post_only=True).json()
    assert trader.balance()["reserved_collateral_e6"] == 9_000_000
    # the reservation blocks a second order the free balance cannot cover
    blocked = trader.post(trader.limit("BUY", 0.45, 10))
    assert blocked.status_code == 400 and blocked.json()["error"].startswith("not enough balance / allowance")
    body = json.dumps({"orderID": resting["orderID"]}, separators=(",", ":"))
    cancel = http.request("DELETE", "/order", content=body, headers=trader.headers("DELETE", "/order", body))
    assert cancel.json() == {"canceled": [resting["orderID"]], "not_canceled": {}}
    assert trader.balance()["reserved_collateral_e6"] == 0
    assert trader.post(trader.limit("BUY", 0.45, 10)).status_code == 200


@pytest.mark.parametrize(
    "build,order_type,fragment",
    [
        (lambda t: t.limit("BUY", 0.5, 3), "GTC", "lower than the minimum: 5"),
        (lambda t: t.limit("BUY", 0.505, 10, tick="0.001"), "GTC", "breaks minimum tick size rule: 0.01"),
        (lambda t: t.market_order("BUY", 0.5, 0.6), "FOK", "min size: $1"),
        (lambda t: t.limit("BUY", 0.995, 10, tick="0.001"), "GTC", "out of range"),
    ],
)
def test_size_tick_and_range_rules(http, build, order_type, fragment):
    trader = Trader(http)
    fund(http, trader.maker)
    reply = trader.post(build(trader), order_type)
    assert reply.status_code == 400 and fragment in reply.json()["error"]


def test_market_buy_precision_rule(http):
    trader = Trader(http)
    fund(http, trader.maker)
    order = trader.market_order("BUY", 5, 0.6)
    order.makerAmount = str(int(order.makerAmount) + 1000)  # 3 decimals: re-sign so only precision is wrong
    from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2

    builder = ExchangeOrderBuilderV2(EXCHANGE_V2, 137, trader.signer)
    signed = builder.build_signed_order(
        OrderDataV2(
            maker=order.maker,
            tokenId=order.tokenId,
            makerAmount=order.makerAmount,
            takerAmount=order.takerAmount,
            side=order.side,
            signer=order.signer,
            signatureType=order.signatureType,
            timestamp=order.timestamp,
        )
    )
    reply = trader.post(signed, "FOK")
    assert reply.status_code == 400
    assert reply.json()["error"].startswith(
        "invalid amounts, the market buy orders maker amount supports a max accuracy of 2 decimals"
    )


def test_duplicate_repost_is_rejected_and_counted(http):
    trader = Trader(http)
    fund(http, trader.maker)
    order = trader.limit("BUY", 0.4, 10, metadata="0x" + "ab" * 32)
    assert trader.post(order).status_code == 200
    again = trader.post(order)
    assert again.status_code == 400 and "Duplicated" in again.json()["error"]
    log = http.get("/_sim/orders", params={"metadata": "0x" + "ab" * 32}).json()
    assert len(log["orders"]) == 1 and log["orders"][0]["post_count"] == 2
    assert log["counts"]["duplicates"] == 1 and log["counts"]["posts"] == 2


def test_one_hash_never_fills_beyond_its_size(http):
    rng = random.Random(3)
    traders = [Trader(http) for _ in range(4)]
    for t in traders:
        fund(http, t.maker, collateral=500_000_000, yes=500_000_000)
    for _ in range(120):
        t = rng.choice(traders)
        side = rng.choice(["BUY", "SELL"])
        price = rng.choice([0.45, 0.48, 0.5, 0.51, 0.53, 0.55])
        t.post(t.limit(side, price, rng.choice([5, 7.5, 20, 60])), rng.choice(["GTC", "FOK", "FAK", "GTC"]))
    log = http.get("/_sim/orders").json()["orders"]
    assert log and all(0 <= o["size_matched_e6"] <= o["size_e6"] for o in log)
    for t in traders:
        balance = t.balance()
        assert balance["collateral_e6"] >= balance["reserved_collateral_e6"] >= 0
        assert balance["tokens_e6"].get(YES, 0) >= balance["reserved_tokens_e6"].get(YES, 0) >= 0


def test_poly_1271_and_domain_3_orders(http):
    http.post(
        "/_sim/markets",
        json=market(
            condition_id=CID_V2, version="v2", tokens=[TokenConfig(token_id=POS, price=Decimal("0.3"))]
        ).model_dump(mode="json"),
    )
    owner = Account.create()
    wallet = Account.create().address
    http.post("/_sim/accounts", json={"address": wallet, "collateral_e6": 50_000_000, "signer": owner.address})
    trader = Trader(http, signature_type=3, funder=wallet, key=owner)
    reply = trader.post(trader.limit("BUY", 0.52, 10))  # domain "2" order for a v1 market
    assert reply.status_code == 200 and reply.json()["status"] == "matched"
    args = OrderArgsV2(price=0.32, size=10, side="BUY", position_id=POS)
    v3 = trader.builder.build_order(args, CreateOrderOptions(tick_size="0.01", neg_risk=False))
    assert trader.post(v3).json()["status"] == "matched"
    wrong_domain = trader.limit("BUY", 0.32, 10, token=POS)  # signed for domain 2, market needs ExchangeV3
    assert trader.post(wrong_domain).json()["error"].startswith("invalid signature")
    balance = trader.get("/balance-allowance", asset_type="COLLATERAL", signature_type=3).json()
    assert int(balance["balance"]) == trader.balance()["collateral_e6"] < 50_000_000


# ---------- faults ----------
def test_5xx_before_processing_and_reply_lost_after(http):
    trader = Trader(http)
    fund(http, trader.maker)
    http.post("/_sim/faults", json={"error_rate": 1})
    first = trader.limit("BUY", 0.4, 10)
    assert trader.post(first).status_code == 500
    assert http.get("/_sim/orders").json()["orders"] == []  # not processed
    http.post("/_sim/faults", json={"error_rate": 0, "reply_lost_rate": 1})
    assert trader.post(first).status_code == 502
    log = http.get("/_sim/orders").json()["orders"]
    assert [o["order_id"] for o in log] == [trader.get("/data/orders").json()["data"][0]["id"]]
    http.post("/_sim/faults", json={"reply_lost_rate": 0})
    assert "Duplicated" in trader.post(first).json()["error"]


def test_restart_window_then_post_only_mode(http):
    trader = Trader(http)
    fund(http, trader.maker)
    http.post("/_sim/faults", json={"restart_seconds": 0.3, "post_only_seconds": 30})
    assert trader.post(trader.limit("BUY", 0.4, 10)).status_code == 425
    time.sleep(0.35)
    normal = trader.post(trader.limit("BUY", 0.4, 10))
    assert normal.status_code == 400 and normal.json()["error"] == POST_ONLY_MODE
    assert trader.post(trader.limit("BUY", 0.4, 10), post_only=True).status_code == 200


def test_killed_reply_hides_a_partial_fill(http):
    trader = Trader(http)
    fund(http, trader.maker)
    http.post("/_sim/faults", json={"hidden_fill_rate": 1})
    order = trader.limit("BUY", 0.51, 100)
    reply = trader.post(order, "FOK")
    assert reply.status_code == 400 and reply.json()["error"] == FOK_KILLED
    entry = http.get("/_sim/orders").json()["orders"][0]
    assert 0 < entry["size_matched_e6"] < entry["size_e6"]
    venue_order = trader.get(f"/data/order/{entry['order_id']}").json()
    assert Decimal(venue_order["size_matched"]) * 10**6 == entry["size_matched_e6"]
    trades = trader.get("/data/trades").json()["data"]
    assert [t["taker_order_id"] for t in trades] == [entry["order_id"]]


def test_latency_and_held_reply():
    app = create_app(SimulatorConfig(markets=[market()], faults={"latency_ms": 150}))
    with TestClient(app) as client:
        started = time.monotonic()
        assert client.get("/ok").status_code == 200
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        assert client.get("/_sim/health").status_code == 200 and time.monotonic() - started < 0.15
        trader = Trader(client)
        fund(client, trader.maker)
        sent_us = time.time_ns() // 1000
        assert trader.post(trader.limit("BUY", 0.4, 10)).status_code == 200
        (order,) = client.get("/_sim/orders").json()["orders"]  # stamped on arrival, before the latency
        assert 0 <= order["received_us"] - sent_us < 100_000
        client.post("/_sim/faults", json={"latency_ms": 0, "timeout_rate": 1, "timeout_seconds": 0.3})
        started = time.monotonic()
        assert trader.post(trader.limit("BUY", 0.4, 10)).status_code == 200
        assert time.monotonic() - started >= 0.3


def test_bad_admin_input_names_the_field(http):
    reply = http.post("/_sim/markets", json={"condition_id": "0x12", "tokens": []})
    assert reply.status_code == 422 and "condition_id" in reply.json()["error"] and "tokens" in reply.json()["error"]
    reply = http.post("/_sim/faults", json={"error_rate": 2})
    assert reply.status_code == 422 and "error_rate" in reply.json()["error"]


def test_moving_a_book_recentres_the_synthetic_levels(http):
    before = http.get("/book", params={"token_id": YES}).json()
    moved = http.post("/_sim/books", json={"token_id": YES, "price": "0.8"})
    assert moved.status_code == 200
    after = http.get("/book", params={"token_id": YES}).json()
    best_ask = min(Decimal(level["price"]) for level in after["asks"])
    best_bid = max(Decimal(level["price"]) for level in after["bids"])
    assert best_bid <= Decimal("0.8") < best_ask and best_ask != min(Decimal(lv["price"]) for lv in before["asks"])
    assert len(after["asks"]) == len(before["asks"])  # the old synthetic levels are gone, not doubled
    assert http.post("/_sim/books", json={"token_id": "42", "price": "0.5"}).status_code >= 400


# ---------- fees as the trades report them ----------
def _evidence(trader: Trader, order_id: str, shape: OrderShape):
    """What the engine's evidence settlement makes of the order, from the venue's own order and trades."""
    venue_order = trader.get(f"/data/order/{order_id}").json()
    trades = trader.get("/data/trades").json()["data"]
    parts = order_trades(order_id, trades)
    return settle_from_evidence(
        shape, venue_order=order_record(venue_order), trades=parts, chain_fills=[], expired=False
    )


def _shape(order, order_type: str) -> OrderShape:
    return OrderShape(
        "BUY" if int(order.side) == 0 else "SELL", order_type, int(order.makerAmount), int(order.takerAmount)
    )


@pytest.mark.parametrize("taker_only", [True, False])
def test_trade_fee_rates_give_the_fee_the_venue_charged(http, taker_only):
    maker, taker = Trader(http), Trader(http)
    token = "5001" if taker_only else "5101"
    http.post(
        "/_sim/markets",
        json=market(
            condition_id="0x" + ("55" if taker_only else "56") * 32,
            tokens=[TokenConfig(token_id=token, asks=[])],
            fee_rate=Decimal("0.25"),
            fee_exponent=Decimal(2),
            taker_only_fees=taker_only,
        ).model_dump(mode="json"),
    )
    http.post(
        "/_sim/accounts",
        json=[
            {"address": maker.maker, "collateral_e6": 0, "tokens_e6": {token: 50_000_000}},
            {"address": taker.maker, "collateral_e6": 100_000_000},
        ],
    )
    ask_a, ask_b = maker.limit("SELL", 0.37, 10, token=token), maker.limit("SELL", 0.41, 20, token=token)
    assert maker.post(ask_a).status_code == maker.post(ask_b).status_code == 200
    bid = taker.limit("BUY", 0.41, 23, token=token)
    reply = taker.post(bid, "FOK").json()
    assert reply["status"] == "matched" and len(reply["tradeIDs"]) == 2
    notional = 3_700_000 + 13 * 410_000
    charged = 100_000_000 - notional - taker.balance()["collateral_e6"]
    seen = _evidence(taker, reply["orderID"], _shape(bid, "FOK"))
    assert (seen.status, seen.filled_collateral_e6) == ("FILLED", notional)
    assert seen.fee_e6 == charged > 0  # 10 x .25 x (.37 x .63)^2 + 13 x .25 x (.41 x .59)^2, each to 5 dp
    maker_fee = 0
    log = http.get("/_sim/orders", params={"maker": maker.maker}).json()["orders"]  # in arrival order
    for entry, order, shares in zip(log, (ask_a, ask_b), (10, 13)):
        mine = _evidence(maker, entry["order_id"], _shape(order, "GTC"))
        assert mine.filled_shares_e6 == shares * 10**6
        maker_fee += mine.fee_e6
    received = maker.balance()["collateral_e6"]
    assert received == notional - maker_fee
    assert (maker_fee == 0) is taker_only


# ---------- validation order: balance before duplicate ----------
def test_balance_before_duplicate_answers_a_resend_of_filled_bytes_with_not_enough_balance(http):
    trader = Trader(http)
    fund(http, trader.maker, collateral=6_000_000)
    order = trader.limit("BUY", 0.51, 10)  # 5.1 + fee 0.04998: what is left cannot pay for it again
    assert trader.post(order, "FOK").json()["status"] == "matched"
    assert "Duplicated" in trader.post(order, "FOK").json()["error"]  # default: the duplicate check first
    http.post("/_sim/faults", json={"balance_before_duplicate": True})
    again = trader.post(order, "FOK")
    assert again.status_code == 400 and again.json()["error"].startswith("not enough balance / allowance")
    (entry,) = http.get("/_sim/orders").json()["orders"]
    assert entry["post_count"] == 3 and entry["size_matched_e6"] == 10_000_000  # received, still filled once
    fund(http, trader.maker, collateral=100_000_000)  # enough money: the re-send is a duplicate again
    assert "Duplicated" in trader.post(order, "FOK").json()["error"]
    assert http.get("/_sim/faults").json()["balance_before_duplicate"] is True


# ---------- trade status lag ----------
def _trade_statuses(trader: Trader) -> list[str]:
    return [t["status"] for t in trader.get("/data/trades").json()["data"]]


def test_trades_advance_matched_mined_confirmed_and_evidence_waits_for_confirmed(http):
    trader = Trader(http)
    fund(http, trader.maker)
    http.post("/_sim/faults", json={"trade_mined_seconds": 1, "trade_confirmed_seconds": 2})
    order = trader.limit("BUY", 0.51, 10)
    reply = trader.post(order, "FOK").json()
    assert reply["status"] == "matched"
    assert _trade_statuses(trader) == ["MATCHED"]
    (entry,) = http.get("/_sim/orders").json()["orders"]
    assert (entry["size_matched_e6"], entry["confirmed_matched_e6"], entry["pending_matched_e6"]) == (
        10_000_000,
        0,
        10_000_000,
    )
    first = _evidence(trader, reply["orderID"], _shape(order, "FOK"))
    assert first.status == "SUBMITTED" and first.venue_status == "in-flight"
    time.sleep(1.05)
    assert _trade_statuses(trader) == ["MINED"]
    assert _evidence(trader, reply["orderID"], _shape(order, "FOK")).venue_status == "in-flight"
    time.sleep(1)
    assert _trade_statuses(trader) == ["CONFIRMED"]
    (entry,) = http.get("/_sim/orders").json()["orders"]
    assert (entry["size_matched_e6"], entry["confirmed_matched_e6"], entry["pending_matched_e6"]) == (
        10_000_000,
        10_000_000,
        0,
    )
    done = _evidence(trader, reply["orderID"], _shape(order, "FOK"))
    assert (done.status, done.filled_shares_e6, done.fee_e6) == ("FILLED", 10_000_000, 49_980)


def test_a_failed_trade_undoes_its_fill_for_taker_and_makers(http):
    maker, taker = Trader(http), Trader(http)
    http.post(
        "/_sim/markets",
        json=market(
            condition_id="0x" + "66" * 32, taker_only_fees=False, tokens=[TokenConfig(token_id="6001", asks=[])]
        ).model_dump(mode="json"),
    )
    http.post(
        "/_sim/accounts",
        json=[
            {"address": maker.maker, "collateral_e6": 10_000_000, "tokens_e6": {"6001": 30_000_000}},
            {"address": taker.maker, "collateral_e6": 100_000_000},
        ],
    )
    full = maker.limit("SELL", 0.6, 10, token="6001")  # the taker's BUY takes all of it
    part = maker.limit("SELL", 0.62, 20, token="6001")  # ... and 5 of these
    bid = maker.limit("BUY", 0.3, 5, token="6001")  # the taker's SELL takes all of it
    ids = [maker.post(o).json()["orderID"] for o in (full, part, bid)]
    before = {"maker": maker.balance(), "taker": taker.balance()}
    http.post("/_sim/faults", json={"trade_mined_seconds": 0.5, "trade_confirmed_seconds": 1, "trade_failed_rate": 1})
    buy = taker.limit("BUY", 0.62, 15, token="6001")
    reply = taker.post(buy, "FOK").json()
    assert reply["status"] == "matched" and taker.balance()["tokens_e6"]["6001"] == 15_000_000
    assert taker.post(taker.limit("SELL", 0.3, 5, token="6001"), "FAK").json()["status"] == "matched"
    assert set(_trade_statuses(taker)) == {"MATCHED"}
    time.sleep(0.55)
    assert set(_trade_statuses(taker)) == {"RETRYING"}  # mined, but it will fail: retried on chain
    time.sleep(0.5)
    assert set(_trade_statuses(taker)) == set(_trade_statuses(maker)) == {"FAILED"}
    after = {"maker": maker.balance(), "taker": taker.balance()}
    for who in ("maker", "taker"):  # every fill undone, fees included (makers pay here: not taker-only)
        assert after[who]["collateral_e6"] == before[who]["collateral_e6"], who
        assert after[who]["tokens_e6"].get("6001", 0) == before[who]["tokens_e6"].get("6001", 0), who
    assert after["taker"]["reserved_collateral_e6"] == after["taker"]["reserved_tokens_e6"].get("6001", 0) == 0
    # the partly hit ask rests whole again; the orders the trades had filled stay off the book
    assert after["maker"]["reserved_tokens_e6"]["6001"] == 20_000_000
    assert after["maker"]["reserved_collateral_e6"] == 0
    assert sum(Decimal(a["size"]) for a in http.get("/book", params={"token_id": "6001"}).json()["asks"]) == 20
    log = {o["order_id"]: o for o in http.get("/_sim/orders").json()["orders"]}
    assert all(o["size_matched_e6"] == o["confirmed_matched_e6"] == o["pending_matched_e6"] == 0 for o in log.values())
    assert [log[i]["status"] for i in ids] == ["MATCHED", "LIVE", "MATCHED"]
    assert log[reply["orderID"]]["status"] == "MATCHED"  # the venue keeps the status; the trades say FAILED
    assert maker.get(f"/data/order/{ids[0]}").json()["size_matched"] == "0"
    for trader, order_id, order, kind in ((taker, reply["orderID"], buy, "FOK"), (maker, ids[0], full, "GTC")):
        seen = _evidence(trader, order_id, _shape(order, kind))
        assert (seen.status, seen.filled_shares_e6) == ("NOT_FILLED", 0), order_id


def test_trade_failures_follow_the_rate_and_confirmed_sizes_tell_the_final_truth(http):
    traders = [Trader(http) for _ in range(3)]
    for t in traders:
        fund(http, t.maker, collateral=100_000_000, yes=100_000_000)
    http.post("/_sim/faults", json={"trade_confirmed_seconds": 0.05, "trade_failed_rate": 0.5})
    rng = random.Random(5)
    for _ in range(40):
        t = rng.choice(traders)
        t.post(
            t.limit(rng.choice(["BUY", "SELL"]), rng.choice([0.48, 0.5, 0.52]), rng.choice([5, 10])),
            rng.choice(["FOK", "FAK", "GTC"]),
        )
    time.sleep(0.1)
    trades = http.get("/_sim/trades").json()
    statuses = [t["status"] for t in trades]
    assert set(statuses) == {"CONFIRMED", "FAILED"} and 0.2 < statuses.count("FAILED") / len(statuses) < 0.8
    for entry in http.get("/_sim/orders").json()["orders"]:
        confirmed = sum(
            Decimal(t["size"]) * 10**6
            for t in trades
            if t["id"] in entry["trade_ids"] and t["status"] == "CONFIRMED" and t["taker_order_id"] == entry["order_id"]
        )
        confirmed += sum(
            Decimal(m["matched_amount"]) * 10**6
            for t in trades
            if t["status"] == "CONFIRMED"
            for m in t["maker_orders"]
            if m["order_id"] == entry["order_id"]
        )
        assert entry["confirmed_matched_e6"] == entry["size_matched_e6"] == confirmed, entry
    for t in traders:
        balance = t.balance()
        assert balance["collateral_e6"] >= balance["reserved_collateral_e6"] >= 0
