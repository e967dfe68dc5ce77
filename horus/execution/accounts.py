"""Follower accounts for the executor: who makes, who signs, with which key and API credentials.

`follower_account(address)` (the lead wires it from config.changes) gives the FollowerConfig; the
secrets come from the CredentialStore by `credentials_ref`. In paper mode the L2 API credentials are
derived from the simulator with the signer key (L1), once per follower; live mode uses the stored
ones. Errors say what is missing and never carry a secret.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

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

    @property
    def order_signer(self) -> str:
        """The order's `signer` field: the deposit wallet itself for POLY_1271, else the signing EOA."""
        return self.follower if self.signature_type == 3 else self.signer


class Accounts:
    """Resolves and caches accounts. `secrets(ref)` returns FollowerSecrets (CredentialStore.get)."""

    def __init__(self, follower_account: Callable[[str], Any], secrets: Callable[[str], Any] | None, *,
                 mode: str, venue: Any = None, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.follower_account = follower_account
        self.secrets = secrets
        self.mode = mode
        self.venue = venue
        # one resolution in flight per follower; failures are not cached and reach every asker
        self._cache = SingleFlightCache(self._load, ttl_s, name="accounts", clock=clock, keep_last_on_error=False)

    def forget(self, follower: str) -> None:
        self._cache.forget(follower.lower())

    async def get(self, follower: str) -> Account:
        return await self._cache.get(follower.lower())

    async def _load(self, follower: str) -> Account:
        config = self.follower_account(follower)
        if config is None:
            raise AccountError(f"follower {follower} has no account configured (FollowerConfig)")
        if getattr(config, "enabled", True) is False:
            raise AccountError(f"follower {follower} is disabled")
        if getattr(config, "custody", "direct") != "direct":
            raise AccountError(f"follower {follower}: custody {config.custody!r} is not executed by this stage "
                               "(proxy mode is filled by the bot's own float)")
        ref = getattr(config, "credentials_ref", None)
        if not ref:
            raise AccountError(f"follower {follower} has no credentials_ref")
        if self.secrets is None:
            raise AccountError("no credential store is configured (HORUS_CREDENTIALS_KEY)")
        try:
            secrets = await asyncio.to_thread(self.secrets, ref)
        except Exception as exc:  # CredentialsNotFound / key errors: their messages never hold secrets
            raise AccountError(f"follower {follower}: credentials {ref!r} unavailable: {exc}") from None
        signer = (getattr(config, "signer", None) or config.follower).lower()
        if secrets.signer_address.lower() != signer:
            raise AccountError(f"follower {follower}: credentials {ref!r} hold the key of "
                               f"{secrets.signer_address}, not of the configured signer {signer}")
        creds = secrets.api_creds()
        if self.mode == "paper":
            creds = await self._derive(follower, secrets.private_key)
        return Account(follower=config.follower.lower(), signer=signer, signature_type=int(config.signature_type),
                       private_key=secrets.private_key, creds=creds)

    async def _derive(self, follower: str, private_key: str) -> ApiCreds:
        reply = await self.venue.derive_api_key(private_key)
        if not reply.ok:
            reply = await self.venue.create_api_key(private_key)
        if not reply.ok or not isinstance(reply.body, dict):
            raise AccountError(f"follower {follower}: the venue gave no API credentials "
                               f"(HTTP {reply.status_code}: {reply.error})")
        return ApiCreds.from_venue(reply.body)
