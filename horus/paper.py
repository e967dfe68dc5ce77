"""Paper trading on the local CLOB simulator: follower accounts with keys in the encrypted credentials store,
funded on the simulator, and markets seeded around the prices the leaders traded at. Used by `horus demo`,
`horus chaos` and the benchmarks; the simulator itself stays a peer that imports nothing of the engine.

Follower keys are derived from a run seed (sha256), so a run is reproducible and no key is written anywhere
but the credentials store. API credentials are placeholders: in paper mode the engine derives the real ones
from the simulator with the signer key (L1), as it would create them on Polymarket.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from horus.credentials import CredentialStore, FollowerSecrets
from horus.domain.config import FollowerConfig
from horus.settings import Settings
from horus.venue.polymarket.orders import address_of

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PLACEHOLDER_SECRET = base64.urlsafe_b64encode(b"paper-mode-derives-real-ones---").decode()


def derived_key(seed: str, index: int) -> str:
    """A valid secp256k1 private key (0x hex) from a seed and an index."""
    number = int.from_bytes(hashlib.sha256(f"horus-paper:{seed}:{index}".encode()).digest(), "big")
    return f"0x{number % (SECP256K1_ORDER - 1) + 1:064x}"


@dataclass
class PaperFollower:
    name: str
    private_key: str = field(repr=False)
    address: str = ""  # lowercase
    credentials_ref: str = ""

    def __post_init__(self) -> None:
        self.address = self.address or address_of(self.private_key).lower()

    def config(self, **limits) -> FollowerConfig:
        return FollowerConfig(follower=self.address, signature_type=0, credentials_ref=self.credentials_ref, **limits)


def create_followers(settings: Settings, names: Iterable[str], seed: str) -> list[PaperFollower]:
    """One account per name, its key stored encrypted (ref `paper-<seed>-<name>`)."""
    store = CredentialStore(settings)
    followers = []
    for i, name in enumerate(names):
        follower = PaperFollower(name, derived_key(seed, i))
        follower.credentials_ref = f"paper-{seed}-{name}"
        store.put(follower.credentials_ref, FollowerSecrets(private_key=follower.private_key, api_key="paper",
                                                            api_secret=PLACEHOLDER_SECRET, api_passphrase="paper"))
        followers.append(follower)
    return followers


def fund(sim_url: str, accounts: Iterable[tuple[str, Decimal]], tokens_e6: dict[str, int] | None = None) -> None:
    """Set each (address, collateral) on the simulator (and token balances, if given)."""
    body = [{"address": address, "collateral_e6": int(amount * 1_000_000), "tokens_e6": tokens_e6 or {}}
            for address, amount in accounts]
    httpx.post(f"{sim_url}/_sim/accounts", json=body, timeout=30).raise_for_status()


def set_faults(sim_url: str, update: dict) -> None:
    """Change the simulator's fault settings (latency, 5xx, held/lost replies, 425 windows...) at runtime."""
    httpx.post(f"{sim_url}/_sim/faults", json=update, timeout=10).raise_for_status()


def venue_orders(sim_url: str) -> dict:
    """The simulator's order log: {"orders": [...], counts...}."""
    return httpx.get(f"{sim_url}/_sim/orders", timeout=60).json()
