"""Follows as ConfigChange events (the minimal form; the copy-decisions issue adds sizing and limits)."""
from __future__ import annotations

import json

from horus.codec import envelope
from horus.domain.ids import make_id


def follow_change(follow: dict, source: str, occurred_at_us: int = 0, delete: bool = False) -> dict:
    body = {"follow_id": follow["follow_id"], "follower": follow["follower"].lower(),
            "leader": follow["leader"].lower(), "enabled": bool(follow.get("enabled", True))}
    op, text = ("DELETE", None) if delete else ("UPSERT", json.dumps(body, sort_keys=True))
    # the id covers what changed, so two different changes at one instant never share an id
    event_id = make_id("config-change", "FOLLOW", follow["follow_id"], op, text, occurred_at_us)
    return {
        "envelope": envelope(event_id, source, occurred_at_us),
        "entity": "FOLLOW",
        "entity_id": follow["follow_id"],
        "op": op,
        "body": text,
    }
