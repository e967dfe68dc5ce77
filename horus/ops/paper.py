"""Paper trading on the local CLOB simulator: follower accounts with keys in the encrypted credentials store,
funded on the simulator, and markets made and moved around the prices the leaders traded at. Used by decide in
paper mode, `horus demo`, `horus chaos`, the credentials commands and the benchmarks; the simulator itself
stays a peer that imports nothing of the engine.

Follower keys are derived from a run seed (sha256), so a run is reproducible and no key is written anywhere
but the credentials store. API credentials: the paper venue's, derived there with the signer key (L1) when the
credentials are stored in paper mode (`paper_secrets`), as they would be created on Polymarket; they go into
the store's API-credentials record, which is all decide reads. The executor derives them again itself.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from horus.credentials import CredentialsError, CredentialStore, FollowerSecrets
from horus.domain.config import FollowerConfig
from horus.settings import Settings
from horus.venue.guard import require_venue
from horus.venue.polymarket.auth import ApiCreds, l1_headers
from horus.venue.polymarket.orders import address_of

log = logging.getLogger("horus.ops.paper")

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
    """One account per name, its key stored encrypted (ref `paper-<seed>-<name>`). In paper mode its API
    credentials are the simulator's (derived there: HORUS_CLOB_URL must be the simulator); otherwise
    placeholders."""
    store = CredentialStore(settings)
    paper = settings.venue_mode == "paper"
    if paper:
        require_venue(settings)
    followers = []
    for i, name in enumerate(names):
        follower = PaperFollower(name, derived_key(seed, i))
        follower.credentials_ref = f"paper-{seed}-{name}"
        creds = _derive(settings, follower.private_key) if paper else PLACEHOLDER_CREDS
        store.put(follower.credentials_ref, _with_creds({"private_key": follower.private_key}, creds))
        followers.append(follower)
    return followers


PLACEHOLDER_CREDS = ApiCreds(api_key="paper", secret=PLACEHOLDER_SECRET, passphrase="paper")


def _with_creds(data: dict, creds: ApiCreds) -> FollowerSecrets:
    """FollowerSecrets of a credentials file, its missing API fields filled from `creds`."""
    return FollowerSecrets.from_json(
        {"api_key": creds.api_key, "api_secret": creds.secret, "api_passphrase": creds.passphrase, **data}
    )


class PaperVenueError(RuntimeError):
    """The paper venue did not give API credentials (the message never holds a secret)."""


def _derive(settings: Settings, private_key: str) -> ApiCreds:
    """The paper venue's API credentials of this key (L1: derive, else create, as the executor does)."""
    url = settings.clob_url.rstrip("/")
    try:
        with httpx.Client(timeout=settings.venue_timeout_s) as client:

            def ask(method: str, path: str) -> httpx.Response:
                headers = l1_headers(private_key, settings.venue_chain_id, int(time.time()))
                return client.request(method, f"{url}{path}", headers=headers)

            reply = ask("GET", "/auth/derive-api-key")
            if not reply.is_success:
                reply = ask("POST", "/auth/api-key")
        if not reply.is_success:
            raise PaperVenueError(f"the paper venue gave no API credentials (HTTP {reply.status_code})")
        return ApiCreds.from_venue(reply.json())
    except (httpx.HTTPError, ValueError) as exc:  # no answer, or not the credentials JSON
        raise PaperVenueError(f"the paper venue gave no API credentials ({type(exc).__name__})") from None


def paper_api_creds(settings: Settings, secrets: FollowerSecrets) -> ApiCreds:
    """The API credentials of stored secrets for their API-credentials record: in paper mode the paper venue's,
    derived there with the key (VenueGuardError unless HORUS_CLOB_URL is the simulator), else their own."""
    if settings.venue_mode != "paper":
        return secrets.api_creds()
    require_venue(settings)
    return _derive(settings, secrets.private_key)


def paper_secrets(settings: Settings, data: object) -> tuple[FollowerSecrets, ApiCreds | None]:
    """What to store for a credentials file: the secrets, and the API credentials of the API-credentials record
    (None: the file's own). In paper mode the key is all a file needs and the API record holds the paper
    venue's credentials, derived there with the key (VenueGuardError unless HORUS_CLOB_URL is the simulator);
    API fields the file has stay in the full record (live credentials stored early)."""
    if settings.venue_mode != "paper":
        return FollowerSecrets.from_json(data), None
    if not isinstance(data, dict) or "private_key" not in data:
        raise CredentialsError("credentials must be a JSON object with private_key (paper mode: the key is enough)")
    _with_creds(data, PLACEHOLDER_CREDS)  # a bad key or field is named before the venue is asked anything
    require_venue(settings)
    creds = _derive(settings, data["private_key"])
    return _with_creds(data, creds), creds


# the synthetic book of a paper market: six levels a tick apart on each side, refilled after every match
def move_book(sim_url: str, token_id: str, price: str | Decimal, client: httpx.Client | None = None) -> None:
    """Re-centre a token's synthetic book on `price` (the market moved to where a leader traded)."""
    (client or httpx).post(
        f"{sim_url}/_sim/books", json={"token_id": str(token_id), "price": str(price)}, timeout=10
    ).raise_for_status()


def fund(sim_url: str, accounts: Iterable[tuple[str, Decimal]], tokens_e6: dict[str, int] | None = None) -> None:
    """Set each (address, collateral) on the simulator (and token balances, if given)."""
    body = [
        {"address": address, "collateral_e6": int(amount * 1_000_000), "tokens_e6": tokens_e6 or {}}
        for address, amount in accounts
    ]
    httpx.post(f"{sim_url}/_sim/accounts", json=body, timeout=30).raise_for_status()


def set_faults(sim_url: str, update: dict) -> None:
    """Change the simulator's fault settings (latency, 5xx, held/lost replies, 425 windows...) at runtime."""
    httpx.post(f"{sim_url}/_sim/faults", json=update, timeout=10).raise_for_status()


def venue_orders(sim_url: str) -> dict:
    """The simulator's order log: {"orders": [...], counts...}."""
    return httpx.get(f"{sim_url}/_sim/orders", timeout=60).json()
