"""Postgres tables (SQLAlchemy 2 declarative, typed).

Two kinds of table live here:

- the **ledger** (`copy_trades`): written by the executor itself (prewrite-before-execute,
  DESIGN section 3), never rebuilt from topics;
- **projections** (`leader_fills`, `leader_fill_retractions`, `copy_candidates`, `copy_decisions`, `execution_results`,
  `settlement_events`, `follower_configs`, `follow_configs`, `control_switches`, `dead_letters`) plus their bookkeeping (`projection_offsets`): folded from Kafka topics by
  `projections/`, and rebuilt from offset 0 by `projections/replay.py`. Projection rows carry the
  event's own timestamps and Kafka coordinates, never `now()`, so a replay rebuilds them exactly.

Amounts are integers in 1e-6 units (`*_e6`, BIGINT) and prices are NUMERIC; nothing is a float.
The schema itself is created by the Alembic revision in `migrations/versions/`; these models
describe the same tables (a test checks the two never drift apart).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import base as postgresql_types
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from horus.domain.events import LEDGER_STATUSES, ExecutionStatus

# Stable constraint names, so migrations and models agree and downgrades can drop by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SIDES = ("BUY", "SELL")
COPY_TRADE_STATUSES = LEDGER_STATUSES
DECISION_ACTIONS = ("COPY", "SKIP")
EXECUTION_STATUSES = tuple(s.value for s in ExecutionStatus)
FILL_ROLES = ("MAKER", "TAKER")


class Xid8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id (`xid8`), which SQLAlchemy has no type for."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "xid8"


postgresql_types.ischema_names.setdefault("xid8", Xid8)  # reflection (the drift test) knows it too


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


TZ = DateTime(timezone=True)


# --------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------
class CopyTrade(Base):
    """One row per (follow, leader fill): the prewrite the executor commits before any POST."""

    __tablename__ = "copy_trades"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("follow_id", "leader_fill_id"),
        CheckConstraint(_in("side", SIDES), name="side"),
        CheckConstraint(_in("status", COPY_TRADE_STATUSES), name="status"),
        CheckConstraint("size_e6 >= 0", name="size_nonneg"),
        CheckConstraint("filled_shares_e6 >= 0 AND filled_collateral_e6 >= 0", name="filled_nonneg"),
        CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        CheckConstraint("signature_generation >= 0", name="generation_nonneg"),
        Index("ix_copy_trades_order_hash", "order_hash"),
        Index("ix_copy_trades_status_updated_at", "status", "updated_at"),
        Index("ix_copy_trades_follower", "follower"),
        Index("ix_copy_trades_status_next_check_at", "status", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(Text)
    follow_id: Mapped[str] = mapped_column(Text)
    leader_fill_id: Mapped[str] = mapped_column(Text)
    follower: Mapped[str] = mapped_column(Text)
    token_id: Mapped[str] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'PENDING'"))
    order_hash: Mapped[str | None] = mapped_column(Text)
    signed_order: Mapped[dict | None] = mapped_column(JSONB)
    size_e6: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal | None] = mapped_column(Numeric)
    filled_shares_e6: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    filled_collateral_e6: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    locked_at: Mapped[datetime | None] = mapped_column(TZ)
    locked_by: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    # execution (migration 0005): what was signed and sent, and where reconciliation stands
    decision_id: Mapped[str | None] = mapped_column(Text)
    order_type: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(TZ)  # no POST or same-bytes retry after this
    signer: Mapped[str | None] = mapped_column(Text)
    venue_mode: Mapped[str | None] = mapped_column(Text)  # paper | live | dry-run
    body_text: Mapped[str | None] = mapped_column(Text)  # the exact POST /order body, re-sent verbatim
    signature_generation: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    venue_status: Mapped[str | None] = mapped_column(Text)  # the venue's own word: live, matched, ...
    fee_e6: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    unknown_since: Mapped[datetime | None] = mapped_column(TZ)
    result_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # ExecutionResults emitted
    last_result: Mapped[dict | None] = mapped_column(JSONB)  # the last one, re-emitted verbatim on redelivery
    result_sent_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # acked by the broker
    occurred_at: Mapped[datetime | None] = mapped_column(TZ)  # the decision's occurred_at (results carry it)
    # safety (migration 0009): what the executor checks before a POST and needs to settle a row on its own
    condition_id: Mapped[str | None] = mapped_column(Text)  # market pauses name the condition
    credentials_ref: Mapped[str | None] = mapped_column(Text)  # lookups after the follower is disabled or gone
    fee_rate: Mapped[Decimal | None] = mapped_column(Numeric)  # the market's taker fee schedule at prewrite
    fee_exponent: Mapped[Decimal | None] = mapped_column(Numeric)
    next_check_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())  # reconciler: when due
    checks: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # inconclusive looks so far (backoff)
    final: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))  # false: matched, not settled on chain
    # the inserting transaction (migration 0011): pg_xact_commit_timestamp of it proves the row was committed
    # before the venue saw the order (the chaos verdict's orphans count)
    prewrite_xid: Mapped[str] = mapped_column(Xid8, server_default=text("pg_current_xact_id()"))


# --------------------------------------------------------------------------------------------
# Projection bookkeeping
# --------------------------------------------------------------------------------------------
class ProjectionOffset(Base):
    """Next offset to read per (projection, topic, partition), written in the same transaction as
    the rows it covers. Only ever moves forward (the runner's guard)."""

    __tablename__ = "projection_offsets"
    __table_args__ = (
        PrimaryKeyConstraint("projection", "topic", "partition"),
        CheckConstraint("next_offset >= 0", name="next_offset_nonneg"),
    )

    projection: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(Text)
    partition: Mapped[int] = mapped_column(Integer)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class DeadLetterRow(Base):
    """A message some stage could not process, with its exact original bytes.

    Filled from two places: DeadLetter events on `dead.letters`, and messages the projection
    runner itself could not decode (stage `projections`, no event id, broker timestamp)."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        PrimaryKeyConstraint("source_topic", "source_partition", "source_offset"),
        Index("ix_dead_letters_stage", "stage"),
    )

    source_topic: Mapped[str] = mapped_column(Text)
    source_partition: Mapped[int] = mapped_column(Integer)
    source_offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    original: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime | None] = mapped_column(TZ)


# --------------------------------------------------------------------------------------------
# Event projections: one row per event, keyed by its event id
# --------------------------------------------------------------------------------------------
class _EventColumns:
    """Envelope and Kafka coordinates every event projection row carries."""

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(TZ)
    produced_at: Mapped[datetime] = mapped_column(TZ)
    source: Mapped[str] = mapped_column(Text)
    causation_id: Mapped[str | None] = mapped_column(Text)
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)


class LeaderFillRow(_EventColumns, Base):
    __tablename__ = "leader_fills"
    __table_args__ = (
        CheckConstraint(_in("side", SIDES), name="side"),
        CheckConstraint(_in("role", FILL_ROLES), name="role"),
        Index("ix_leader_fills_leader_occurred_at", "leader", "occurred_at"),
        Index("ix_leader_fills_token_id", "token_id"),
        Index("ix_leader_fills_tx_hash", "tx_hash"),
    )

    leader: Mapped[str] = mapped_column(Text)
    exchange: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str] = mapped_column(Text)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    token_id: Mapped[str] = mapped_column(Text)
    condition_id: Mapped[str | None] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    shares_e6: Mapped[int] = mapped_column(BigInteger)
    collateral_e6: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Numeric)
    fee_e6: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(Text)
    order_hashes: Mapped[list[str]] = mapped_column(ARRAY(Text))


class CopyCandidateRow(_EventColumns, Base):
    """A (leader fill x follow) pair plan produced (migration 0010): with copy_decisions, "was this fill
    planned for this follow, and what became of it?" is answered from the tables alone."""

    __tablename__ = "copy_candidates"
    __table_args__ = (
        CheckConstraint(_in("side", SIDES), name="side"),
        Index("ix_copy_candidates_follower_occurred_at", "follower", "occurred_at"),
        Index("ix_copy_candidates_leader_fill_id", "leader_fill_id"),
    )

    leader_fill_id: Mapped[str] = mapped_column(Text)
    follow_id: Mapped[str] = mapped_column(Text)
    follower: Mapped[str] = mapped_column(Text)
    leader: Mapped[str] = mapped_column(Text)
    token_id: Mapped[str] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    leader_shares_e6: Mapped[int] = mapped_column(BigInteger)
    leader_collateral_e6: Mapped[int] = mapped_column(BigInteger)
    leader_price: Mapped[Decimal] = mapped_column(Numeric)
    condition_id: Mapped[str | None] = mapped_column(Text)


class CopyDecisionRow(_EventColumns, Base):
    __tablename__ = "copy_decisions"
    __table_args__ = (
        UniqueConstraint("candidate_id"),
        CheckConstraint(_in("action", DECISION_ACTIONS), name="action"),
        CheckConstraint(_in("side", SIDES), name="side"),
        Index("ix_copy_decisions_follower_occurred_at", "follower", "occurred_at"),
        Index("ix_copy_decisions_leader_fill_id", "leader_fill_id"),
        Index("ix_copy_decisions_intent_id", "intent_id"),
        Index("ix_copy_decisions_reason_code", "reason_code"),
    )

    candidate_id: Mapped[str] = mapped_column(Text)
    follow_id: Mapped[str] = mapped_column(Text)
    follower: Mapped[str] = mapped_column(Text)
    leader_fill_id: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    intent_id: Mapped[str | None] = mapped_column(Text)
    token_id: Mapped[str] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    size_e6: Mapped[int] = mapped_column(BigInteger)
    worst_price: Mapped[Decimal | None] = mapped_column(Numeric)
    order_type: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    reason_code: Mapped[str | None] = mapped_column(Text)
    reason_detail: Mapped[str | None] = mapped_column(Text)
    # migration 0004: what the decision was based on (`horus why`); NULL on events from before it
    leader: Mapped[str | None] = mapped_column(Text)
    condition_id: Mapped[str | None] = mapped_column(Text)
    reserved_e6: Mapped[int | None] = mapped_column(BigInteger)
    leader_shares_e6: Mapped[int | None] = mapped_column(BigInteger)
    inputs: Mapped[str | None] = mapped_column(Text)  # JSON text, exactly as the event carries it


class ExecutionResultRow(_EventColumns, Base):
    __tablename__ = "execution_results"
    __table_args__ = (
        CheckConstraint(_in("status", EXECUTION_STATUSES), name="status"),
        Index("ix_execution_results_intent_id", "intent_id"),
        Index("ix_execution_results_follower_occurred_at", "follower", "occurred_at"),
        Index("ix_execution_results_order_hash", "order_hash"),
    )

    intent_id: Mapped[str] = mapped_column(Text)
    follow_id: Mapped[str] = mapped_column(Text)
    follower: Mapped[str] = mapped_column(Text)
    leader_fill_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    order_hash: Mapped[str | None] = mapped_column(Text)
    filled_shares_e6: Mapped[int] = mapped_column(BigInteger)
    filled_collateral_e6: Mapped[int] = mapped_column(BigInteger)
    avg_price: Mapped[Decimal | None] = mapped_column(Numeric)
    fee_e6: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)


class SettlementEventRow(_EventColumns, Base):
    __tablename__ = "settlement_events"
    __table_args__ = (
        Index("ix_settlement_events_follower_occurred_at", "follower", "occurred_at"),
        Index("ix_settlement_events_intent_id", "intent_id"),
        Index("ix_settlement_events_debt_id", "debt_id"),
    )

    follower: Mapped[str] = mapped_column(Text)
    intent_id: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    amount_e6: Mapped[int] = mapped_column(BigInteger)
    token_id: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(Text)
    debt_id: Mapped[str | None] = mapped_column(Text)


# --------------------------------------------------------------------------------------------
# Ingest bookkeeping (written by the sources, never rebuilt from topics)
# --------------------------------------------------------------------------------------------
CLAIM_STATUSES = ("pending", "produced")


class IngestCursor(Base):
    """Last (block, log index) a source has fully emitted; it only moves after the sink returned."""

    __tablename__ = "ingest_cursors"

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class LeaderFillClaim(Base):
    """One row per event a source produced to leader.fills (LeaderFill or its retraction).

    Inserted `pending` (ON CONFLICT DO NOTHING: only the winner produces), then `produced` after the
    broker acknowledged. The encoded event is kept so a crash between the two can be repaired
    without the source seeing the fill again (FillSink.recover)."""

    __tablename__ = "leader_fill_claims"
    __table_args__ = (
        CheckConstraint(_in("status", CLAIM_STATUSES), name="status"),
        Index("ix_leader_fill_claims_source_status", "source", "status"),
    )

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    event_type: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    claimed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    produced_at: Mapped[datetime | None] = mapped_column(TZ)


# Tables rebuilt from topics by replay (everything except the ledger and the offsets themselves).
PROJECTION_TABLES: tuple[str, ...] = (
    "leader_fills",
    "leader_fill_retractions",
    "copy_candidates",
    "copy_decisions",
    "execution_results",
    "settlement_events",
    "follower_configs",
    "follow_configs",
    "control_switches",
    "dead_letters",
)


# --------------------------------------------------------------------------------------------
# Credentials (encrypted at rest; written by horus.credentials.CredentialStore)
# --------------------------------------------------------------------------------------------
class FollowerCredential(Base):
    """One follower's signing key and CLOB API credentials, AES-256-GCM encrypted with the ref as associated
    data (a row copied under another ref does not decrypt). Only the signer address is in clear."""

    __tablename__ = "follower_credentials"
    __table_args__ = (
        CheckConstraint("octet_length(nonce) = 12", name="nonce_len"),
        CheckConstraint("octet_length(ciphertext) > 16", name="ciphertext_len"),
    )

    ref: Mapped[str] = mapped_column(Text, primary_key=True)
    signer_address: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(Text)  # fingerprint of the encryption key, to name a key mismatch
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class FollowerApiCredential(Base):
    """The same follower's CLOB API credentials alone, encrypted apart from the signing key (migration 0012), so
    a reader that only authenticates (decide's balances, lookups) never decrypts a key that can sign orders."""

    __tablename__ = "follower_api_credentials"
    __table_args__ = (
        CheckConstraint("octet_length(nonce) = 12", name="nonce_len"),
        CheckConstraint("octet_length(ciphertext) > 16", name="ciphertext_len"),
    )

    ref: Mapped[str] = mapped_column(Text, primary_key=True)
    signer_address: Mapped[str] = mapped_column(Text)  # the EOA the credentials authenticate, lowercase
    key_id: Mapped[str] = mapped_column(Text)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


# --------------------------------------------------------------------------------------------
# Config and control projections (migration 0004): the current state per compacted-topic key.
# One row per key; the change with the highest Kafka offset wins (projections.sql LATEST_WINS).
# --------------------------------------------------------------------------------------------
class _LatestColumns:
    """The change a config/control row was folded from: its event, time and Kafka coordinates."""

    event_id: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ)  # the change's occurred_at (never now(): replay)
    source: Mapped[str] = mapped_column(Text)
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)


class FollowerConfigRow(_LatestColumns, Base):
    """Current config of each follower account (config.changes, entity FOLLOWER). A DELETE keeps the
    row with `deleted` set and no body; a change that breaks a rule keeps it with no body and `invalid`
    set (decide drops such a config too)."""

    __tablename__ = "follower_configs"

    follower: Mapped[str] = mapped_column(Text, primary_key=True)
    deleted: Mapped[bool] = mapped_column(Boolean)
    enabled: Mapped[bool | None] = mapped_column(Boolean)
    custody: Mapped[str | None] = mapped_column(Text)
    signature_type: Mapped[int | None] = mapped_column(Integer)
    credentials_ref: Mapped[str | None] = mapped_column(Text)
    body: Mapped[dict | None] = mapped_column(JSONB)
    invalid: Mapped[str | None] = mapped_column(Text)  # the rule the latest change broke: not in effect


class FollowConfigRow(_LatestColumns, Base):
    """Current config of each follow (config.changes, entity FOLLOW)."""

    __tablename__ = "follow_configs"
    __table_args__ = (Index("ix_follow_configs_follower", "follower"), Index("ix_follow_configs_leader", "leader"))

    follow_id: Mapped[str] = mapped_column(Text, primary_key=True)
    deleted: Mapped[bool] = mapped_column(Boolean)
    follower: Mapped[str | None] = mapped_column(Text)
    leader: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool | None] = mapped_column(Boolean)
    body: Mapped[dict | None] = mapped_column(JSONB)
    invalid: Mapped[str | None] = mapped_column(Text)  # the rule the latest change broke: not in effect


class ControlSwitchRow(_LatestColumns, Base):
    """Last operator command per switch (control.commands key: GLOBAL, FOLLOWER:<addr>, MARKET:<id>);
    `active` is false once RESUMEd."""

    __tablename__ = "control_switches"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    scope: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    issued_by: Mapped[str | None] = mapped_column(Text)


# --------------------------------------------------------------------------------------------
# Retractions (migration 0006): LeaderFillRetracted events on leader.fills, folded by the
# leader_fills projection into a table of their own. The fill's row stays in leader_fills: both
# facts happened (and the transaction may be mined again, bringing the fill back).
# --------------------------------------------------------------------------------------------
class LeaderFillRetractionRow(_EventColumns, Base):
    """A leader fill whose chain log a reorg removed: one row per retraction event (fill, removed block)."""

    __tablename__ = "leader_fill_retractions"
    __table_args__ = (Index("ix_leader_fill_retractions_leader_fill_id", "leader_fill_id"),)

    leader_fill_id: Mapped[str] = mapped_column(Text)  # event_id of the retracted LeaderFill
    leader: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str] = mapped_column(Text)
    block_number: Mapped[int] = mapped_column(BigInteger)  # the block the removed log was in
    reason: Mapped[str] = mapped_column(Text)


# --------------------------------------------------------------------------------------------
# decide snapshots (migration 0008): written by the decide stage, never rebuilt from topics. One row per
# (consumer group, copy.candidates partition); losing it only makes the next rebuild fold the whole history.
# --------------------------------------------------------------------------------------------
class DecideSnapshot(Base):
    """A partition's decide books (horus.domain.decide_snapshot, zlib JSON) covering every decision on `topic`
    below `decisions_offset` and every execution result below `results_offset` (same partition)."""

    __tablename__ = "decide_snapshots"
    __table_args__ = (
        PrimaryKeyConstraint("group_id", "partition"),
        CheckConstraint("decisions_offset >= 0 AND results_offset >= 0", name="offsets_nonneg"),
    )

    group_id: Mapped[str] = mapped_column(Text)  # settings.app_id: the instances sharing the partitions
    partition: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(Text)  # the copy.decisions topic (prefix included) the offsets are on
    decisions_offset: Mapped[int] = mapped_column(BigInteger)  # next copy.decisions offset NOT in the state
    results_offset: Mapped[int] = mapped_column(BigInteger)  # next execution.results offset not in it
    format: Mapped[int] = mapped_column(Integer)  # decide_snapshot.FORMAT; another format is not read
    taken_at: Mapped[datetime] = mapped_column(TZ)
    state: Mapped[bytes] = mapped_column(LargeBinary)
