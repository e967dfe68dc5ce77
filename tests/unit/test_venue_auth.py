"""L1 (ClobAuth EIP-712) and L2 (HMAC) headers against py-clob-client-v2's own header builders."""

from __future__ import annotations

import base64
import logging

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from py_clob_client_v2.clob_types import ApiCreds as RefCreds
from py_clob_client_v2.clob_types import RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.signer import Signer

from horus.venue.polymarket.auth import ApiCreds, AuthError, hmac_signature, l1_headers, l2_headers
from horus.venue.polymarket.orders import OrderError

KEY = "0x" + "3a" * 32
ADDRESS = Account.from_key(KEY).address
SECRET = base64.urlsafe_b64encode(b"super-secret-hmac-key-32-bytes!!").decode()
PASSPHRASE = "correct-horse-battery-staple"
CREDS = ApiCreds(api_key="0b0c1f3e-4c7d-4a8e-9d1f-2a3b4c5d6e7f", secret=SECRET, passphrase=PASSPHRASE)
REF_CREDS = RefCreds(api_key=CREDS.api_key, api_secret=SECRET, api_passphrase=PASSPHRASE)


@pytest.mark.parametrize(
    "chain_id,timestamp,nonce",
    [(137, 1_764_000_000, 0), (137, 1_764_000_123, 7), (80002, 1_700_000_000, 0), (31337, 1, 2**64)],
)
def test_l1_headers_equal_the_reference(chain_id, timestamp, nonce):
    expected = create_level_1_headers(Signer(KEY, chain_id), nonce=nonce, timestamp=timestamp)
    assert l1_headers(KEY, chain_id, timestamp, nonce) == expected


def test_l1_signature_recovers_to_the_signer_over_the_clob_auth_typed_data():
    headers = l1_headers(KEY, 137, 1_764_000_000, 3)
    typed = {
        "primaryType": "ClobAuth",
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": 137},
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
        "message": {
            "address": ADDRESS,
            "timestamp": "1764000000",
            "nonce": 3,
            "message": "This message attests that I control the given wallet",
        },
    }
    recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=headers["POLY_SIGNATURE"])
    assert recovered == ADDRESS == headers["POLY_ADDRESS"]
    assert (headers["POLY_TIMESTAMP"], headers["POLY_NONCE"]) == ("1764000000", "3")


def test_l1_refuses_bad_inputs_without_echoing_the_key():
    with pytest.raises(AuthError, match="timestamp must be a non-negative int"):
        l1_headers(KEY, 137, -1)
    with pytest.raises(OrderError, match="private_key must be 32 bytes") as error:
        l1_headers(KEY[:-2], 137, 1)
    assert KEY[2:-2] not in str(error.value)


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/order", '{"order":{"salt":1,"side":"BUY"},"owner":"k","orderType":"GTC"}'),
        ("DELETE", "/orders", '["0xab","0xcd"]'),
        ("GET", "/data/order/0x" + "ab" * 32, None),
        ("GET", "/balance-allowance", None),
        ("DELETE", "/cancel-all", None),
    ],
)
def test_l2_headers_equal_the_reference(method, path, body):
    expected = create_level_2_headers(
        Signer(KEY, 137),
        REF_CREDS,
        RequestArgs(method=method, request_path=path, serialized_body=body),
        timestamp=1_764_000_000,
    )
    assert l2_headers(CREDS, ADDRESS.lower(), method, path, body, 1_764_000_000) == expected


def test_l2_signs_the_path_without_its_query_and_the_exact_body():
    with_query = l2_headers(CREDS, ADDRESS, "GET", "/data/trades?market=0x1&next_cursor=MA==", None, 1_764_000_000)
    without = l2_headers(CREDS, ADDRESS, "GET", "/data/trades", None, 1_764_000_000)
    assert with_query == without
    compact = l2_headers(CREDS, ADDRESS, "POST", "/order", '{"a":1}', 1_764_000_000)
    spaced = l2_headers(CREDS, ADDRESS, "POST", "/order", '{"a": 1}', 1_764_000_000)
    assert compact["POLY_SIGNATURE"] != spaced["POLY_SIGNATURE"]  # the text is signed, not the JSON value
    assert compact["POLY_SIGNATURE"] == hmac_signature(SECRET, 1_764_000_000, "post", "/order", '{"a":1}')


def test_l2_refuses_bad_inputs():
    with pytest.raises(AuthError, match="API secret is not url-safe base64"):
        l2_headers(ApiCreds("k", "not*base64", "p"), ADDRESS, "GET", "/x", None, 1)
    with pytest.raises(AuthError, match="body must be the serialized text"):
        l2_headers(CREDS, ADDRESS, "POST", "/order", {"a": 1}, 1)
    with pytest.raises(AuthError, match="address must be a 20-byte 0x hex address"):
        l2_headers(CREDS, "0x12", "GET", "/x", None, 1)
    with pytest.raises(AuthError, match="timestamp must be positive"):
        l2_headers(CREDS, ADDRESS, "GET", "/x", None, 0)


def test_api_creds_never_show_the_secret_or_passphrase(caplog):
    for text in (repr(CREDS), str(CREDS), f"{CREDS}", f"{CREDS!r}", repr([CREDS]), repr({"c": CREDS})):
        assert SECRET not in text and PASSPHRASE not in text and CREDS.api_key not in text
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("horus.test").info("creds %s %r", CREDS, CREDS)
        logging.getLogger("horus.test").info("creds %s", {"creds": CREDS})
    assert SECRET not in caplog.text and PASSPHRASE not in caplog.text
    assert "0b0c1f3e..." in repr(CREDS)  # a short key prefix is kept to tell accounts apart


def test_api_creds_from_the_venue_reply():
    creds = ApiCreds.from_venue({"apiKey": "k", "secret": SECRET, "passphrase": "p"})
    assert (creds.api_key, creds.secret, creds.passphrase) == ("k", SECRET, "p")
    with pytest.raises(AuthError, match="missing 'passphrase'"):
        ApiCreds.from_venue({"apiKey": "k", "secret": SECRET})
