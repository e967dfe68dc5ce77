"""Follower credentials at rest: the signing key and CLOB API credentials, AES-256-GCM encrypted in Postgres.

Two records per ref, encrypted apart: the full secrets (signing key + API credentials, `follower_credentials`)
for the one process that signs orders, and the API credentials alone (`follower_api_credentials`) for readers
that only authenticate (decide's balance reads, lookups): least privilege, a reader never decrypts a key that
can sign (`CredentialStore.api_creds`, `ApiAccounts`). Each record gets a fresh random 12-byte nonce and is
bound to its ref (and its kind) as associated data, so a ciphertext copied under another ref, or from one table
to the other, does not decrypt. The key comes from `HORUS_CREDENTIALS_KEY` (base64 of 32 bytes;
`horus credentials generate-key`). Only the signer address is stored in clear. Nothing here logs, prints or
returns a secret except `CredentialStore.get` (to the caller that signs) and `api_creds` (to one that reads).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from horus.db.models import FollowerApiCredential, FollowerCredential
from horus.settings import Settings
from horus.venue.cache import SingleFlightCache
from horus.venue.polymarket.auth import ApiCreds
from horus.venue.polymarket.orders import OrderError, address_of

KEY_ENV = "HORUS_CREDENTIALS_KEY"
NONCE_BYTES = 12
SECRET_FIELDS = ("private_key", "api_key", "api_secret", "api_passphrase")
API_FIELDS = SECRET_FIELDS[1:]
API_RECORD = b"horus-api-credentials\x00"  # associated-data prefix: an API record is not a full one
_REF_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}")


class CredentialsError(ValueError):
    """A credentials problem; the message names the field or variable and never contains a secret."""


class CredentialsKeyError(CredentialsError):
    """HORUS_CREDENTIALS_KEY is missing, malformed, or not the key a record was encrypted with."""


class CredentialsNotFound(CredentialsError):
    pass


@dataclass(frozen=True)
class FollowerSecrets:
    """A follower's signer private key and L2 API credentials. repr/str show only the signer address."""

    private_key: str = field(repr=False)
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    api_passphrase: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in SECRET_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise CredentialsError(f"{name} must be a non-empty string")
        try:
            address_of(self.private_key)
        except OrderError:
            raise CredentialsError("private_key must be a 32-byte secp256k1 key in hex") from None
        try:
            base64.urlsafe_b64decode(self.api_secret)
        except (binascii.Error, ValueError):
            raise CredentialsError("api_secret must be url-safe base64 (as the venue issues it)") from None

    def __repr__(self) -> str:
        return f"FollowerSecrets(signer_address={self.signer_address!r}, secrets='***')"

    __str__ = __repr__

    @property
    def signer_address(self) -> str:
        return address_of(self.private_key)

    def api_creds(self) -> ApiCreds:
        return ApiCreds(api_key=self.api_key, secret=self.api_secret, passphrase=self.api_passphrase)

    @classmethod
    def from_json(cls, data: object) -> FollowerSecrets:
        """From `{"private_key", "api_key", "api_secret", "api_passphrase"}`; a missing field is named."""
        if not isinstance(data, dict):
            raise CredentialsError("credentials must be a JSON object with " + ", ".join(SECRET_FIELDS))
        missing = [name for name in SECRET_FIELDS if name not in data]
        if missing:
            raise CredentialsError(f"credentials are missing {', '.join(missing)}")
        return cls(**{name: data[name] for name in SECRET_FIELDS})

    def _plaintext(self) -> bytes:
        return json.dumps({name: getattr(self, name) for name in SECRET_FIELDS}, separators=(",", ":")).encode()


def generate_key() -> str:
    """A fresh random key for HORUS_CREDENTIALS_KEY (base64 of 32 bytes)."""
    return base64.b64encode(os.urandom(32)).decode()


def load_key(settings: Settings) -> bytes:
    secret = settings.credentials_key
    if secret is None or not secret.get_secret_value().strip():
        raise CredentialsKeyError(
            f"{KEY_ENV} is not set: it must be the base64 of a 32-byte key "
            "(make one with `horus credentials generate-key`)"
        )
    try:
        key = base64.b64decode(secret.get_secret_value().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CredentialsKeyError(f"{KEY_ENV} is not valid base64") from None
    if len(key) != 32:
        raise CredentialsKeyError(f"{KEY_ENV} must decode to 32 bytes (AES-256), got {len(key)}")
    return key


def key_id(key: bytes) -> str:
    """A short, one-way fingerprint of the key, stored with each record so a wrong key is named as such."""
    return hashlib.sha256(b"horus-credentials-key-id\x00" + key).hexdigest()[:16]


def _check_ref(ref: object) -> str:
    if not isinstance(ref, str) or not _REF_RE.fullmatch(ref):
        raise CredentialsError(
            f"ref must be 1-200 characters of letters, digits and ._:@/- "
            f"(starting with a letter or digit), got {ref!r:.80}"
        )
    return ref


@dataclass(frozen=True)
class StoredApiCreds:
    """A ref's API credentials and the signer EOA they authenticate (lowercase). repr never shows a secret."""

    signer_address: str
    creds: ApiCreds


class CredentialStore:
    """Encrypted follower credentials in Postgres: `follower_credentials` (signing key + API credentials) and
    `follower_api_credentials` (API credentials alone)."""

    def __init__(self, settings: Settings):
        key = load_key(settings)
        self._aead = AESGCM(key)
        self._key_id = key_id(key)
        self._settings = settings

    def __repr__(self) -> str:
        return f"CredentialStore(key_id={self._key_id!r})"

    def _engine(self):
        from horus.db.engine import make_engine

        return make_engine(self._settings)

    def _upsert(self, table, ref: str, signer: str, plaintext: bytes, associated: bytes):
        nonce = os.urandom(NONCE_BYTES)  # random per record: never reuse a (key, nonce) pair
        row = {
            "ref": ref,
            "signer_address": signer.lower(),
            "key_id": self._key_id,
            "nonce": nonce,
            "ciphertext": self._aead.encrypt(nonce, plaintext, associated),
        }
        statement = insert(table).values(**row)
        return statement.on_conflict_do_update(
            index_elements=[table.ref],
            set_={**{k: statement.excluded[k] for k in row if k != "ref"}, "updated_at": func.now()},
        )

    def put(self, ref: str, secrets: FollowerSecrets, api_creds: ApiCreds | None = None) -> str:
        """Store (or replace) the credentials under `ref`, and their API-credentials record (`api_creds`, by
        default the secrets' own), in one transaction; returns the signer address."""
        _check_ref(ref)
        if not isinstance(secrets, FollowerSecrets):
            raise CredentialsError(f"secrets must be FollowerSecrets, got {type(secrets).__name__}")
        signer = secrets.signer_address
        with self._engine().begin() as connection:
            connection.execute(self._upsert(FollowerCredential, ref, signer, secrets._plaintext(), ref.encode()))
            connection.execute(self._api_upsert(ref, api_creds or secrets.api_creds(), signer))
        return signer

    def _api_upsert(self, ref: str, creds: ApiCreds, signer: str):
        if not isinstance(creds, ApiCreds) or not all((creds.api_key, creds.secret, creds.passphrase)):
            raise CredentialsError("API credentials must have a key, a secret and a passphrase")
        plaintext = json.dumps(
            dict(zip(API_FIELDS, (creds.api_key, creds.secret, creds.passphrase))), separators=(",", ":")
        ).encode()
        return self._upsert(FollowerApiCredential, ref, signer, plaintext, API_RECORD + ref.encode())

    def put_api_creds(self, ref: str, creds: ApiCreds, signer_address: str) -> None:
        """Store (or replace) only the API-credentials record of `ref` (e.g. credentials derived again)."""
        _check_ref(ref)
        with self._engine().begin() as connection:
            connection.execute(self._api_upsert(ref, creds, signer_address))

    def _decrypt(self, table, ref: str, associated: bytes, what: str) -> tuple[str, bytes]:
        with self._engine().connect() as connection:
            row = connection.execute(
                select(table.signer_address, table.key_id, table.nonce, table.ciphertext).where(table.ref == ref)
            ).first()
        if row is None:
            raise CredentialsNotFound(f"no {what} stored under ref {ref!r}")
        if row.key_id != self._key_id:
            raise CredentialsKeyError(
                f"{what} {ref!r} were encrypted with a different {KEY_ENV} "
                f"(key id {row.key_id}, current key id {self._key_id})"
            )
        try:
            return row.signer_address, self._aead.decrypt(bytes(row.nonce), bytes(row.ciphertext), associated)
        except InvalidTag:
            raise CredentialsError(
                f"{what} {ref!r} do not decrypt: the record was altered or moved from another ref"
            ) from None

    def get(self, ref: str) -> FollowerSecrets:
        """The full secrets, signing key included: for the process that signs orders, and nothing else."""
        _check_ref(ref)
        _, plaintext = self._decrypt(FollowerCredential, ref, ref.encode(), "credentials")
        return FollowerSecrets.from_json(json.loads(plaintext))

    def api_creds(self, ref: str) -> StoredApiCreds:
        """The API credentials of `ref` and the signer they authenticate, from their own record: the signing
        key is never read, let alone decrypted. CredentialsNotFound (saying how to make the record) if the
        credentials were stored before API records existed."""
        _check_ref(ref)
        try:
            signer, plaintext = self._decrypt(FollowerApiCredential, ref, API_RECORD + ref.encode(), "API credentials")
        except CredentialsNotFound as exc:
            raise CredentialsNotFound(
                f"{exc} (store the credentials again with `horus credentials put`, or run `horus credentials sync-api`)"
            ) from None
        data = json.loads(plaintext)
        return StoredApiCreds(
            signer, ApiCreds(api_key=data["api_key"], secret=data["api_secret"], passphrase=data["api_passphrase"])
        )

    def refs(self) -> list[str]:
        """Every ref with stored (full) credentials."""
        with self._engine().connect() as connection:
            return list(connection.execute(select(FollowerCredential.ref).order_by(FollowerCredential.ref)).scalars())

    def signer_address(self, ref: str) -> str | None:
        """The signer address stored in clear for `ref` (no decryption), or None."""
        _check_ref(ref)
        with self._engine().connect() as connection:
            return connection.execute(
                select(FollowerCredential.signer_address).where(FollowerCredential.ref == ref)
            ).scalar()

    def delete(self, ref: str) -> bool:
        """Remove both records of `ref`; True if there were any."""
        _check_ref(ref)
        with self._engine().begin() as connection:
            full = connection.execute(delete(FollowerCredential).where(FollowerCredential.ref == ref))
            api = connection.execute(delete(FollowerApiCredential).where(FollowerApiCredential.ref == ref))
        return full.rowcount + api.rowcount > 0


class ApiAccountError(Exception):
    """A follower's API credentials cannot be resolved (the message names the follower and ref, never a secret)."""


@dataclass(frozen=True)
class ApiAccount:
    """What a reader needs to authenticate as a follower: no signing key."""

    follower: str  # trading address (funder), lowercase
    signer: str  # the EOA the API credentials belong to, lowercase
    signature_type: int
    creds: ApiCreds = field(repr=False)


class ApiAccounts:
    """API credentials per follower for processes that read with them and never sign (decide's balances): the
    follower's config names the ref, the store's API record gives the credentials (`CredentialStore.api_creds`).
    One resolution in flight per follower, cached `ttl_s`; failures are not cached."""

    def __init__(self, follower_account: Callable[[str], Any], store: CredentialStore | None, ttl_s: float = 300.0):
        self.follower_account, self.store = follower_account, store
        self._cache = SingleFlightCache(self._load, ttl_s, name="api accounts", keep_last_on_error=False)

    async def get(self, follower: str) -> ApiAccount:
        # keep_last_on_error=False: a failed load raises, so the cache never answers None
        return cast(ApiAccount, await self._cache.get(follower.lower()))

    def forget(self, follower: str) -> None:
        self._cache.forget(follower.lower())

    async def _load(self, follower: str) -> ApiAccount:
        config = self.follower_account(follower)
        if config is None:
            raise ApiAccountError(f"follower {follower} has no account configured (FollowerConfig)")
        if getattr(config, "custody", "direct") != "direct":
            raise ApiAccountError(f"follower {follower}: custody {config.custody!r} holds no venue account")
        ref = getattr(config, "credentials_ref", None)
        if not ref:
            raise ApiAccountError(f"follower {follower} has no credentials_ref")
        if self.store is None:
            raise ApiAccountError("no credential store is configured (HORUS_CREDENTIALS_KEY)")
        try:
            stored = await asyncio.to_thread(self.store.api_creds, ref)
        except CredentialsError as exc:  # its messages never hold a secret
            raise ApiAccountError(f"follower {follower}: API credentials {ref!r} unavailable: {exc}") from None
        signer = (getattr(config, "signer", None) or config.follower).lower()
        if stored.signer_address != signer:
            raise ApiAccountError(
                f"follower {follower}: API credentials {ref!r} are those of "
                f"{stored.signer_address}, not of the configured signer {signer}"
            )
        return ApiAccount(
            follower=config.follower.lower(),
            signer=signer,
            signature_type=int(config.signature_type),
            creds=stored.creds,
        )
