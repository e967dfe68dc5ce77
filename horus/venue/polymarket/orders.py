"""CLOB V2 orders: fields, EIP-712 hash and signature (types 0-3), the POST /order body, and orders built from intents.

Facts from the platform notes (sections 3.1-3.4, 3.7): the `Order` struct and its domain ("Polymarket CTF Exchange",
version "2" for the CTF exchanges, "3" for ExchangeV3), POLY_1271's ERC-7739 nested typed data, and the amount math.

Fast path: every field of `Order` is a static 32-byte word, so the struct hash is keccak over 12 packed words; the
type hashes and each domain's separator are computed once. The digest is signed with libsecp256k1 (coincurve),
RFC-6979 deterministic, so the same fields and key always give the same bytes: sign once, re-send those bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache
from typing import Any

from eth_utils import keccak, to_checksum_address

from horus.domain.amounts import AmountError, json_decimal

try:
    import coincurve
except ImportError as exc:  # pragma: no cover - coincurve is a hard dependency
    raise ImportError(
        "horus order signing needs `coincurve` (libsecp256k1): without it signing is ~13x slower. "
        "Install it with `pip install coincurve`."
    ) from exc


class OrderError(ValueError):
    """An order (or the intent it is built from) is invalid; the message names the field."""


# --- EIP-712 constants ------------------------------------------------------------------------------------------
EXCHANGE_DOMAIN_NAME = "Polymarket CTF Exchange"
ORDER_TYPE_STRING = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
    "bytes32 builder)"
)
DOMAIN_TYPE_STRING = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
# ERC-7739 (Solady) nested typed data for POLY_1271: the wallet signs TypedDataSign wrapping the Order
TYPED_DATA_SIGN_TYPE_STRING = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING
)

ORDER_TYPE_HASH = keccak(text=ORDER_TYPE_STRING)
DOMAIN_TYPE_HASH = keccak(text=DOMAIN_TYPE_STRING)
TYPED_DATA_SIGN_TYPE_HASH = keccak(text=TYPED_DATA_SIGN_TYPE_STRING)
_EXCHANGE_NAME_HASH = keccak(text=EXCHANGE_DOMAIN_NAME)
_DEPOSIT_WALLET_NAME_HASH = keccak(text="DepositWallet")
_DEPOSIT_WALLET_VERSION_HASH = keccak(text="1")
_ZERO_WORD = bytes(32)
# the trailer after the 65-byte ECDSA signature: ... || contents type string || uint16(len)
_ORDER_TYPE_TRAILER = ORDER_TYPE_STRING.encode() + len(ORDER_TYPE_STRING).to_bytes(2, "big")

BUY, SELL = 0, 1
SIDE_NAMES = {BUY: "BUY", SELL: "SELL"}
EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271 = 0, 1, 2, 3
SIGNATURE_TYPES = (EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271)
DOMAIN_VERSIONS = ("2", "3")
ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")
MARKETABLE_ORDER_TYPES = ("FOK", "FAK")
BYTES32_ZERO = "0x" + "00" * 32
_UINT256_MAX = 2**256 - 1
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_BYTES32_RE = re.compile(r"0x[0-9a-fA-F]{64}")

# Exchange contracts by chain (notes 3.1, 4.1; Amoy from py-clob-client-v2's contract config)
_EXCHANGES: dict[int, dict[str, str]] = {
    137: {
        "ctf": "0xE111180000d2663C0091e4f400237545B87B996B",
        "neg_risk": "0xe2222d279d744050d28e00520010520000310F59",
        "v3": "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
    },
    80002: {
        "ctf": "0xE111180000d2663C0091e4f400237545B87B996B",
        "neg_risk": "0xe2222d279d744050d28e00520010520000310F59",
        "v3": "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
    },
}

# tick -> decimals of (price, size, amount), notes 3.4
ROUNDING: dict[Decimal, tuple[int, int, int]] = {
    Decimal("0.1"): (1, 2, 3),
    Decimal("0.01"): (2, 2, 4),
    Decimal("0.005"): (3, 2, 5),
    Decimal("0.0025"): (4, 2, 6),
    Decimal("0.001"): (3, 2, 5),
    Decimal("0.0001"): (4, 2, 6),
}


# --- data -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Domain:
    exchange: str
    chain_id: int
    version: str  # "2" (CTF exchanges) | "3" (ExchangeV3)

    def __post_init__(self) -> None:
        _check_address("domain.exchange", self.exchange)
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int) or self.chain_id <= 0:
            raise OrderError(f"domain.chain_id must be a positive int, got {self.chain_id!r}")
        if self.version not in DOMAIN_VERSIONS:
            raise OrderError(f"domain.version must be one of {DOMAIN_VERSIONS}, got {self.version!r}")

    @property
    def separator(self) -> bytes:
        return _domain_separator(self)


@dataclass(frozen=True)
class OrderFields:
    salt: int
    maker: str
    signer: str
    token_id: int
    maker_amount: int
    taker_amount: int
    side: int  # 0 BUY, 1 SELL
    signature_type: int
    timestamp_ms: int
    metadata: str  # 0x + 64 hex
    builder: str  # 0x + 64 hex

    def __post_init__(self) -> None:
        for name in ("salt", "token_id", "maker_amount", "taker_amount", "timestamp_ms"):
            _check_uint(name, getattr(self, name))
        _check_address("maker", self.maker)
        _check_address("signer", self.signer)
        if self.side not in SIDE_NAMES or isinstance(self.side, bool):
            raise OrderError(f"side must be 0 (BUY) or 1 (SELL), got {self.side!r}")
        if self.signature_type not in SIGNATURE_TYPES or isinstance(self.signature_type, bool):
            raise OrderError(f"signature_type must be one of {SIGNATURE_TYPES}, got {self.signature_type!r}")
        _check_bytes32("metadata", self.metadata)
        _check_bytes32("builder", self.builder)


@dataclass(frozen=True)
class SignedOrder:
    fields: OrderFields
    domain: Domain
    order_hash: str  # 0x lowercase hex: the venue's order id
    signature: str  # 0x hex


@lru_cache(maxsize=65536)
def checksum(address: str) -> str:
    """EIP-55 form (cached: it costs a keccak, and a follower's addresses repeat on every order)."""
    return to_checksum_address(address)


def _check_uint(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT256_MAX:
        raise OrderError(f"{name} must be an int in [0, 2^256), got {value!r}")


def _check_address(name: str, value: object) -> None:
    if not isinstance(value, str) or not _ADDRESS_RE.fullmatch(value):
        raise OrderError(f"{name} must be a 0x-prefixed 20-byte hex address, got {value!r}")


def _check_bytes32(name: str, value: object) -> None:
    if not isinstance(value, str) or not _BYTES32_RE.fullmatch(value):
        raise OrderError(f"{name} must be 0x followed by 64 hex digits (bytes32), got {value!r}")


# --- exchange choice ----------------------------------------------------------------------------------------------
def exchange_for(market_version: str, neg_risk: bool, chain_id: int = 137) -> Domain:
    """The exchange and EIP-712 domain for a market: Protocol-V2 markets ("v2") trade on ExchangeV3 (domain "3",
    neg-risk or not); CTF markets ("v1") on the CTF exchange V2 or its neg-risk twin (domain "2")."""
    book = _EXCHANGES.get(chain_id)
    if book is None:
        raise OrderError(
            f"chain_id {chain_id} has no known exchanges (known: {sorted(_EXCHANGES)}); "
            "build a Domain(exchange, chain_id, version) yourself for local contracts"
        )
    version = str(market_version).strip().lower()
    if version in ("v2", "2"):
        return Domain(book["v3"], chain_id, "3")
    if version in ("v1", "1", ""):
        return Domain(book["neg_risk" if neg_risk else "ctf"], chain_id, "2")
    raise OrderError(f"market_version must be 'v1' (CTF) or 'v2' (Protocol V2), got {market_version!r}")


# --- hashing ------------------------------------------------------------------------------------------------------
def _word_address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


@lru_cache(maxsize=256)
def _domain_separator(domain: Domain) -> bytes:
    return keccak(
        DOMAIN_TYPE_HASH
        + _EXCHANGE_NAME_HASH
        + keccak(text=domain.version)
        + domain.chain_id.to_bytes(32, "big")
        + _word_address(domain.exchange)
    )


def struct_hash(fields: OrderFields) -> bytes:
    """hashStruct(Order): every member is a static type, so abi.encode is 12 words side by side."""
    return keccak(
        b"".join(
            (
                ORDER_TYPE_HASH,
                fields.salt.to_bytes(32, "big"),
                _word_address(fields.maker),
                _word_address(fields.signer),
                fields.token_id.to_bytes(32, "big"),
                fields.maker_amount.to_bytes(32, "big"),
                fields.taker_amount.to_bytes(32, "big"),
                fields.side.to_bytes(32, "big"),
                fields.signature_type.to_bytes(32, "big"),
                fields.timestamp_ms.to_bytes(32, "big"),
                bytes.fromhex(fields.metadata[2:]),
                bytes.fromhex(fields.builder[2:]),
            )
        )
    )


def _order_digest(contents_hash: bytes, domain: Domain) -> bytes:
    return keccak(b"\x19\x01" + _domain_separator(domain) + contents_hash)


def order_hash(fields: OrderFields, domain: Domain) -> str:
    """The EIP-712 hash of the order (its id at the venue and on-chain), 0x lowercase hex. The same for every
    signature type: POLY_1271 nests the order only in what the wallet signs, not in the order's identity."""
    return "0x" + _order_digest(struct_hash(fields), domain).hex()


# --- signing ------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def signing_key(private_key: bytes) -> tuple[coincurve.PrivateKey, str]:
    """The libsecp256k1 key and its address (cached: deriving the public key costs as much as a signature)."""
    key = coincurve.PrivateKey(private_key)
    address = "0x" + keccak(key.public_key.format(compressed=False)[1:])[-20:].hex()
    return key, address


def private_key_bytes(private_key: bytes | str) -> bytes:
    """A 32-byte secp256k1 key from bytes or (0x-)hex. Errors never echo the key."""
    if isinstance(private_key, str):
        text = private_key.strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise OrderError("private_key is not hex") from None
    elif isinstance(private_key, (bytes, bytearray, memoryview)):
        raw = bytes(private_key)
    else:
        raise OrderError(f"private_key must be bytes or a hex string, got {type(private_key).__name__}")
    if len(raw) != 32:
        raise OrderError(f"private_key must be 32 bytes, got {len(raw)}")
    return raw


def address_of(private_key: bytes | str) -> str:
    """The checksummed address of a private key."""
    try:
        return checksum(signing_key(private_key_bytes(private_key))[1])
    except ValueError as exc:  # coincurve: zero or >= curve order
        raise OrderError("private_key is not a valid secp256k1 key") from exc


def ecdsa_sign(key: coincurve.PrivateKey, digest: bytes) -> bytes:
    """r || s || v with v in {27, 28}, as Ethereum expects (libsecp256k1 gives low-s, recid 0/1)."""
    raw = key.sign_recoverable(digest, hasher=None)
    return raw[:64] + bytes((raw[64] + 27,))


def sign_order(fields: OrderFields, domain: Domain, private_key: bytes | str) -> SignedOrder:
    """Sign an order. Types 0-2: the key's address must be `signer`. Type 3 (POLY_1271): `signer` = `maker` = the
    deposit wallet and the key is its owner's or an authorised session EOA's; the wallet verifies an ERC-7739
    TypedDataSign over the order, so the signature carries the app domain separator, the contents hash and the
    Order type string after the 65-byte ECDSA part."""
    try:
        key, key_address = signing_key(private_key_bytes(private_key))
    except ValueError as exc:
        if isinstance(exc, OrderError):
            raise
        raise OrderError("private_key is not a valid secp256k1 key") from exc
    contents = struct_hash(fields)
    digest = _order_digest(contents, domain)
    if fields.signature_type == POLY_1271:
        if fields.signer.lower() != fields.maker.lower():
            raise OrderError("signer must equal maker (the deposit wallet) for signature_type 3 (POLY_1271)")
        wallet_struct = keccak(
            b"".join(
                (
                    TYPED_DATA_SIGN_TYPE_HASH,
                    contents,
                    _DEPOSIT_WALLET_NAME_HASH,
                    _DEPOSIT_WALLET_VERSION_HASH,
                    domain.chain_id.to_bytes(32, "big"),
                    _word_address(fields.signer),
                    _ZERO_WORD,
                )
            )
        )
        separator = _domain_separator(domain)
        wallet_digest = keccak(b"\x19\x01" + separator + wallet_struct)
        signature = ecdsa_sign(key, wallet_digest) + separator + contents + _ORDER_TYPE_TRAILER
    else:
        if fields.signer.lower() != key_address:
            raise OrderError(
                f"signer {fields.signer} is not the address of the signing key "
                f"(signature_type {fields.signature_type} is signed by the signer EOA itself)"
            )
        signature = ecdsa_sign(key, digest)
    return SignedOrder(fields, domain, "0x" + digest.hex(), "0x" + signature.hex())


# --- the wire body ------------------------------------------------------------------------------------------------
def order_body(
    signed: SignedOrder,
    *,
    owner: str,
    order_type: str,
    expiration: int = 0,
    post_only: bool = False,
    defer_exec: bool = False,
) -> dict[str, Any]:
    """The JSON object for POST /order, in the shape and key order py-clob-client-v2 sends (notes 3.3).
    `expiration` travels in the body but is not signed (GTD only)."""
    if order_type not in ORDER_TYPES:
        raise OrderError(f"order_type must be one of {ORDER_TYPES}, got {order_type!r}")
    if post_only and order_type in MARKETABLE_ORDER_TYPES:
        raise OrderError(f"post_only is not allowed with order_type {order_type}")
    if isinstance(expiration, bool) or not isinstance(expiration, int) or expiration < 0:
        raise OrderError(f"expiration must be a non-negative int (unix seconds), got {expiration!r}")
    if expiration and order_type != "GTD":
        raise OrderError(f"expiration is only for GTD orders, got order_type {order_type}")
    if not isinstance(owner, str) or not owner:
        raise OrderError("owner (the L2 API key) must be a non-empty string")
    f = signed.fields
    return {
        "order": {
            "salt": f.salt,
            "maker": checksum(f.maker),
            "signer": checksum(f.signer),
            "tokenId": str(f.token_id),
            "makerAmount": str(f.maker_amount),
            "takerAmount": str(f.taker_amount),
            "side": SIDE_NAMES[f.side],
            "expiration": str(expiration),
            "signatureType": f.signature_type,
            "timestamp": str(f.timestamp_ms),
            "metadata": f.metadata,
            "builder": f.builder,
            "signature": signed.signature,
        },
        "owner": owner,
        "orderType": order_type,
        "deferExec": defer_exec,
        "postOnly": post_only,
    }


#: the fields a wire-shaped order object must carry (py-clob-client-v2's names): `horus orders sign` reads one
WIRE_ORDER_FIELDS = (
    "salt",
    "maker",
    "signer",
    "tokenId",
    "makerAmount",
    "takerAmount",
    "side",
    "signatureType",
    "timestamp",
)


def _wire_uint(name: str, value: object) -> int:
    # JSON numbers or decimal strings (the wire form); never floats, which would lose digits
    if isinstance(value, (bool, float)):
        raise ValueError(f"{name} must be an integer or a decimal string, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"{name} must be an integer or a decimal string, got {value!r}")


def _wire_side(value: object) -> int:
    if isinstance(value, str) and value.upper() in ("BUY", "SELL"):
        return 0 if value.upper() == "BUY" else 1
    if value in (0, 1) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f'side must be "BUY", "SELL", 0 or 1, got {value!r}')


def order_fields_from_wire(data: object) -> OrderFields:
    """OrderFields from a wire-shaped order object (py-clob-client-v2's field names); ValueError naming the field."""
    if not isinstance(data, dict):
        raise ValueError("input must be one JSON object with the order fields " + ", ".join(WIRE_ORDER_FIELDS))
    missing = [name for name in WIRE_ORDER_FIELDS if name not in data]
    if missing:
        raise ValueError(f"order is missing {', '.join(missing)}")
    return OrderFields(
        salt=_wire_uint("salt", data["salt"]),
        maker=data["maker"],
        signer=data["signer"],
        token_id=_wire_uint("tokenId", data["tokenId"]),
        maker_amount=_wire_uint("makerAmount", data["makerAmount"]),
        taker_amount=_wire_uint("takerAmount", data["takerAmount"]),
        side=_wire_side(data["side"]),
        signature_type=_wire_uint("signatureType", data["signatureType"]),
        timestamp_ms=_wire_uint("timestamp", data["timestamp"]),
        metadata=data.get("metadata") or BYTES32_ZERO,
        builder=data.get("builder") or BYTES32_ZERO,
    )


def stored_order(body: Mapping[str, Any], signed: SignedOrder, domain: Domain) -> dict[str, Any]:
    """What the ledger keeps of a signed order: the order object of its POST body, its hash and its EIP-712
    domain, so a row can be re-sent and looked up byte for byte after any crash."""
    return {
        **body["order"],
        "orderHash": signed.order_hash,
        "domain": {"exchange": domain.exchange, "chainId": domain.chain_id, "version": domain.version},
    }


def stored_amounts(stored: Mapping[str, Any] | None) -> tuple[int, int]:
    """(maker amount, taker amount) of a stored signed order (0, 0 when there is none)."""
    order = stored or {}
    return int(order.get("makerAmount", 0)), int(order.get("takerAmount", 0))


# --- orders from intents ------------------------------------------------------------------------------------------
def intent_metadata(intent_id: str) -> str:
    """The signed `metadata` word of an intent's order: sha256(intent id), so any venue order or on-chain fill
    can be traced back to the intent that made it."""
    if not isinstance(intent_id, str) or not intent_id:
        raise OrderError("intent_id must be a non-empty string")
    return "0x" + hashlib.sha256(intent_id.encode()).hexdigest()


def intent_salt(intent_id: str) -> int:
    """The order salt of an intent: the first 53 bits of sha256(intent id) (53 bits: JS clients read it exactly)."""
    if not isinstance(intent_id, str) or not intent_id:
        raise OrderError("intent_id must be a non-empty string")
    return int.from_bytes(hashlib.sha256(intent_id.encode()).digest()[:8], "big") >> 11


def _decimal(name: str, value: object) -> Decimal:
    """The engine's one decimal parser (json_decimal), except that a float is refused where json_decimal reads its
    repr: a price reaches an order from decide as a Decimal or a string, so a float here was computed in binary
    somewhere on the way, and the signed amounts would carry its error."""
    if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int, str)):
        raise OrderError(f"{name} must be a Decimal (or decimal string), got {value!r}")
    try:
        return json_decimal(value)
    except AmountError as exc:
        raise OrderError(f"{name} {exc}") from None


def order_amounts(side: int, size_e6: int, price: Decimal, tick_size: Decimal, order_type: str) -> tuple[int, int]:
    """(maker_amount, taker_amount) in 6-decimal units for `size_e6` shares at `price` (notes 3.4).

    Shares are rounded down to 2 decimals. Limit amounts are exact: shares (2 dp) x price (<= 4 dp) fit in 6 dp.
    A marketable (FOK/FAK) BUY must carry a maker amount of at most 2 decimals and a taker amount of at most 4:
    the spend is rounded down to the cent and the shares become spend / price rounded down to 4 dp, as the
    reference client does for market buys (spend never exceeds shares x price)."""
    price_dp, size_dp, _amount_dp = ROUNDING[tick_size]
    shares_e6 = size_e6 - size_e6 % 10 ** (6 - size_dp)
    if shares_e6 <= 0:
        raise OrderError(f"size_e6 {size_e6} is below 0.01 shares: nothing left after rounding down to 2 decimals")
    price_units = int(price.scaleb(price_dp))  # price in units of 10^-price_dp (exact: checked on tick)
    collateral_e6 = shares_e6 * price_units // 10**price_dp  # exact: 2 + <=4 decimals <= 6
    if side == SELL:
        return shares_e6, collateral_e6
    if order_type not in MARKETABLE_ORDER_TYPES:
        return collateral_e6, shares_e6
    spend_e6 = collateral_e6 - collateral_e6 % 10**4  # to the cent
    if spend_e6 <= 0:
        raise OrderError(f"size_e6 {size_e6} at price {price} spends less than one cent: nothing to buy")
    shares_4dp = spend_e6 * 10**price_dp // price_units  # in 1e-6 units before trimming to 4 dp
    shares_4dp -= shares_4dp % 100
    return spend_e6, shares_4dp


def order_for_intent(
    intent_id: str,
    *,
    token_id: str,
    side: str,
    size_e6: int,
    worst_price: Decimal,
    tick_size: Decimal,
    order_type: str,
    maker: str,
    signer: str,
    signature_type: int,
    builder: str,
    timestamp_ms: int,
) -> OrderFields:
    """The order for an intent, every field a pure function of the arguments: the same intent always yields the
    byte-identical order (and so the same hash and signature). `size_e6` is in shares; `worst_price` is the limit."""
    salt = intent_salt(intent_id)
    metadata = intent_metadata(intent_id)
    side_name = side.upper() if isinstance(side, str) else side
    if side_name not in ("BUY", "SELL"):
        raise OrderError(f"side must be 'BUY' or 'SELL', got {side!r}")
    side_value = BUY if side_name == "BUY" else SELL
    if order_type not in ORDER_TYPES:
        raise OrderError(f"order_type must be one of {ORDER_TYPES}, got {order_type!r}")
    tick = _decimal("tick_size", tick_size)
    if tick not in ROUNDING:
        raise OrderError(f"tick_size must be one of {sorted(str(t) for t in ROUNDING)}, got {tick_size!r}")
    price = _decimal("worst_price", worst_price)
    if price % tick != 0:
        raise OrderError(f"worst_price {price} is not on the tick grid {tick}")
    if not tick <= price <= 1 - tick:
        raise OrderError(f"worst_price {price} is outside [{tick}, {1 - tick}] for tick {tick}")
    if isinstance(size_e6, bool) or not isinstance(size_e6, int) or size_e6 <= 0:
        raise OrderError(f"size_e6 must be a positive int (shares x 1e6), got {size_e6!r}")
    if not isinstance(token_id, (str, int)) or isinstance(token_id, bool) or not str(token_id).isdigit():
        raise OrderError(f"token_id must be a decimal integer string, got {token_id!r}")
    token = int(token_id)
    for name, value in (("maker", maker), ("signer", signer)):
        _check_address(name, value)
    if signature_type not in SIGNATURE_TYPES or isinstance(signature_type, bool):
        raise OrderError(f"signature_type must be one of {SIGNATURE_TYPES}, got {signature_type!r}")
    if signature_type == EOA and maker.lower() != signer.lower():
        raise OrderError("maker must equal signer for signature_type 0 (EOA)")
    if signature_type == POLY_1271 and maker.lower() != signer.lower():
        raise OrderError("signer must equal maker (the deposit wallet) for signature_type 3 (POLY_1271)")
    _check_bytes32("builder", builder)
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms <= 0:
        raise OrderError(f"timestamp_ms must be a positive int (unix ms), got {timestamp_ms!r}")
    maker_amount, taker_amount = order_amounts(side_value, size_e6, price.quantize(tick, ROUND_DOWN), tick, order_type)
    if maker_amount <= 0 or taker_amount <= 0:
        raise OrderError(f"size_e6 {size_e6} at price {price} rounds to a zero amount")
    return OrderFields(
        salt=salt,
        maker=checksum(maker),
        signer=checksum(signer),
        token_id=token,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        side=side_value,
        signature_type=signature_type,
        timestamp_ms=timestamp_ms,
        metadata=metadata,
        builder=builder.lower(),
    )
