"""CLOB authentication headers (platform notes 2.1, 2.2).

- L1: an EIP-712 `ClobAuth` signature by the signer EOA; used only to create or derive the L2 API credentials.
- L2: HMAC-SHA256 with the API secret over `timestamp + METHOD + path + body`, on every trading/account call.
  The path is signed without its query string, and the body is the exact text sent (compact JSON).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak, to_checksum_address

from horus.venue.polymarket.orders import OrderError, ecdsa_sign, private_key_bytes, signing_key

POLY_ADDRESS = "POLY_ADDRESS"
POLY_SIGNATURE = "POLY_SIGNATURE"
POLY_TIMESTAMP = "POLY_TIMESTAMP"
POLY_NONCE = "POLY_NONCE"
POLY_API_KEY = "POLY_API_KEY"
POLY_PASSPHRASE = "POLY_PASSPHRASE"

CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
_CLOB_DOMAIN_TYPE_HASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId)")
_CLOB_AUTH_TYPE_HASH = keccak(text="ClobAuth(address address,string timestamp,uint256 nonce,string message)")
_CLOB_DOMAIN_NAME_HASH = keccak(text="ClobAuthDomain")
_CLOB_DOMAIN_VERSION_HASH = keccak(text="1")  # unchanged by CLOB V2
_CLOB_AUTH_MESSAGE_HASH = keccak(text=CLOB_AUTH_MESSAGE)


class AuthError(ValueError):
    """Bad credentials or header inputs; the message names the field and never contains a secret."""


@dataclass(frozen=True)
class ApiCreds:
    """L2 API credentials of one signer EOA. repr/str never show the secret or the passphrase."""

    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def __repr__(self) -> str:
        return f"ApiCreds(api_key={_redact_key(self.api_key)!r}, secret='***', passphrase='***')"

    __str__ = __repr__

    @classmethod
    def from_venue(cls, body: Mapping[str, Any]) -> ApiCreds:
        """From the venue's `{"apiKey", "secret", "passphrase"}` reply (create/derive API key)."""
        try:
            return cls(api_key=str(body["apiKey"]), secret=str(body["secret"]), passphrase=str(body["passphrase"]))
        except (KeyError, TypeError) as exc:
            raise AuthError(f"API key reply is missing {exc}") from None


def _redact_key(api_key: str) -> str:
    # the key id is not the secret (it is the `owner` of every order), but keep logs short and unlinkable
    return (api_key[:8] + "...") if len(api_key) > 8 else "***"


# --- L2 -----------------------------------------------------------------------------------------------------------
def hmac_signature(secret: str, timestamp: int, method: str, path: str, body: str | None) -> str:
    """urlsafe-base64(HMAC-SHA256(urlsafe-b64decode(secret), ts + METHOD + path + body))."""
    try:
        key = base64.urlsafe_b64decode(secret)
    except (binascii.Error, ValueError, TypeError):
        raise AuthError("API secret is not url-safe base64") from None
    message = f"{timestamp}{method.upper()}{path.split('?', 1)[0]}{body or ''}"
    return base64.urlsafe_b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def l2_headers(
    creds: ApiCreds, address: str, method: str, path: str, body: str | None, timestamp: int
) -> dict[str, str]:
    """L2 headers for one request. `address` is the signer EOA (not the funder); `body` is the exact text sent."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp <= 0:
        raise AuthError(f"timestamp must be positive unix seconds, got {timestamp!r}")
    if body is not None and not isinstance(body, str):
        raise AuthError("body must be the serialized text that is sent (str) or None")
    return {
        POLY_ADDRESS: _checksum("address", address),
        POLY_SIGNATURE: hmac_signature(creds.secret, timestamp, method, path, body),
        POLY_TIMESTAMP: str(timestamp),
        POLY_API_KEY: creds.api_key,
        POLY_PASSPHRASE: creds.passphrase,
    }


# --- L1 -----------------------------------------------------------------------------------------------------------
def clob_auth_digest(address: str, chain_id: int, timestamp: int, nonce: int = 0) -> bytes:
    """The EIP-712 digest of `ClobAuth{address, timestamp (as a string), nonce, message}` in `ClobAuthDomain`."""
    domain = keccak(
        _CLOB_DOMAIN_TYPE_HASH + _CLOB_DOMAIN_NAME_HASH + _CLOB_DOMAIN_VERSION_HASH + chain_id.to_bytes(32, "big")
    )
    struct = keccak(
        _CLOB_AUTH_TYPE_HASH
        + bytes(12)
        + bytes.fromhex(address[2:])
        + keccak(text=str(timestamp))
        + nonce.to_bytes(32, "big")
        + _CLOB_AUTH_MESSAGE_HASH
    )
    return keccak(b"\x19\x01" + domain + struct)


def l1_headers(private_key: bytes | str, chain_id: int, timestamp: int, nonce: int = 0) -> dict[str, str]:
    """L1 headers (create/derive API credentials): the signer EOA's signature over ClobAuth."""
    for name, value in (("chain_id", chain_id), ("timestamp", timestamp), ("nonce", nonce)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AuthError(f"{name} must be a non-negative int, got {value!r}")
    try:
        key, address = signing_key(private_key_bytes(private_key))
    except OrderError:
        raise
    except ValueError as exc:
        raise AuthError("private_key is not a valid secp256k1 key") from exc
    signature = ecdsa_sign(key, clob_auth_digest(address, chain_id, timestamp, nonce))
    return {
        POLY_ADDRESS: to_checksum_address(address),
        POLY_SIGNATURE: "0x" + signature.hex(),
        POLY_TIMESTAMP: str(timestamp),
        POLY_NONCE: str(nonce),
    }


def _checksum(name: str, address: str) -> str:
    try:
        return _checksummed(address)
    except (ValueError, TypeError):
        raise AuthError(f"{name} must be a 20-byte 0x hex address, got {address!r}") from None


@functools.lru_cache(maxsize=1 << 16)
def _checksummed(address: str) -> str:  # every L2 request names its signer: keccak once per address, not per call
    return to_checksum_address(address)
