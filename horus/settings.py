"""Settings from the environment (HORUS_*), a user settings file and the file `horus stack up` writes.

Precedence, highest first: environment variables, `$HORUS_SETTINGS_FILE` (default `horus.env`),
`<state_dir>/stack.env` (written by `horus stack up`). So the same commands run against the local
stack, an external cluster or `docker compose up`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STACK_ENV_FILE = "stack.env"
GAMMA_URL = "https://gamma-api.polymarket.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HORUS_", extra="ignore")

    state_dir: Path = Field(Path(".horus"), description="where the local stack keeps data, logs and pids")
    cache_dir: Path = Field(Path.home() / ".cache" / "horus", description="downloaded jars and binaries")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    database_url: str = Field("postgresql+psycopg://postgres@127.0.0.1:5432/horus", description="SQLAlchemy URL")
    eth_rpc_url: str = Field("http://127.0.0.1:8545", description="EVM JSON-RPC (HTTP; ws:// on the same port)")
    chain_id: int = Field(137, description="chain id of the EVM node")
    partitions: int = Field(12, ge=1, description="partition count for new topics")
    topic_prefix: str = Field("", description="prepended to every topic name (isolates test runs)")
    kafka_version: str = Field("4.1.1", description="Apache Kafka version the local stack runs")
    app_id: str = Field("horus", description="Faust app id / consumer group prefix")
    session_timeout_s: float = Field(
        30.0,
        ge=6.0,
        description="consumer-group session timeout: how long a crashed worker holds its partitions before they move",
    )

    confirmations: int = Field(
        0, ge=0, description="blocks a chain fill must be buried under before it is emitted (0: act on first sight)"
    )
    exchanges: str = Field(
        "",
        description="extra exchange contract addresses (comma separated) whose "
        "OrderFilled logs count, on top of the Polygon mainnet ones",
    )
    backfill_chunk_blocks: int = Field(2000, ge=1, description="blocks per eth_getLogs call when backfilling")
    stall_seconds: float = Field(
        30.0, gt=0, description="chain source: reconnect when the socket is silent this long while the head moves"
    )
    max_head_age_seconds: float = Field(
        0.0,
        ge=0,
        description="chain source: reconnect when no new head "
        "arrived for this long (0: off; quiet dev chains mine no blocks)",
    )

    # Polymarket services (market metadata, Data API source, the CLOB); defaults are the real hosts, except
    # that paper mode refuses any CLOB but the simulator (horus.venue.guard) and asks no Gamma unless told to
    gamma_url: str = Field(
        "",
        description="Gamma API base URL (market metadata, asked before the CLOB); "
        "unset: Polymarket's Gamma in live and dry-run, none in paper (market metadata from "
        "the simulator at clob_url); empty: ask the CLOB only",
    )
    clob_url: str = Field(
        "https://clob.polymarket.com",
        description="CLOB REST base URL (orders, books, "
        "balances, market rules); in paper mode it must be the Horus CLOB simulator, which "
        "`horus stack up` starts and writes here",
    )
    data_api_url: str = Field("https://data-api.polymarket.com", description="Data API base URL")
    clob_market_ws_url: str = Field(
        "wss://ws-subscriptions-clob.polymarket.com/ws/market",
        description="CLOB market-channel WebSocket (tick-size changes)",
    )
    market_metadata_ttl_s: float = Field(300.0, gt=0, description="how long market metadata stays cached")
    market_unknown_ttl_s: float = Field(
        30.0, ge=0, description="how long an unknown token is remembered as unknown before it is looked up again"
    )
    data_api_page_limit: int = Field(500, ge=1, le=1000, description="rows per Data API page")
    data_api_poll_interval_s: float = Field(15.0, gt=0, description="Data API source: seconds between rounds")
    data_api_lookback_s: int = Field(
        600,
        ge=0,
        description="Data API source: each round re-reads this many "
        "seconds before the newest row seen (late-indexed rows; ids dedupe)",
    )

    # Credentials store: AES-256-GCM key (base64 of 32 bytes); `horus credentials generate-key` makes one
    credentials_key: SecretStr | None = Field(
        None, description="base64 of the 32-byte AES-GCM key that encrypts follower credentials at rest"
    )

    # Execute stage (horus.execution): where orders go and how the executor paces itself
    venue_mode: Literal["paper", "live", "dry-run"] = Field(
        "paper",
        description="paper: the Horus CLOB simulator at clob_url, checked at every start (anything "
        "else is refused); live: real orders to clob_url, only ever by this explicit setting; dry-run: sign and "
        "record, never POST",
    )
    paper_balance: str = Field(
        "1000",
        pattern=r"^\d+(\.\d{1,6})?$",
        description="collateral (pUSD) every account starts with on the paper venue `horus stack up` runs",
    )
    venue_chain_id: int = Field(137, description="chain id orders are signed for (the venue's, not anvil's)")
    builder_code: str = Field(
        "0x" + "00" * 32, pattern=r"^0x[0-9a-fA-F]{64}$", description="bytes32 builder code signed into every order"
    )
    execute_max_in_flight: int = Field(
        2000,
        ge=1,
        description="decisions consumed and not finished, per executor; above it the consumer pauses its partitions",
    )
    execute_batch_size: int = Field(500, ge=1, description="decisions prewritten per ledger transaction")
    execute_default_ttl_s: float = Field(
        60.0, gt=0, description="how long a COPY without expires_at may still be sent or retried"
    )
    execute_lease_s: float = Field(
        30.0,
        gt=0,
        description="a worker's claim on a ledger row while it talks "
        "to the venue; the reconciler takes rows whose lease lapsed",
    )
    venue_timeout_s: float = Field(10.0, gt=0, description="per-request timeout towards the CLOB")
    execute_send_margin_s: float = Field(
        1.0,
        ge=0,
        description="no POST starts later than this before its "
        "intent's expiry (by the venue's clock): the time a request may take "
        "to reach the venue on a loaded host",
    )
    execute_ledger_down_exit_s: float = Field(
        60.0,
        gt=0,
        description="an executor that cannot reach its ledger "
        "(Postgres) for this long exits with code 70, to be restarted",
    )
    reconcile_interval_s: float = Field(5.0, gt=0, description="seconds between reconciliation rounds")
    reconcile_min_age_s: float = Field(3.0, ge=0, description="open rows younger than this are left alone")
    reconcile_alert_after_s: float = Field(
        300.0, gt=0, description="an open row unsettled this long raises the horus_execute_stuck_rows alert gauge"
    )
    reconcile_max_backoff_s: float = Field(
        60.0,
        gt=0,
        description="a row the reconciler could not settle is "
        "looked at again after the interval, doubled per try, at most this",
    )
    chain_lookback_blocks: int = Field(0, ge=0, description="reconciler eth_getLogs window (0: from genesis)")

    # Decide stage: market data, balances and the circuit breaker
    quote_ttl_s: float = Field(
        2.0, gt=0, description="how long an order-book quote is trusted (capped at 5 s whatever the setting)"
    )
    balance_ttl_s: float = Field(
        3.0,
        gt=0,
        le=30,
        description="how long a follower's venue balance read is "
        "reused (at most 30 s: decide remembers the fills newer than a read for 60 s)",
    )
    balance_source: Literal["venue", "fixed"] = Field(
        "venue",
        description="venue: read collateral and token balances from the CLOB with the follower's "
        "credentials; fixed: every follower has `fixed_balance` (simulations, benchmarks)",
    )
    fixed_balance: str = Field("1000", description="collateral per follower when balance_source is fixed")
    breaker_failure_rate: float = Field(
        0.5,
        gt=0,
        le=1,
        description="circuit breaker: trip the global pause when this share of recent executions failed",
    )
    breaker_min_executions: int = Field(
        20, ge=1, description="circuit breaker: executions needed in the window before it may trip"
    )
    breaker_window_s: float = Field(60.0, gt=0, description="circuit breaker: window of recent executions")
    decide_lookup_timeout_s: float = Field(
        3.0,
        gt=0,
        description="longest a batch waits for market data and "
        "balances before deciding with what it has (missing -> SKIP)",
    )
    decide_snapshot_every: int = Field(
        10_000,
        ge=0,
        description="decide: snapshot a partition's state to "
        "Postgres after this many decisions (0: not by count; both this and the "
        "interval 0: no snapshots, every assign folds the whole history)",
    )
    decide_snapshot_interval_s: float = Field(
        60.0, ge=0, description="decide: snapshot a partition whose state changed at least this often (0: not by time)"
    )
    snapshot_key: SecretStr | None = Field(
        None,
        description="decide: the secret its snapshots in Postgres are "
        "authenticated with (HMAC-SHA256, key derived from it); unset: derived "
        "from credentials_key; neither set: no snapshots",
    )
    decide_snapshot_dedup_s: float = Field(
        600.0,
        ge=0,
        description="decide: a snapshot keeps the candidate ids "
        "decided this recently, to recognise a candidate plan produced twice "
        "(never less than the largest follow max_fill_age_s + 60 s)",
    )

    @model_validator(mode="after")
    def _gamma_for_the_mode(self) -> Settings:
        """Paper is self-contained: without an explicit HORUS_GAMMA_URL its market metadata comes from the
        simulator (through clob_url); live and dry-run ask Polymarket's Gamma first."""
        if "gamma_url" not in self.model_fields_set and self.venue_mode != "paper":
            self.gamma_url = GAMMA_URL
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def as_env(self) -> dict[str, str]:
        """These settings as HORUS_* variables, to hand to a child process. Unset optional settings are left
        out (the child would read "None"); secrets go as their value (the child needs them, they are not logged)."""
        return {
            f"HORUS_{name.upper()}": str(value.get_secret_value() if isinstance(value, SecretStr) else value)
            for name, value in self.model_dump().items()
            if value is not None
        }

    @property
    def stack_env_path(self) -> Path:
        return self.state_dir / STACK_ENV_FILE


def settings_files(state_dir: Path | None = None) -> tuple[Path, ...]:
    state = state_dir or Path(os.environ.get("HORUS_STATE_DIR", ".horus"))
    user_file = Path(os.environ.get("HORUS_SETTINGS_FILE", "horus.env"))
    # later files win inside pydantic-settings; the environment beats both
    return (state / STACK_ENV_FILE, user_file)


def load_settings(**overrides: Any) -> Settings:
    # pydantic's dataclass_transform __init__ lists only the fields; BaseSettings' own _env_file is hidden from mypy
    return Settings(_env_file=settings_files(overrides.get("state_dir")), **overrides)  # type: ignore[call-arg]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
