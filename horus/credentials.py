"""Follower credentials at rest: the signing key and CLOB API credentials, AES-256-GCM encrypted in Postgres.

Each record gets a fresh random 12-byte nonce and is bound to its ref as associated data, so a ciphertext
copied under another ref does not decrypt. The key comes from `HORUS_CREDENTIALS_KEY` (base64 of 32 bytes;
`horus credentials generate-key`). Only the signer address is stored in clear. Nothing here logs, prints or
returns a secret except `CredentialStore.get`, to the caller that signs with it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from horus.db.models import FollowerCredential
from horus.settings import Settings
from horus.venue.polymarket.auth import ApiCreds
from horus.venue.polymarket.orders import OrderError, address_of

KEY_ENV = "HORUS_CREDENTIALS_KEY"
NONCE_BYTES = 12
SECRET_FIELDS = ("private_key", "api_key", "api_secret", "api_passphrase")
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
        raise CredentialsKeyError(f"{KEY_ENV} is not set: it must be the base64 of a 32-byte key "
                                  "(make one with `horus credentials generate-key`)")
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
        raise CredentialsError(f"ref must be 1-200 characters of letters, digits and ._:@/- "
                               f"(starting with a letter or digit), got {ref!r:.80}")
    return ref


class CredentialStore:
    """Encrypted follower credentials in Postgres table `follower_credentials`."""

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

    def put(self, ref: str, secrets: FollowerSecrets) -> str:
        """Store (or replace) the credentials under `ref`; returns the signer address."""
        _check_ref(ref)
        if not isinstance(secrets, FollowerSecrets):
            raise CredentialsError(f"secrets must be FollowerSecrets, got {type(secrets).__name__}")
        nonce = os.urandom(NONCE_BYTES)  # random per record: never reuse a (key, nonce) pair
        ciphertext = self._aead.encrypt(nonce, secrets._plaintext(), ref.encode())
        signer = secrets.signer_address.lower()
        row = {"ref": ref, "signer_address": signer, "key_id": self._key_id, "nonce": nonce,
               "ciphertext": ciphertext}
        statement = insert(FollowerCredential).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=[FollowerCredential.ref],
            set_={**{k: statement.excluded[k] for k in row if k != "ref"}, "updated_at": func.now()})
        with self._engine().begin() as connection:
            connection.execute(statement)
        return secrets.signer_address

    def get(self, ref: str) -> FollowerSecrets:
        _check_ref(ref)
        with self._engine().connect() as connection:
            row = connection.execute(
                select(FollowerCredential.key_id, FollowerCredential.nonce, FollowerCredential.ciphertext)
                .where(FollowerCredential.ref == ref)).first()
        if row is None:
            raise CredentialsNotFound(f"no credentials stored under ref {ref!r}")
        if row.key_id != self._key_id:
            raise CredentialsKeyError(f"credentials {ref!r} were encrypted with a different {KEY_ENV} "
                                      f"(key id {row.key_id}, current key id {self._key_id})")
        try:
            plaintext = self._aead.decrypt(bytes(row.nonce), bytes(row.ciphertext), ref.encode())
        except InvalidTag:
            raise CredentialsError(f"credentials {ref!r} do not decrypt: the record was altered or moved "
                                   f"from another ref") from None
        return FollowerSecrets.from_json(json.loads(plaintext))

    def signer_address(self, ref: str) -> str | None:
        """The signer address stored in clear for `ref` (no decryption), or None."""
        _check_ref(ref)
        with self._engine().connect() as connection:
            return connection.execute(select(FollowerCredential.signer_address)
                                      .where(FollowerCredential.ref == ref)).scalar()

    def delete(self, ref: str) -> bool:
        """Remove the credentials under `ref`; True if there were any."""
        _check_ref(ref)
        with self._engine().begin() as connection:
            result = connection.execute(delete(FollowerCredential).where(FollowerCredential.ref == ref))
        return result.rowcount > 0
