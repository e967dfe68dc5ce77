"""API keys: L1 (ClobAuth signature) to create/derive them, L2 (HMAC headers) on every trading call, and the
registry of the keys the venue has issued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from horus.venue.simulator.clob.rejections import Rejected
from horus.venue.simulator.clob.signatures import SignatureError, verify_clob_auth

UNAUTHORIZED = "Unauthorized/Invalid api key"
INVALID_L1 = "Invalid L1 Request headers"


class AuthError(Exception):
    """Answered 401 with the venue's wording."""

    def __init__(self, message: str = UNAUTHORIZED):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key: str
    secret: str
    passphrase: str
    address: str  # lowercase signer EOA
    nonce: int

    def __repr__(self) -> str:  # never print the secret or passphrase
        return f"ApiKey(api_key={self.api_key!r}, address={self.address!r}, nonce={self.nonce})"

    def public(self) -> dict:
        return {"apiKey": self.api_key, "secret": self.secret, "passphrase": self.passphrase}


def derive_key(server_seed: bytes, address: str, nonce: int) -> ApiKey:
    """Deterministic creds per (address, nonce): the same L1 proof always yields the same key."""
    material = hmac.new(server_seed, f"{address.lower()}:{nonce}".encode(), hashlib.sha512).digest()
    return ApiKey(
        api_key=str(uuid.UUID(bytes=material[:16], version=4)),
        secret=base64.urlsafe_b64encode(material[16:48]).decode(),
        passphrase=material[48:64].hex(),
        address=address.lower(),
        nonce=nonce,
    )


class ApiKeys(Mapping[str, ApiKey]):
    """The keys issued so far, by api key; each is `derive_key` of the server seed, so the same L1 proof
    always yields the same key."""

    def __init__(self, server_seed: bytes):
        self._server_seed = server_seed
        self._by_id: dict[str, ApiKey] = {}

    def __getitem__(self, api_key: str) -> ApiKey:
        return self._by_id[api_key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def create(self, address: str, nonce: int) -> ApiKey:
        """POST /auth/api-key: refused when this (address, nonce) already has its key."""
        key = derive_key(self._server_seed, address, nonce)
        if key.api_key in self._by_id:
            raise Rejected("Could not create api key")
        self._by_id[key.api_key] = key
        return key

    def derive(self, address: str, nonce: int) -> ApiKey:
        """GET /auth/derive-api-key: the key of (address, nonce), issued now if it was not yet."""
        key = derive_key(self._server_seed, address, nonce)
        self._by_id[key.api_key] = key
        return key

    def revoke(self, api_key: str) -> None:
        self._by_id.pop(api_key, None)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) or headers.get(name.lower()) or headers.get(name.replace("_", "-").lower())


def check_l1(headers: Mapping[str, str], chain_id: int) -> tuple[str, int]:
    """Verify POLY_ADDRESS / POLY_SIGNATURE / POLY_TIMESTAMP / POLY_NONCE; return (address, nonce)."""
    address = _header(headers, "POLY_ADDRESS")
    signature = _header(headers, "POLY_SIGNATURE")
    timestamp = _header(headers, "POLY_TIMESTAMP")
    nonce_text = _header(headers, "POLY_NONCE") or "0"
    if not (address and signature and timestamp) or not nonce_text.isdigit():
        raise AuthError(INVALID_L1)
    try:
        verify_clob_auth(address, signature, timestamp, int(nonce_text), chain_id)
    except (SignatureError, ValueError) as exc:
        raise AuthError(INVALID_L1) from exc
    return address.lower(), int(nonce_text)


def hmac_signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    message = f"{timestamp}{method}{path}"
    if body:
        message += body.replace("'", '"')  # as py-clob-client-v2 builds the signed string
    digest = hmac.new(base64.urlsafe_b64decode(secret), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def check_l2(headers: Mapping[str, str], keys: Mapping[str, ApiKey], method: str, path: str, body: str) -> ApiKey:
    """Verify the five L2 headers against a known key; the HMAC covers ts + METHOD + path + body."""
    api_key = _header(headers, "POLY_API_KEY")
    record = keys.get(api_key or "")
    if record is None:
        raise AuthError()
    address = _header(headers, "POLY_ADDRESS") or ""
    passphrase = _header(headers, "POLY_PASSPHRASE") or ""
    timestamp = _header(headers, "POLY_TIMESTAMP") or ""
    signature = _header(headers, "POLY_SIGNATURE") or ""
    if address.lower() != record.address or not hmac.compare_digest(passphrase, record.passphrase):
        raise AuthError()
    try:
        expected = hmac_signature(record.secret, timestamp, method, path, body)
    except (ValueError, TypeError) as exc:
        raise AuthError() from exc
    if not timestamp or not hmac.compare_digest(signature, expected):
        raise AuthError()
    return record
