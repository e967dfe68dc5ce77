"""What every event carries: its envelope (id, source stage, times, cause). Events themselves are plain dicts
shaped by the Avro schemas in schemas/; horus.codec encodes them, the domain only builds them."""

from __future__ import annotations

import time
from typing import Any


def envelope(
    event_id: str, source: str, occurred_at_us: int, causation_id: str | None = None, produced_at_us: int | None = None
) -> dict[str, Any]:
    """An Envelope record; ``produced_at_us`` defaults to now (epoch microseconds)."""
    if produced_at_us is None:
        produced_at_us = time.time_ns() // 1000
    return {
        "event_id": event_id,
        "occurred_at_us": occurred_at_us,
        "produced_at_us": produced_at_us,
        "source": source,
        "causation_id": causation_id,
    }
