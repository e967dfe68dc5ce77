"""Settings of the CLOB V2 simulator: markets, accounts and faults (pydantic, so bad input names its field)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Exchange addresses by chain (platform notes 3.1 and py-clob-client-v2 config.py)
EXCHANGES = {
    137: {
        "v2": "0xE111180000d2663C0091e4f400237545B87B996B",
        "v2_neg_risk": "0xe2222d279d744050d28e00520010520000310F59",
        "v3": "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
    },
    80002: {
        "v2": "0xE111180000d2663C0091e4f400237545B87B996B",
        "v2_neg_risk": "0xe2222d279d744050d28e00520010520000310F59",
        "v3": "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
    },
}
TICK_SIZES = ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001")
# decimals allowed for the collateral side of a limit order, by tick (platform notes 3.4)
AMOUNT_DECIMALS = {"0.1": 3, "0.01": 4, "0.005": 5, "0.0025": 6, "0.001": 5, "0.0001": 6}


# Defaults are spelled `Field(default=...)`: a type checker reads only the keyword, and would take a field with a
# positional default for a required one (so `FaultConfig()` would look like a call missing its arguments).
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Level(_Strict):
    price: Decimal
    size: Decimal = Field(gt=0, description="shares")


class TokenConfig(_Strict):
    token_id: str = Field(min_length=1)
    outcome: str = "Yes"
    # a synthetic book around `price` (levels on both sides) unless explicit bids/asks are given
    price: Decimal | None = None
    bids: list[Level] | None = None
    asks: list[Level] | None = None

    @field_validator("token_id")
    @classmethod
    def _decimal_token(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError("token_id must be a decimal integer string")
        return value


class MarketConfig(_Strict):
    condition_id: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    tokens: list[TokenConfig] = Field(min_length=1)
    tick_size: str = "0.01"
    min_order_size: Decimal = Decimal(5)
    neg_risk: bool = False
    version: Literal["v1", "v2"] = "v1"  # "v2" = Protocol-V2 market, orders signed for ExchangeV3 (domain "3")
    fee_rate: Decimal = Decimal("0")  # fd.r
    fee_exponent: Decimal = Decimal("1")  # fd.e
    taker_only_fees: bool = True  # fd.to
    accepting_orders: bool = True
    # synthetic book shape
    levels: int = Field(default=5, ge=0, le=100)
    level_size: Decimal = Field(default=Decimal(1000), gt=0)
    spread_ticks: int = Field(default=1, ge=1)
    replenish: bool = False  # synthetic levels refill after every match, so a benchmark book never runs dry

    @field_validator("tick_size")
    @classmethod
    def _known_tick(cls, value: str) -> str:
        if value not in TICK_SIZES:
            raise ValueError(f"tick_size must be one of {', '.join(TICK_SIZES)}")
        return value

    @model_validator(mode="after")
    def _tokens_unique(self) -> MarketConfig:
        ids = [t.token_id for t in self.tokens]
        if len(set(ids)) != len(ids):
            raise ValueError("tokens: token ids must be unique")
        return self


class AccountConfig(_Strict):
    """Funds an address (set, not add). For types 1-3, ``signer`` registers the EOA that signs for the wallet."""

    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    collateral_e6: int | None = Field(default=None, ge=0)
    tokens_e6: dict[str, int] = Field(default_factory=dict)
    signer: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")
    signature_type: int = Field(default=3, ge=1, le=3, description="the wallet kind `signer` signs for")

    @field_validator("tokens_e6")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for token, amount in value.items():
            if amount < 0:
                raise ValueError(f"tokens_e6[{token}] must be >= 0")
        return value


class FaultConfig(_Strict):
    """Injected failures; every roll comes from the simulator's seeded RNG."""

    latency_ms: float = Field(default=0, ge=0)  # added to every venue reply (not /_sim)
    jitter_ms: float = Field(default=0, ge=0)  # uniform 0..jitter on top
    error_rate: float = Field(default=0, ge=0, le=1)  # order POST answers 5xx before processing
    error_status: int = Field(default=500, ge=500, le=599)
    read_error_rate: float = Field(default=0, ge=0, le=1)  # authenticated GETs answer 5xx
    timeout_rate: float = Field(default=0, ge=0, le=1)  # order processed, reply held `timeout_seconds`
    timeout_seconds: float = Field(default=10, ge=0)
    reply_lost_rate: float = Field(default=0, ge=0, le=1)  # order processed, then the reply is lost
    reply_lost_mode: Literal["5xx", "drop"] = "5xx"  # 502, or the connection closes mid-reply
    hidden_fill_rate: float = Field(default=0, ge=0, le=1)  # FOK/FAK: reply says killed, a partial fill happened
    # a matching-engine restart: order endpoints answer 425 for restart_seconds, then post-only mode
    restart_seconds: float = Field(default=0, ge=0)
    post_only_seconds: float = Field(default=0, ge=0)
    # validation order: expiry, amounts and balance/allowance are checked before the duplicate check, so a
    # re-send of bytes that already filled answers 400 "not enough balance / allowance", not "Duplicated"
    balance_before_duplicate: bool = False
    # settlement lag: new trades are MATCHED, MINED after trade_mined_seconds and final after
    # trade_confirmed_seconds (both from the match); trade_failed_rate of them end FAILED (RETRYING while
    # mined), and a FAILED trade's fill is undone (see settlement.py)
    trade_mined_seconds: float = Field(default=0, ge=0)
    trade_confirmed_seconds: float = Field(default=0, ge=0)
    trade_failed_rate: float = Field(default=0, ge=0, le=1)


class SimulatorConfig(_Strict):
    chain_id: int = 137
    seed: int = 0
    markets: list[MarketConfig] = Field(default_factory=list)
    accounts: list[AccountConfig] = Field(default_factory=list)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    # collateral every never-seen maker starts with (0 = must be funded via /_sim/accounts)
    default_collateral_e6: int = Field(default=0, ge=0)
    gtd_min_seconds: int = Field(default=60, ge=0)  # GTD expiration must be at least now + this
    page_size: int = Field(default=100, ge=1, le=1000)

    @field_validator("chain_id")
    @classmethod
    def _known_chain(cls, value: int) -> int:
        if value not in EXCHANGES:
            raise ValueError(f"chain_id must be one of {sorted(EXCHANGES)}")
        return value
