"""Follower accounts for the executor: who makes, who signs, with which key and API credentials.

`follower_account(address)` (config.changes, or an accounts file) gives the FollowerConfig; the
secrets come from the CredentialStore by `credentials_ref`. In paper mode the L2 API credentials are
derived from the simulator with the signer key (L1), once per follower; live mode uses the stored
ones. Errors say what is missing and never carry a secret.

Two ways to resolve: `get(follower)` for a new order (the follower must be configured, enabled and in direct
custody), and `for_row(...)` for an order that already exists: its ledger row names the signer and the
credentials, so it can be looked up (and its stored bytes re-sent) even after the follower was disabled or
removed -- an order at the venue may still fill, and its outcome must still be recorded (safety review D7).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from horus.venue.cache import SingleFlightCache
from horus.venue.polymarket.auth import ApiCreds


class AccountError(Exception):
    """The follower cannot trade as configured (the message is safe to publish as a REJECTED reason)."""


@dataclass(frozen=True)
class Account:
    follower: str  # trading address = maker / funder, lowercase
    signer: str  # the EOA whose key signs (and whose API credentials authenticate), lowercase
    signature_type: int
    private_key: str = field(repr=False)
    creds: ApiCreds | None = field(default=None, repr=False)
    credentials_ref: str | None = None  # kept on the ledger row: lookups after the follower is gone

    @property
    def order_signer(self) -> str:
        """The order's `signer` field: the deposit wallet itself for POLY_1271, else the signing EOA."""
        return self.follower if self.signature_type == 3 else self.signer


class Accounts:
    """Resolves and caches accounts. `secrets(ref)` returns FollowerSecrets (CredentialStore.get)."""

    def __init__(
        self,
        follower_account: Callable[[str], Any],
        secrets: Callable[[str], Any] | None,
        *,
        mode: str,
        venue: Any = None,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.follower_account = follower_account
        self.secrets = secrets
        self.mode = mode
        self.venue = venue
        # one resolution in flight per follower; failures are not cached and reach every asker
        self._cache = SingleFlightCache(self._load, ttl_s, name="accounts", clock=clock, keep_last_on_error=False)
        self._by_ref = SingleFlightCache(
            self._load_ref, ttl_s, name="accounts-by-ref", clock=clock, keep_last_on_error=False
        )

    def forget(self, follower: str) -> None:
        self._cache.forget(follower.lower())

    async def get(self, follower: str) -> Account:
        # keep_last_on_error=False: a failed load raises, so the cache never answers None
        return cast(Account, await self._cache.get(follower.lower()))

    async def for_row(self, follower: str, signer: str | None, credentials_ref: str | None) -> Account:
        """The account an existing order was signed with, whatever the follower's config says now. Rows
        written before the ledger kept `credentials_ref` resolve through the config, as `get` does."""
        if not credentials_ref or not signer:
            return await self.get(follower)
        account = cast(Account, await self._by_ref.get(credentials_ref))  # never None: as in `get`
        if account.signer != signer.lower():
            raise AccountError(
                f"follower {follower}: credentials {credentials_ref!r} now hold the key of "
                f"{account.signer}, not of the order's signer {signer.lower()}"
            )
        return Account(
            follower=follower.lower(),
            signer=account.signer,
            signature_type=account.signature_type,
            private_key=account.private_key,
            creds=account.creds,
        )

    async def _load_ref(self, ref: str) -> Account:
        secrets = await self._secrets(ref, f"credentials {ref!r}")
        signer = secrets.signer_address.lower()
        creds = await self._creds(signer, secrets)
        return Account(follower=signer, signer=signer, signature_type=0, private_key=secrets.private_key, creds=creds)

    async def _secrets(self, ref: str, whose: str):
        if self.secrets is None:
            raise AccountError("no credential store is configured (HORUS_CREDENTIALS_KEY)")
        try:
            return await asyncio.to_thread(self.secrets, ref)
        except Exception as exc:  # CredentialsNotFound / key errors: their messages never hold secrets
            raise AccountError(f"{whose}: credentials {ref!r} unavailable: {exc}") from None

    async def _creds(self, whose: str, secrets) -> ApiCreds:
        if self.mode != "paper":
            return secrets.api_creds()
        return await self._derive(whose, secrets.private_key)

    async def _load(self, follower: str) -> Account:
        config = self.follower_account(follower)
        if config is None:
            raise AccountError(f"follower {follower} has no account configured (FollowerConfig)")
        if getattr(config, "enabled", True) is False:
            raise AccountError(f"follower {follower} is disabled")
        if getattr(config, "custody", "direct") != "direct":
            raise AccountError(
                f"follower {follower}: custody {config.custody!r} is not executed by this stage "
                "(proxy mode is filled by the bot's own float)"
            )
        ref = getattr(config, "credentials_ref", None)
        if not ref:
            raise AccountError(f"follower {follower} has no credentials_ref")
        secrets = await self._secrets(ref, f"follower {follower}")
        signer = (getattr(config, "signer", None) or config.follower).lower()
        if secrets.signer_address.lower() != signer:
            raise AccountError(
                f"follower {follower}: credentials {ref!r} hold the key of "
                f"{secrets.signer_address}, not of the configured signer {signer}"
            )
        creds = await self._creds(f"follower {follower}", secrets)
        return Account(
            follower=config.follower.lower(),
            signer=signer,
            signature_type=int(config.signature_type),
            private_key=secrets.private_key,
            creds=creds,
            credentials_ref=ref,
        )

    async def _derive(self, whose: str, private_key: str) -> ApiCreds:
        reply = await self.venue.derive_api_key(private_key)
        if not reply.ok:
            reply = await self.venue.create_api_key(private_key)
        if not reply.ok or not isinstance(reply.body, dict):
            raise AccountError(f"{whose}: the venue gave no API credentials (HTTP {reply.status_code}: {reply.error})")
        try:
            return ApiCreds.from_venue(reply.body)
        except Exception as exc:  # an unusable answer is this account's problem, never the executor's (D10)
            raise AccountError(f"{whose}: the venue's API credentials are unusable: {type(exc).__name__}") from None
