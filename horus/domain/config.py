"""Follower accounts and follows: the validated configs carried by `config.changes`.

A FOLLOWER change (entity id = trading address) describes an account: custody mode, how its orders are
signed, a *reference* to its encrypted credentials (never the secrets), and follower-wide limits. A
FOLLOW change (entity id = follow id) describes one leader followed by one follower: sizing, slippage,
limits and filters. Money is in whole collateral units (pUSD) as decimal strings; prices in [0, 1].

Every rule lives here, so the CLI, plan's follow graph, decide and the executor refuse the same configs with the
same message, which names the field and the rule (`parse_change_body` is the one parser of a change's body).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from horus.domain.events import envelope
from horus.domain.ids import make_id
from horus.domain.json_guard import UnsafeJson, check_json

_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
_CONDITION = re.compile(r"^0x[0-9a-f]{64}$")


class ConfigInvalid(ValueError):
    """A config that breaks a rule; the message names the field and the rule."""


def _address(value: str) -> str:
    text = value.strip().lower()
    if not _ADDRESS.match(text):
        raise ValueError("must be a 20-byte 0x hex address")
    return text


def normalize_address(value: object, what: str) -> str:
    """A 20-byte 0x hex address, lowercase; ConfigInvalid naming `what` otherwise."""
    if not isinstance(value, str):
        raise ConfigInvalid(f"{what} must be a 0x address string, got {value!r:.80}")
    try:
        return _address(value)
    except ValueError:
        raise ConfigInvalid(f"{what} is not a 20-byte 0x hex address: {value!r:.80}") from None


def _market_filter(value: str) -> str:
    """A market filter entry: a condition id (0x + 64 hex), `tag:<slug>` or `category:<name>`."""
    text = value.strip().lower()
    if _CONDITION.match(text) or (text.startswith(("tag:", "category:")) and text.split(":", 1)[1]):
        return text
    raise ValueError("each entry must be a condition id (0x + 64 hex), tag:<slug> or category:<name>")


Address = Annotated[str, AfterValidator(_address)]
MarketFilter = Annotated[str, AfterValidator(_market_filter)]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]
Price = Annotated[Decimal, Field(ge=0, le=1, decimal_places=6)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_body(self) -> str:
        """Canonical JSON for a ConfigChange body (sorted keys: equal configs, equal bodies)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class FollowerConfig(_Config):
    """A follower account. `follower` is the trading address: the maker/funder of its orders (the
    deposit wallet or proxy for types 1-3, the EOA for type 0; the CopyProxy in proxy custody).
    `signer` is the EOA whose key signs (type 0: the follower itself; type 3: the wallet's owner or
    session key). `credentials_ref` names a record in the encrypted credentials store."""

    follower: Address
    custody: Literal["direct", "proxy"] = "direct"
    signature_type: int = Field(0, ge=0, le=3)
    signer: Address | None = None
    credentials_ref: str | None = Field(None, min_length=1, max_length=200)
    enabled: bool = True
    daily_cap: Money | None = None  # collateral spent on BUYs per UTC day, fees included
    market_exposure_cap: Money | None = None  # open cost basis + reservations per market
    max_open_positions: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _signer_rules(self) -> FollowerConfig:
        if self.custody == "direct":
            if self.signature_type == 0 and self.signer not in (None, self.follower):
                raise ValueError("signer: with signature_type 0 (EOA) the signer is the follower itself")
            if self.signature_type in (1, 2, 3) and self.signer is None:
                raise ValueError(f"signer: signature_type {self.signature_type} needs the signing EOA address")
            if self.signature_type in (1, 2) and self.signer == self.follower:
                raise ValueError("signer: with a proxy or Safe wallet the signer is the owner EOA, not the wallet")
        return self

    @property
    def signing_address(self) -> str:
        return self.signer or self.follower


class Sizing(_Config):
    """How big a copy is. The mode gives a collateral target; `multiplier` scales it; `max_per_trade`
    caps it; below `min_per_trade` the copy is skipped. Fees count towards every amount."""

    mode: Literal["fixed", "ratio", "balance_pct"] = "fixed"
    amount: Money | None = None  # fixed: collateral per copy
    ratio: Annotated[Decimal, Field(gt=0, le=1000)] | None = None  # ratio: x the leader's collateral
    balance_pct: Annotated[Decimal, Field(gt=0, le=100)] | None = None  # balance_pct: % of the balance
    multiplier: Annotated[Decimal, Field(gt=0, le=1000)] = Decimal(1)
    max_per_trade: Money | None = None
    min_per_trade: Money | None = None
    min_size_policy: Literal["skip", "round_up"] = "skip"  # below the venue minimum: skip, or round up within caps

    @model_validator(mode="after")
    def _mode_needs_its_field(self) -> Sizing:
        needed = {"fixed": "amount", "ratio": "ratio", "balance_pct": "balance_pct"}[self.mode]
        if getattr(self, needed) is None:
            raise ValueError(f"sizing.{needed}: required when sizing.mode is {self.mode!r}")
        if self.mode == "fixed" and self.amount == 0:
            raise ValueError("sizing.amount: must be greater than 0")
        if (
            self.max_per_trade is not None
            and self.min_per_trade is not None
            and self.min_per_trade > self.max_per_trade
        ):
            raise ValueError("sizing.min_per_trade: must not exceed sizing.max_per_trade")
        return self


class FollowConfig(_Config):
    """One follower following one leader."""

    follow_id: str = Field(min_length=1, max_length=200)
    follower: Address
    leader: Address
    enabled: bool = True
    sizing: Sizing
    slippage_bps: int = Field(200, ge=0, le=5000)  # worst price = reference +- this
    order_type: Literal["FOK", "FAK"] = "FAK"
    order_ttl_s: int = Field(60, ge=1, le=3600)  # how long an intent may still be sent or retried
    copy_sells: bool = True
    daily_cap: Money | None = None
    market_exposure_cap: Money | None = None
    price_min: Price = Decimal(0)  # price band of the leader's fill
    price_max: Price = Decimal(1)
    markets_allow: tuple[MarketFilter, ...] = ()  # empty: every market
    markets_deny: tuple[MarketFilter, ...] = ()
    max_fill_age_s: float = Field(60.0, gt=0, le=86400)  # older leader fills are skipped

    @field_validator("follow_id")
    @classmethod
    def _id_chars(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._:\-]+", value):
            raise ValueError("only letters, digits and . _ : - are allowed")
        if value.startswith(FOLLOWER_KEY_PREFIX):
            raise ValueError(f"must not start with {FOLLOWER_KEY_PREFIX!r} (reserved for follower keys)")
        return value

    @model_validator(mode="after")
    def _rules(self) -> FollowConfig:
        if self.price_min > self.price_max:
            raise ValueError("price_min: must not exceed price_max")
        if self.follower == self.leader:
            raise ValueError("leader: a follower cannot follow itself")
        both = set(self.markets_allow) & set(self.markets_deny)
        if both:
            raise ValueError(f"markets_deny: {sorted(both)[0]} is also in markets_allow")
        return self


def _describe(exc: ValidationError, what: str) -> ConfigInvalid:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or what
        message = error["msg"].removeprefix("Value error, ")
        if ":" in message.split(" ", 1)[0]:  # the rule already names its field
            parts.append(message)
        else:
            parts.append(f"{field}: {message}")
    return ConfigInvalid(f"invalid {what}: " + "; ".join(parts))


# A config body is a flat object with a nested `sizing` and a few lists (depth 2); a market list of a
# thousand condition ids is ~70 KB. Bodies beyond these bounds are refused before any parser sees them.
BODY_MAX_DEPTH = 16
BODY_MAX_BYTES = 256 * 1024


def _check_body(body: str, what: str) -> None:
    """Depth and size of a config body's JSON, checked before it is parsed (horus.domain.json_guard)."""
    try:
        check_json(body, max_depth=BODY_MAX_DEPTH, max_bytes=BODY_MAX_BYTES)
    except UnsafeJson as exc:
        raise ConfigInvalid(f"invalid {what}: body refused unparsed: {exc}") from None


def load_body_json(body: str, what: str = "config") -> Any:
    """A config body's JSON value, bounded before it is parsed: every reader of config bodies that needs the
    raw JSON (the follow graph) goes through here. Raises ConfigInvalid."""
    _check_body(body, what)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ConfigInvalid(f"invalid {what}: body is not JSON: {exc}") from None


def parse_follower(data: dict[str, Any] | str) -> FollowerConfig:
    if isinstance(data, str):
        _check_body(data, "follower")
    try:
        return (
            FollowerConfig.model_validate_json(data) if isinstance(data, str) else FollowerConfig.model_validate(data)
        )
    except ValidationError as exc:
        raise _describe(exc, "follower") from None


def parse_follow_config(data: dict[str, Any] | str) -> FollowConfig:
    if isinstance(data, str):
        _check_body(data, "follow")
    try:
        return FollowConfig.model_validate_json(data) if isinstance(data, str) else FollowConfig.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, "follow") from None


REDACTED = "***"


def redacted(config: dict[str, Any]) -> dict[str, Any]:
    """A printable copy: anything that looks like a secret is masked (configs hold only references,
    but user input may carry a key by mistake)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out[key] = redacted(value)
        elif any(word in key.lower() for word in ("secret", "private", "passphrase", "password", "api_key", "key_")):
            out[key] = REDACTED
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# config.changes events and their fold
# ---------------------------------------------------------------------------------------------
FOLLOWER_KEY_PREFIX = "follower:"


def config_key(entity: str, entity_id: str) -> str:
    """The Kafka key of a config change (compaction keeps the latest per key). Follows keep their
    bare id (the follow graph's tombstones use it); followers get a prefix so ids never collide."""
    return FOLLOWER_KEY_PREFIX + entity_id if entity == "FOLLOWER" else entity_id


def config_change(
    entity: str, entity_id: str, config: _Config | str | None, source: str, occurred_at_us: int = 0
) -> dict[str, Any]:
    """A ConfigChange record: UPSERT of `config` (a validated config, or a body already in JSON), or
    DELETE when it is None."""
    if config is None:
        op, body = "DELETE", None
    else:
        op, body = "UPSERT", config if isinstance(config, str) else config.to_body()
    # the id covers what changed, so two different changes at one instant never share an id
    event_id = make_id("config-change", entity, entity_id, op, body, occurred_at_us)
    return {
        "envelope": envelope(event_id, source, occurred_at_us),
        "entity": entity,
        "entity_id": entity_id,
        "op": op,
        "body": body,
    }


class ConfigState:
    """Every follower and follow config, folded from config.changes. A change that breaks a rule is
    remembered in `invalid` (the previous valid config is dropped: acting on a config the operator
    has replaced would be wrong) so decisions can say why a follow is not copied."""

    __slots__ = ("followers", "follows", "invalid")

    def __init__(self) -> None:
        self.followers: dict[str, FollowerConfig] = {}
        self.follows: dict[str, FollowConfig] = {}
        self.invalid: dict[str, str] = {}  # config key -> what is wrong


def apply_config(change: dict[str, Any], state: ConfigState) -> tuple[list[dict[str, Any]], ConfigState]:
    """Fold one ConfigChange into `state` (in place). Raises ConfigInvalid for a bad change, after
    recording it, so the caller can park it."""
    entity, entity_id, op = change.get("entity"), change.get("entity_id") or "", change.get("op")
    if entity not in ("FOLLOWER", "FOLLOW") or not entity_id:
        raise ConfigInvalid(f"config change without a known entity/id: {entity!r} {entity_id!r}")
    table = state.followers if entity == "FOLLOWER" else state.follows
    key = config_key(entity, entity_id)
    table.pop(entity_id, None)
    state.invalid.pop(key, None)
    if op == "DELETE":
        return [], state
    if op != "UPSERT":
        raise ConfigInvalid(f"{entity} {entity_id}: unknown op {op!r}")
    try:
        config = parse_change_body(entity, entity_id, change.get("body"))
    except ConfigInvalid as exc:
        state.invalid[key] = str(exc)
        raise
    if isinstance(config, FollowerConfig):  # as `table`: the entity says which config its body is
        state.followers[entity_id] = config
    else:
        state.follows[entity_id] = config
    return [], state


def parse_change_body(entity: str, entity_id: str, body: str | None) -> FollowerConfig | FollowConfig:
    """The config an UPSERT carries, by the same rules everywhere (CLI, stages, projections)."""
    config: FollowerConfig | FollowConfig
    if entity == "FOLLOWER":
        config = parse_follower(body or "")
        own_id = config.follower
    else:
        config = parse_follow_config(body or "")
        own_id = config.follow_id
    if own_id != entity_id:
        raise ConfigInvalid(f"invalid {entity.lower()}: body id {own_id!r} differs from entity_id {entity_id!r}")
    return config


def apply_config_tombstone(key: bytes | str | None, state: ConfigState) -> ConfigState:
    if key:
        text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if text.startswith(FOLLOWER_KEY_PREFIX):
            state.followers.pop(text[len(FOLLOWER_KEY_PREFIX) :], None)
        else:
            state.follows.pop(text, None)
        state.invalid.pop(text, None)
    return state
