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

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from horus.credentials import CredentialsError, CredentialStore, FollowerSecrets
from horus.domain import ids
from horus.domain.config import FollowerConfig
from horus.settings import Settings
from horus.venue.guard import require_venue
from horus.venue.polymarket.auth import ApiCreds, l1_headers
from horus.venue.polymarket.orders import address_of

log = logging.getLogger("horus.paper")

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
PAPER_BOOK = {"tick_size": "0.01", "levels": 6, "level_size": 400, "replenish": True}


def paper_condition(token_id: str) -> str:
    """The condition id of a paper market made for a token whose real condition id is not known (or taken)."""
    return "0x" + ids.make_id("paper-market", token_id)


def paper_market(token_id: str, price: str | Decimal, condition_id: str | None = None) -> dict:
    """The simulator's market config (POST /_sim/markets) for one token, its book around `price`."""
    return {
        "condition_id": (condition_id or paper_condition(token_id)).lower(),
        "tokens": [{"token_id": str(token_id), "price": str(price)}],
        **PAPER_BOOK,
    }


def move_book(sim_url: str, token_id: str, price: str | Decimal, client: httpx.Client | None = None) -> None:
    """Re-centre a token's synthetic book on `price` (the market moved to where a leader traded)."""
    (client or httpx).post(
        f"{sim_url}/_sim/books", json={"token_id": str(token_id), "price": str(price)}, timeout=10
    ).raise_for_status()


class PaperMarkets:
    """Paper trading of real leaders on a paper venue that starts empty (its identity says `follow_leaders`):
    the simulator knows no market until a leader trades it. Before decide reads a batch's market data, each
    token's market is made on the simulator (the fill's condition id when known, else one derived from the
    token), and a token the leader trades at a new price has its book moved there: the best level on the side
    the leader took sits at the leader's price (a BUY lifted the ask, a SELL hit the bid), so a copy within its
    slippage finds it. Paper mode only: the guard has checked that `sim_url` is the simulator. Never raises: a
    market that cannot be made is a SKIP (unknown market) for this batch and is tried again with the next."""

    def __init__(self, sim_url: str, client: httpx.AsyncClient) -> None:
        self.sim_url, self.client = sim_url.rstrip("/"), client
        self.known: set[str] = set()  # tokens with a market on the simulator
        self.prices: dict[str, str] = {}  # token -> the price its book was last centred on

    async def follow(self, candidates: Iterable[dict]) -> set[str]:
        """Make or move the markets of these candidates' tokens; returns the tokens whose book moved."""
        latest: dict[str, tuple[str | None, str, str]] = {}
        for c in candidates:  # the newest fill of a token in the batch sets its price
            latest[str(c["token_id"])] = (c.get("condition_id"), str(c["leader_price"]), str(c.get("side")))
        moved = await asyncio.gather(
            *(self._follow(token, condition, price, side) for token, (condition, price, side) in latest.items())
        )
        return {token for token, changed in zip(latest, moved) if changed}

    async def _follow(self, token: str, condition: str | None, leader_price: str, side: str) -> bool:
        price = _book_centre(leader_price, side)
        if price is None:  # a hostile or broken fill makes no market (decide: the market is unknown)
            log.warning("paper venue: no market for token %s at price %r", token[:80], leader_price[:40])
            return False
        try:
            if token not in self.known:
                created = await self._create(token, condition, price)
                self.known.add(token)
                if created:
                    self.prices[token] = price
                    return True
            if self.prices.get(token) == price:
                return False
            reply = await self.client.post(f"{self.sim_url}/_sim/books", json={"token_id": token, "price": price})
            reply.raise_for_status()
            self.prices[token] = price
            return True
        except Exception as exc:  # noqa: BLE001 - decide goes on: the token's market data is just missing
            log.warning("paper venue: no market for token %s at %s: %s", token, price, exc)
            return False

    async def _create(self, token: str, condition: str | None, price: str) -> bool:
        """True if made now, False if the simulator already had it. The fill's condition id is tried first; the
        derived one if that is refused (taken by a sibling outcome made first: a market cannot gain tokens)."""
        error = ""
        for cid in dict.fromkeys(filter(None, (condition, paper_condition(token)))):
            reply = await self.client.post(f"{self.sim_url}/_sim/markets", json=paper_market(token, price, cid))
            if reply.is_success:
                return True
            error = f"HTTP {reply.status_code}: {_error_of(reply)}"
            if "already belongs to a market" in error:
                return False
        raise RuntimeError(f"/_sim/markets answered {error}")


def _book_centre(leader_price: str, side: str) -> str | None:
    """The price to centre a paper book on so that the leader's side has its best level at the leader's price:
    the simulator puts the best bid at the centre (on the tick grid) and the best ask one tick above, so a BUY
    centres a tick lower. None if `leader_price` is not a price in (0, 1)."""
    try:
        price = Decimal(leader_price)
    except ArithmeticError:  # InvalidOperation: not a number
        return None
    if not Decimal(0) < price < Decimal(1):
        return None
    tick = Decimal(PAPER_BOOK["tick_size"])
    centre = price - tick if side == "BUY" and price - tick >= tick else price
    return str(centre)


def _error_of(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    return str(body.get("error", "")) if isinstance(body, dict) else str(body)[:200]


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
