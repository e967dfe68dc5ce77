"""The operator tools' write side: one config change or one control command onto its compacted topic,
keyed by what it changes, and acknowledged by the broker before the caller reports it.

The read side is `projections.queries`.
"""

from __future__ import annotations

import time
from typing import Any

from horus.codec import default_codec
from horus.domain.config import config_change, config_key
from horus.domain.control import control_command, control_key
from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
from horus.settings import Settings
from horus.topics import CONFIG_CHANGES, CONTROL_COMMANDS, TopicSpec


class NotAccepted(Exception):
    """The broker did not acknowledge the event."""


def publish_config(settings: Settings, entity: str, entity_id: str, config: Any | None) -> tuple[dict, tuple[int, int]]:
    """One ConfigChange from the CLI: an UPSERT of `config`, or a DELETE when it is None. Returns the change
    and its (partition, offset). Raises NotAccepted."""
    change = config_change(entity, entity_id, config, "cli", occurred_at_us=time.time_ns() // 1000)
    key = config_key(entity, entity_id)
    return change, _produce_acknowledged(settings, CONFIG_CHANGES, "ConfigChange", change, key, "change")


def send_control(
    settings: Settings, scope: str, verb: str, target: str | None, reason: str | None, issued_by: str | None
) -> tuple[dict, tuple[int, int]]:
    """One ControlCommand keyed by its switch. Returns it and its (partition, offset). Raises ControlError (a
    command the rules refuse) and NotAccepted."""
    command = control_command(
        scope, verb, target, reason=reason, issued_by=issued_by, occurred_at_us=time.time_ns() // 1000
    )
    key = control_key(scope, command["target"])
    return command, _produce_acknowledged(settings, CONTROL_COMMANDS, "ControlCommand", command, key, "command")


def _produce_acknowledged(
    settings: Settings, topic: TopicSpec, record_type: str, record: dict, key: str, called: str
) -> tuple[int, int]:
    """Produce one record and wait for its delivery report. Returns its (partition, offset); raises NotAccepted
    (naming the record as `called`)."""
    reports: list = []
    producer = make_producer(settings, log_level=3)
    produce_reliably(
        producer,
        settings.topic(topic.name),
        default_codec().encode(record_type, record),
        key=key,
        on_delivery=lambda err, msg: reports.append(err if err is not None else (msg.partition(), msg.offset())),
    )
    flush_or_raise(producer)
    if not reports or not isinstance(reports[0], tuple):
        raise NotAccepted(
            f"{topic.name} did not accept the {called}: {reports[0] if reports else 'no delivery report'}"
        )
    return reports[0]
