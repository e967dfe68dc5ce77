"""Settings from the environment (HORUS_*), a user settings file and the file `horus stack up` writes.

Precedence, highest first: environment variables, `$HORUS_SETTINGS_FILE` (default `horus.env`),
`<state_dir>/stack.env` (written by `horus stack up`). So the same commands run against the local
stack, an external cluster or `docker compose up`.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

STACK_ENV_FILE = "stack.env"


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
    session_timeout_s: float = Field(30.0, ge=6.0, description="consumer-group session timeout: how long a "
                                     "crashed worker holds its partitions before they move")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def as_env(self) -> dict[str, str]:
        """These settings as HORUS_* variables, to hand to a child process."""
        return {f"HORUS_{name.upper()}": str(value) for name, value in self.model_dump().items()}

    @property
    def stack_env_path(self) -> Path:
        return self.state_dir / STACK_ENV_FILE


def settings_files(state_dir: Path | None = None) -> tuple[Path, ...]:
    state = state_dir or Path(os.environ.get("HORUS_STATE_DIR", ".horus"))
    user_file = Path(os.environ.get("HORUS_SETTINGS_FILE", "horus.env"))
    # later files win inside pydantic-settings; the environment beats both
    return (state / STACK_ENV_FILE, user_file)


def load_settings(**overrides) -> Settings:
    return Settings(_env_file=settings_files(overrides.get("state_dir")), **overrides)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
