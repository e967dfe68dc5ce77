"""The topic catalogue (DESIGN section 2): names, what keys them, and how long they keep data."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    compacted: bool = False
    event_type: str = field(kw_only=True)  # the Avro record most messages on it carry


LEADER_FILLS = TopicSpec("leader.fills", key="leader", event_type="LeaderFill")
COPY_CANDIDATES = TopicSpec("copy.candidates", key="follower", event_type="CopyCandidate")
COPY_DECISIONS = TopicSpec("copy.decisions", key="follower", event_type="CopyDecision")
EXECUTION_RESULTS = TopicSpec("execution.results", key="follower", event_type="ExecutionResult")
SETTLEMENT_EVENTS = TopicSpec("settlement.events", key="follower", event_type="SettlementEvent")
CONFIG_CHANGES = TopicSpec("config.changes", key="config id", compacted=True, event_type="ConfigChange")
CONTROL_COMMANDS = TopicSpec("control.commands", key="scope", compacted=True, event_type="ControlCommand")
DEAD_LETTERS = TopicSpec("dead.letters", key="source topic", event_type="DeadLetter")

ALL_TOPICS: tuple[TopicSpec, ...] = (
    LEADER_FILLS,
    COPY_CANDIDATES,
    COPY_DECISIONS,
    EXECUTION_RESULTS,
    SETTLEMENT_EVENTS,
    CONFIG_CHANGES,
    CONTROL_COMMANDS,
    DEAD_LETTERS,
)
