"""Order hashing and signing against the real py-clob-client-v2 (the independent reference), the POST body,
orders built from intents (deterministic, validated), and `horus orders sign`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, SignedOrderV2, order_to_json_v2
from py_clob_client_v2.signer import Signer
from typer.testing import CliRunner

from horus.cli.main import app
from horus.venue.polymarket.orders import (
    ORDER_TYPE_STRING,
    Domain,
    OrderError,
    OrderFields,
    exchange_for,
    intent_metadata,
    order_body,
    order_for_intent,
    order_hash,
    sign_order,
    struct_hash,
)

KEY = "0x" + "4c" * 32
OWNER = Account.from_key(KEY).address
OTHER_KEY = "0x" + "5d" * 32
# a deposit wallet / proxy / safe (the funder), checksummed as the reference client sends it
WALLET = to_checksum_address("0x9f2b1a3c4d5e6f708192a3b4c5d6e7f801928374")
TOKEN = 71321045679252212594626385532706912750332728571942532289631379312455583992563
BUILDER = "0x" + "b1" * 32
METADATA = "0x" + "e7" * 32


def fields(signature_type: int = 0, **overrides) -> OrderFields:
    maker = OWNER if signature_type == 0 else WALLET
    signer = WALLET if signature_type == 3 else OWNER
    values = dict(
        salt=123456789,
        maker=maker,
        signer=signer,
        token_id=TOKEN,
        maker_amount=5_300_000,
        taker_amount=10_000_000,
        side=0,
        signature_type=signature_type,
        timestamp_ms=1_764_000_000_000,
        metadata=METADATA,
        builder=BUILDER,
    )
    return OrderFields(**{**values, **overrides})


def reference(f: OrderFields, domain: Domain, key: str = KEY) -> tuple[str, str, SignedOrderV2]:
    """(hash, signature, signed order) from py-clob-client-v2 with the same salt and timestamp."""
    builder = ExchangeOrderBuilderV2(
        domain.exchange,
        domain.chain_id,
        Signer(key, domain.chain_id),
        generate_salt=lambda: str(f.salt),
        domain_version=domain.version,
    )
    signed = builder.build_signed_order(
        OrderDataV2(
            maker=f.maker,
            signer=f.signer,
            tokenId=str(f.token_id),
            makerAmount=str(f.maker_amount),
            takerAmount=str(f.taker_amount),
            side=f.side,
            signatureType=f.signature_type,
            timestamp=str(f.timestamp_ms),
            metadata=f.metadata,
            builder=f.builder,
        )
    )
    typed = builder.build_order_typed_data(
        builder.build_order(
            OrderDataV2(
                maker=f.maker,
                signer=f.signer,
                tokenId=str(f.token_id),
                makerAmount=str(f.maker_amount),
                takerAmount=str(f.taker_amount),
                side=f.side,
                signatureType=f.signature_type,
                timestamp=str(f.timestamp_ms),
                metadata=f.metadata,
                builder=f.builder,
            )
        )
    )
    return builder.build_order_hash(typed), signed.signature, signed


DOMAINS = {
    "ctf-v2": exchange_for("v1", neg_risk=False),
    "neg-risk-v2": exchange_for("v1", neg_risk=True),
    "exchange-v3": exchange_for("v2", neg_risk=False),
    "amoy-v3": exchange_for("v2", neg_risk=False, chain_id=80002),
}


# --- byte-identical to the reference client ---------------------------------------------------------------------
@pytest.mark.parametrize("domain_name", sorted(DOMAINS))
@pytest.mark.parametrize("signature_type", [0, 1, 2, 3])
@pytest.mark.parametrize("side", [0, 1])
def test_hash_and_signature_equal_the_reference_client(signature_type, domain_name, side):
    domain = DOMAINS[domain_name]
    f = fields(signature_type, side=side)
    ref_hash, ref_signature, _ = reference(f, domain)
    signed = sign_order(f, domain, KEY)
    assert signed.order_hash == ref_hash == order_hash(f, domain)
    assert signed.signature == ref_signature
    assert signed.order_hash == signed.order_hash.lower() and len(signed.order_hash) == 66


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    salt=st.integers(0, 2**53 - 1),
    token=st.integers(0, 2**256 - 1),
    maker_amount=st.integers(1, 10**15),
    taker_amount=st.integers(1, 10**15),
    side=st.sampled_from([0, 1]),
    signature_type=st.sampled_from([0, 3]),
    timestamp=st.integers(1, 2**63),
    metadata=st.binary(min_size=32, max_size=32),
    version=st.sampled_from(["2", "3"]),
)
def test_any_fields_sign_like_the_reference(
    salt, token, maker_amount, taker_amount, side, signature_type, timestamp, metadata, version
):
    domain = exchange_for("v2" if version == "3" else "v1", neg_risk=False)
    f = fields(
        signature_type,
        salt=salt,
        token_id=token,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        side=side,
        timestamp_ms=timestamp,
        metadata="0x" + metadata.hex(),
    )
    ref_hash, ref_signature, _ = reference(f, domain)
    signed = sign_order(f, domain, KEY)
    assert (signed.order_hash, signed.signature) == (ref_hash, ref_signature)


def test_eoa_signature_recovers_to_the_signer_via_eth_account():
    domain = DOMAINS["ctf-v2"]
    f = fields(0)
    typed = {
        "primaryType": "Order",
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": "2",
            "chainId": 137,
            "verifyingContract": domain.exchange,
        },
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [
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
            ],
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
    signed = sign_order(f, domain, KEY)
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=signed.signature) == OWNER


def test_poly_1271_signature_is_an_erc7739_nested_signature_by_the_owner():
    """Independent of py-clob-client: eth_account hashes the nested TypedDataSign{contents: Order} in the exchange
    domain (with the wallet's domain fields), and the 65-byte ECDSA part must recover to the owner EOA."""
    domain = DOMAINS["exchange-v3"]
    f = fields(3)
    signature = bytes.fromhex(sign_order(f, domain, KEY).signature[2:])
    order_type = [
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
    order = {
        "salt": f.salt,
        "maker": f.maker,
        "signer": f.signer,
        "tokenId": f.token_id,
        "makerAmount": f.maker_amount,
        "takerAmount": f.taker_amount,
        "side": f.side,
        "signatureType": 3,
        "timestamp": f.timestamp_ms,
        "metadata": bytes.fromhex(f.metadata[2:]),
        "builder": bytes.fromhex(f.builder[2:]),
    }
    nested = {
        "primaryType": "TypedDataSign",
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": "3",
            "chainId": 137,
            "verifyingContract": domain.exchange,
        },
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TypedDataSign": [
                {"name": "contents", "type": "Order"},
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
                {"name": "salt", "type": "bytes32"},
            ],
            "Order": order_type,
        },
        "message": {
            "contents": order,
            "name": "DepositWallet",
            "version": "1",
            "chainId": 137,
            "verifyingContract": WALLET,
            "salt": bytes(32),
        },
    }
    type_string = ORDER_TYPE_STRING.encode()
    assert len(signature) == 65 + 32 + 32 + len(type_string) + 2
    assert Account.recover_message(encode_typed_data(full_message=nested), signature=signature[:65]) == OWNER
    assert signature[65:97] == domain.separator
    assert signature[97:129] == struct_hash(f)
    assert signature[129:-2] == type_string and int.from_bytes(signature[-2:], "big") == len(type_string)


def test_signer_must_be_the_key_for_types_0_to_2_and_the_wallet_for_type_3():
    with pytest.raises(OrderError, match="signer .* is not the address of the signing key"):
        sign_order(fields(1), DOMAINS["ctf-v2"], OTHER_KEY)
    with pytest.raises(OrderError, match="signer must equal maker"):
        sign_order(fields(3, signer=OWNER), DOMAINS["ctf-v2"], KEY)
    with pytest.raises(OrderError, match="private_key must be 32 bytes"):
        sign_order(fields(0), DOMAINS["ctf-v2"], "0x1234")


def test_private_key_as_bytes_or_unprefixed_hex_gives_the_same_signature():
    domain = DOMAINS["ctf-v2"]
    assert (
        sign_order(fields(0), domain, bytes.fromhex(KEY[2:]))
        == sign_order(fields(0), domain, KEY[2:])
        == sign_order(fields(0), domain, KEY)
    )


def test_order_fields_name_the_bad_field():
    with pytest.raises(OrderError, match="maker must be a 0x-prefixed 20-byte hex address"):
        fields(0, maker="0x1234")
    with pytest.raises(OrderError, match="metadata must be 0x followed by 64 hex digits"):
        fields(0, metadata="0x" + "00" * 31)
    with pytest.raises(OrderError, match="builder must be 0x followed by 64 hex digits"):
        fields(0, builder="zz")
    with pytest.raises(OrderError, match="side must be 0"):
        fields(0, side=2)
    with pytest.raises(OrderError, match="signature_type must be one of"):
        fields(4)
    with pytest.raises(OrderError, match=r"salt must be an int in \[0, 2\^256\)"):
        fields(0, salt=-1)
    with pytest.raises(OrderError, match="token_id must be an int"):
        fields(0, token_id=str(TOKEN))
    with pytest.raises(OrderError, match="domain.version must be one of"):
        Domain(DOMAINS["ctf-v2"].exchange, 137, "1")


def test_exchange_choice_by_market_version_and_neg_risk():
    assert exchange_for("v1", False) == Domain("0xE111180000d2663C0091e4f400237545B87B996B", 137, "2")
    assert exchange_for("v1", True) == Domain("0xe2222d279d744050d28e00520010520000310F59", 137, "2")
    assert (
        exchange_for("v2", False)
        == exchange_for("v2", True)
        == Domain("0xe3333700cA9d93003F00f0F71f8515005F6c00Aa", 137, "3")
    )
    with pytest.raises(OrderError, match="market_version"):
        exchange_for("v9", False)
    with pytest.raises(OrderError, match="chain_id 31337 has no known exchanges"):
        exchange_for("v1", False, chain_id=31337)


# --- the POST /order body ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "signature_type,order_type,post_only,expiration",
    [(0, "GTC", False, 0), (3, "FOK", False, 0), (1, "GTD", True, 1_900_000_000)],
)
def test_order_body_is_what_the_reference_client_sends(signature_type, order_type, post_only, expiration):
    domain = DOMAINS["ctf-v2"]
    f = fields(signature_type)
    signed = sign_order(f, domain, KEY)
    _, _, ref_signed = reference(f, domain)
    ref_signed.expiration = str(expiration)
    ours = order_body(signed, owner="api-key-1", order_type=order_type, expiration=expiration, post_only=post_only)
    theirs = order_to_json_v2(ref_signed, "api-key-1", order_type, post_only=post_only)
    # same keys, same order, same values: the serialized text (what is signed by HMAC and sent) is identical
    assert json.dumps(ours, separators=(",", ":")) == json.dumps(theirs, separators=(",", ":"))


def test_order_body_refuses_invalid_options():
    signed = sign_order(fields(0), DOMAINS["ctf-v2"], KEY)
    with pytest.raises(OrderError, match="post_only is not allowed with order_type FOK"):
        order_body(signed, owner="k", order_type="FOK", post_only=True)
    with pytest.raises(OrderError, match="order_type must be one of"):
        order_body(signed, owner="k", order_type="IOC")
    with pytest.raises(OrderError, match="expiration is only for GTD"):
        order_body(signed, owner="k", order_type="GTC", expiration=1_900_000_000)
    with pytest.raises(OrderError, match="owner"):
        order_body(signed, owner="", order_type="GTC")


# --- orders from intents -----------------------------------------------------------------------------------------
def intent(**overrides) -> OrderFields:
    args = dict(
        token_id=str(TOKEN),
        side="BUY",
        size_e6=10_000_000,
        worst_price=Decimal("0.53"),
        tick_size=Decimal("0.01"),
        order_type="GTC",
        maker=OWNER,
        signer=OWNER,
        signature_type=0,
        builder=BUILDER,
        timestamp_ms=1_764_000_000_000,
    )
    return order_for_intent(overrides.pop("intent_id", "follow-7:0xabc:3:0"), **{**args, **overrides})


def test_same_intent_gives_byte_identical_signed_order_and_body():
    domain = DOMAINS["neg-risk-v2"]
    first = sign_order(intent(), domain, KEY)
    second = sign_order(intent(maker=OWNER.lower(), signer=OWNER.lower()), domain, KEY)
    assert first == second
    assert json.dumps(order_body(first, owner="k", order_type="GTC")) == json.dumps(
        order_body(second, owner="k", order_type="GTC")
    )
    assert sign_order(intent(intent_id="follow-7:0xabc:3:1"), domain, KEY).order_hash != first.order_hash


def test_salt_and_metadata_come_from_the_intent_id():
    digest = hashlib.sha256(b"follow-7:0xabc:3:0").digest()
    f = intent()
    assert f.salt == int.from_bytes(digest, "big") >> (256 - 53) and f.salt < 2**53
    assert f.metadata == "0x" + digest.hex() == intent_metadata("follow-7:0xabc:3:0")


@pytest.mark.parametrize(
    "side,size_e6,price,tick,order_type,maker_amount,taker_amount",
    [
        ("BUY", 10_000_000, "0.53", "0.01", "GTC", 5_300_000, 10_000_000),
        ("BUY", 10_129_999, "0.53", "0.01", "GTC", 5_363_600, 10_120_000),  # shares rounded DOWN to 2 dp
        ("SELL", 10_129_999, "0.53", "0.01", "FOK", 10_120_000, 5_363_600),
        ("BUY", 7_770_000, "0.0123", "0.0001", "GTD", 95_571, 7_770_000),
        ("SELL", 5_000_000, "0.995", "0.005", "GTC", 5_000_000, 4_975_000),
        # marketable BUY: spend to the cent (10.00), shares = spend / price to 4 dp
        ("BUY", 18_870_000, "0.53", "0.01", "FOK", 10_000_000, 18_867_900),
        ("BUY", 10_000_000, "0.53", "0.01", "FAK", 5_300_000, 10_000_000),
    ],
)
def test_amounts(side, size_e6, price, tick, order_type, maker_amount, taker_amount):
    f = intent(side=side, size_e6=size_e6, worst_price=Decimal(price), tick_size=Decimal(tick), order_type=order_type)
    assert (f.maker_amount, f.taker_amount) == (maker_amount, taker_amount)
    assert f.side == (0 if side == "BUY" else 1)


@settings(max_examples=200, deadline=None)
@given(
    size_e6=st.integers(10_000, 10**12),
    tick=st.sampled_from(sorted(ROUNDING_CONFIG)),
    data=st.data(),
    side=st.sampled_from(["BUY", "SELL"]),
)
def test_limit_amounts_match_the_reference_and_keep_the_price(size_e6, tick, data, side):
    tick_d = Decimal(tick)
    steps = int(1 / tick_d)
    price = tick_d * data.draw(st.integers(1, steps - 1))
    f = intent(side=side, size_e6=size_e6, worst_price=price, tick_size=tick_d)
    shares, collateral = (f.taker_amount, f.maker_amount) if side == "BUY" else (f.maker_amount, f.taker_amount)
    assert shares == size_e6 - size_e6 % 10_000
    assert Decimal(collateral) / Decimal(shares) == price  # implied price is exactly the limit
    ref_builder = OrderBuilder(Signer(KEY, 137))
    _, ref_maker, ref_taker = ref_builder.get_order_amounts(side, shares / 1e6, float(price), ROUNDING_CONFIG[tick])
    # the reference rounds in floats: floor(33.55 * 100) is 3354. Compare where its share count survived; its
    # collateral can still lose one base unit (999,999.99 x 0.75 gives ...2499 in floats, ...2500 exactly)
    assume((ref_taker if side == "BUY" else ref_maker) == shares)
    ref_collateral = ref_maker if side == "BUY" else ref_taker
    assert abs(collateral - ref_collateral) <= 1  # ours is exact: the implied price check above


@settings(max_examples=200, deadline=None)
@given(size_e6=st.integers(100_000_000, 10**12), cents=st.integers(1, 99))  # >= 100 shares: >= $1
def test_marketable_buy_precision_and_budget(size_e6, cents):
    price = Decimal(cents) / 100
    f = intent(side="BUY", size_e6=size_e6, worst_price=price, order_type="FOK")
    shares = size_e6 - size_e6 % 10_000
    assert f.maker_amount % 10_000 == 0 and f.taker_amount % 100 == 0  # <= 2 dp and <= 4 dp
    assert f.maker_amount <= shares * cents // 100  # never spends more than shares x worst price
    assert f.taker_amount <= shares
    assert f.maker_amount * 10**6 // f.taker_amount >= cents * 10**4  # still crosses at the worst price


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"worst_price": Decimal("0.535")}, "worst_price 0.535 is not on the tick grid 0.01"),
        ({"worst_price": Decimal("0.99"), "tick_size": Decimal("0.1")}, "worst_price 0.99 is not on the tick grid"),
        ({"worst_price": Decimal("1")}, r"worst_price 1 is outside \[0.01, 0.99\]"),
        ({"worst_price": Decimal("0")}, r"worst_price 0 is outside"),
        ({"worst_price": 0.53}, "worst_price must be a Decimal"),
        ({"tick_size": Decimal("0.02")}, "tick_size must be one of"),
        ({"size_e6": 9_999}, "size_e6 9999 is below 0.01 shares"),
        ({"size_e6": 0}, "size_e6 must be a positive int"),
        ({"size_e6": 10_000, "worst_price": Decimal("0.01"), "order_type": "FOK"}, "spends less than one cent"),
        ({"side": "HOLD"}, "side must be 'BUY' or 'SELL'"),
        ({"order_type": "MARKET"}, "order_type must be one of"),
        ({"maker": "0xnothex"}, "maker must be a 0x-prefixed 20-byte hex address"),
        ({"signer": WALLET}, "maker must equal signer for signature_type 0"),
        ({"signature_type": 3, "maker": WALLET}, "signer must equal maker"),
        ({"builder": "0x12"}, "builder must be 0x followed by 64 hex digits"),
        ({"token_id": "0xabc"}, "token_id must be a decimal integer string"),
        ({"timestamp_ms": 0}, "timestamp_ms must be a positive int"),
        ({"intent_id": ""}, "intent_id must be a non-empty string"),
    ],
)
def test_order_for_intent_names_the_bad_field(overrides, message):
    with pytest.raises(OrderError, match=message):
        intent(**overrides)


def test_price_bounds_are_inclusive():
    assert intent(worst_price=Decimal("0.01")).maker_amount == 100_000
    assert intent(worst_price=Decimal("0.99")).maker_amount == 9_900_000


def test_signing_refuses_to_run_without_coincurve():
    code = (
        "import sys; sys.modules['coincurve'] = None\n"
        "try:\n import horus.venue.polymarket.orders\nexcept ImportError as e: print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "needs `coincurve`" in out and "pip install coincurve" in out


# --- `horus orders sign` -----------------------------------------------------------------------------------------
def wire(f: OrderFields) -> dict:
    return {
        "salt": f.salt,
        "maker": f.maker,
        "signer": f.signer,
        "tokenId": str(f.token_id),
        "makerAmount": str(f.maker_amount),
        "takerAmount": str(f.taker_amount),
        "side": "BUY" if f.side == 0 else "SELL",
        "signatureType": f.signature_type,
        "timestamp": str(f.timestamp_ms),
        "metadata": f.metadata,
        "builder": f.builder,
    }


@pytest.mark.parametrize("signature_type,version", [(0, "2"), (2, "3"), (3, "3")])
def test_cli_sign_prints_the_reference_hash_and_signature(signature_type, version):
    domain = exchange_for("v2" if version == "3" else "v1", neg_risk=False)
    f = fields(signature_type, side=1)
    ref_hash, ref_signature, _ = reference(f, domain)
    result = CliRunner().invoke(
        app,
        ["orders", "sign", "--exchange", domain.exchange, "--chain-id", "137", "--domain-version", version],
        input=json.dumps(wire(f)),
        env={"HORUS_SIGNER_KEY": KEY},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"order_hash": ref_hash, "signature": ref_signature}
    assert KEY[2:] not in result.output


def test_cli_sign_reads_a_file_and_a_key_file(tmp_path):
    domain = DOMAINS["neg-risk-v2"]
    f = fields(0)
    (tmp_path / "order.json").write_text(json.dumps({**wire(f), "side": 0, "salt": str(f.salt)}))
    (tmp_path / "key").write_text(KEY + "\n")
    result = CliRunner().invoke(
        app,
        ["orders", "sign", "--file", str(tmp_path / "order.json"), "--neg-risk", "--key-file", str(tmp_path / "key")],
        env={"HORUS_SIGNER_KEY": ""},
    )
    assert result.exit_code == 0, result.output
    ref_hash, ref_signature, _ = reference(f, domain)
    assert json.loads(result.stdout) == {"order_hash": ref_hash, "signature": ref_signature}


def test_cli_sign_without_a_key_names_both_ways_to_pass_one():
    result = CliRunner().invoke(
        app, ["orders", "sign"], input=json.dumps(wire(fields(0))), env={"HORUS_SIGNER_KEY": ""}
    )
    assert result.exit_code == 1
    assert "HORUS_SIGNER_KEY" in result.output and "--key-file" in result.output


@pytest.mark.parametrize(
    "change,message",
    [
        ({"tokenId": None}, "order is missing tokenId"),
        ({"side": "HOLD"}, "side must be"),
        ({"makerAmount": 1.5}, "makerAmount must be an integer"),
        ({"signer": "0x12"}, "signer must be a 0x-prefixed 20-byte hex address"),
    ],
)
def test_cli_sign_names_the_bad_field_and_never_echoes_the_key(change, message):
    order = {**wire(fields(0)), **change}
    order = {k: v for k, v in order.items() if v is not None}
    result = CliRunner().invoke(app, ["orders", "sign"], input=json.dumps(order), env={"HORUS_SIGNER_KEY": KEY})
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert KEY[2:] not in result.output


def test_cli_sign_with_the_wrong_key_for_the_signer_fails():
    result = CliRunner().invoke(
        app, ["orders", "sign"], input=json.dumps(wire(fields(0))), env={"HORUS_SIGNER_KEY": OTHER_KEY}
    )
    assert result.exit_code == 1 and "is not the address of the signing key" in " ".join(result.output.split())
    assert OTHER_KEY[2:] not in result.output
