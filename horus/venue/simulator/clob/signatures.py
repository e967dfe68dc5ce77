"""EIP-712 verification for CLOB V2 orders and the L1 ClobAuth message, written for speed.

Type hashes and domain separators are computed once; a struct is ABI-encoded by hand (every field
is a static 32-byte word) and the signer is recovered with coincurve. A unit test checks the digests
against ``eth_account.messages.encode_typed_data`` so the fast path cannot drift from the standard.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from coincurve import PublicKey
from eth_hash.auto import keccak

ORDER_TYPE_STRING = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
ORDER_TYPE_HASH = keccak(ORDER_TYPE_STRING.encode())
DOMAIN_TYPE_HASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
EXCHANGE_NAME = "Polymarket CTF Exchange"

# POLY_1271 (ERC-7739 nested typed data, platform notes 3.2)
TYPED_DATA_SIGN_TYPE_HASH = keccak(
    (
        "TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,"
        "bytes32 salt)" + ORDER_TYPE_STRING
    ).encode()
)
DEPOSIT_WALLET_NAME_HASH = keccak(b"DepositWallet")
DEPOSIT_WALLET_VERSION_HASH = keccak(b"1")
_ORDER_TYPE_BYTES = ORDER_TYPE_STRING.encode()
_1271_TRAILER_LEN = 32 + 32 + len(_ORDER_TYPE_BYTES) + 2

# L1 auth (platform notes 2.1)
CLOB_AUTH_DOMAIN_TYPE_HASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId)")
CLOB_AUTH_TYPE_HASH = keccak(b"ClobAuth(address address,string timestamp,uint256 nonce,string message)")
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

SIG_EOA, SIG_POLY_PROXY, SIG_POLY_GNOSIS_SAFE, SIG_POLY_1271 = 0, 1, 2, 3


class SignatureError(ValueError):
    """The signature does not verify; the message says why (never echoes key material)."""


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    raw = bytes.fromhex(address[2:] if address.startswith(("0x", "0X")) else address)
    if len(raw) != 20:
        raise SignatureError("address must be 20 bytes")
    return b"\x00" * 12 + raw


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value[2:] if value.startswith(("0x", "0X")) else value)
    if len(raw) != 32:
        raise SignatureError("bytes32 field must be 32 bytes")
    return raw


@lru_cache(maxsize=64)
def exchange_domain_separator(version: str, chain_id: int, verifying_contract: str) -> bytes:
    return keccak(
        DOMAIN_TYPE_HASH
        + keccak(EXCHANGE_NAME.encode())
        + keccak(version.encode())
        + _word(chain_id)
        + _address_word(verifying_contract)
    )


@dataclass(frozen=True, slots=True)
class OrderStruct:
    """The signed fields of a V2 order, already parsed to ints / hex strings."""

    salt: int
    maker: str
    signer: str
    token_id: int
    maker_amount: int
    taker_amount: int
    side: int  # 0 BUY, 1 SELL
    signature_type: int
    timestamp: int
    metadata: str
    builder: str


def order_struct_hash(order: OrderStruct) -> bytes:
    return keccak(
        ORDER_TYPE_HASH
        + _word(order.salt)
        + _address_word(order.maker)
        + _address_word(order.signer)
        + _word(order.token_id)
        + _word(order.maker_amount)
        + _word(order.taker_amount)
        + _word(order.side)
        + _word(order.signature_type)
        + _word(order.timestamp)
        + _bytes32(order.metadata)
        + _bytes32(order.builder)
    )


def eip712_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain_separator + struct_hash)


def recover_address(digest: bytes, signature: bytes) -> str:
    """The lowercase 0x address that produced a 65-byte r||s||v signature over ``digest``."""
    if len(signature) != 65:
        raise SignatureError("signature must be 65 bytes")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise SignatureError("signature has a bad recovery id")
    try:
        public = PublicKey.from_signature_and_message(signature[:64] + bytes([v]), digest, hasher=None)
    except Exception as exc:  # coincurve raises plain Exception on an invalid point
        raise SignatureError("signature does not recover a key") from exc
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()


def _hex_bytes(value: str) -> bytes:
    try:
        return bytes.fromhex(value[2:] if value.startswith(("0x", "0X")) else value)
    except ValueError as exc:
        raise SignatureError("signature is not hex") from exc


def verify_order(
    order: OrderStruct, signature_hex: str, domain_separator: bytes, chain_id: int, wallet_signer: str | None = None
) -> str:
    """Check the order's signature; return its order hash (0x hex). Raises SignatureError.

    Types 0-2 sign the order's EIP-712 digest with the signer EOA (type 0 also needs signer == maker).
    Type 3 (POLY_1271): signer == maker == the deposit wallet, and the ERC-7739 nested signature must be
    by ``wallet_signer``, the owner/session key registered for that wallet.
    """
    struct_hash = order_struct_hash(order)
    order_hash = eip712_digest(domain_separator, struct_hash)
    signature = _hex_bytes(signature_hex)
    signer = order.signer.lower()
    if order.signature_type == SIG_POLY_1271:
        if signer != order.maker.lower():
            raise SignatureError("POLY_1271 orders need signer == maker (the deposit wallet)")
        if wallet_signer is None:
            raise SignatureError("no signer is registered for this deposit wallet")
        if len(signature) != 65 + _1271_TRAILER_LEN:
            raise SignatureError("POLY_1271 signature has the wrong length")
        app_separator = signature[65:97]
        contents_hash = signature[97:129]
        contents_type = signature[129:-2]
        if int.from_bytes(signature[-2:], "big") != len(contents_type) or contents_type != _ORDER_TYPE_BYTES:
            raise SignatureError("POLY_1271 signature names the wrong contents type")
        if app_separator != domain_separator or contents_hash != struct_hash:
            raise SignatureError("POLY_1271 signature is for another order or exchange")
        wallet_struct = keccak(
            TYPED_DATA_SIGN_TYPE_HASH
            + struct_hash
            + DEPOSIT_WALLET_NAME_HASH
            + DEPOSIT_WALLET_VERSION_HASH
            + _word(chain_id)
            + _address_word(order.maker)
            + b"\x00" * 32
        )
        if recover_address(eip712_digest(domain_separator, wallet_struct), signature[:65]) != wallet_signer.lower():
            raise SignatureError("POLY_1271 signature is not by the wallet's registered signer")
    elif order.signature_type in (SIG_EOA, SIG_POLY_PROXY, SIG_POLY_GNOSIS_SAFE):
        if order.signature_type == SIG_EOA and signer != order.maker.lower():
            raise SignatureError("EOA orders need signer == maker")
        if recover_address(order_hash, signature) != signer:
            raise SignatureError("signature does not match the order signer")
    else:
        raise SignatureError(f"unknown signature type {order.signature_type}")
    return "0x" + order_hash.hex()


def clob_auth_digest(address: str, timestamp: str, nonce: int, chain_id: int) -> bytes:
    domain = keccak(CLOB_AUTH_DOMAIN_TYPE_HASH + keccak(b"ClobAuthDomain") + keccak(b"1") + _word(chain_id))
    struct = keccak(
        CLOB_AUTH_TYPE_HASH
        + _address_word(address)
        + keccak(timestamp.encode())
        + _word(nonce)
        + keccak(CLOB_AUTH_MESSAGE.encode())
    )
    return eip712_digest(domain, struct)


def verify_clob_auth(address: str, signature_hex: str, timestamp: str, nonce: int, chain_id: int) -> None:
    """L1: the ClobAuth signature must recover to ``address``. Raises SignatureError."""
    digest = clob_auth_digest(address, timestamp, nonce, chain_id)
    if recover_address(digest, _hex_bytes(signature_hex)) != address.lower():
        raise SignatureError("L1 signature does not match POLY_ADDRESS")
