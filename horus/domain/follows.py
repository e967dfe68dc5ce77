"""Follows as ConfigChange events (the minimal form; the copy-decisions issue adds sizing and limits)."""
from __future__ import annotations

import json

from horus.codec import envelope


def follow_change(follow: dict, source: str, occurred_at_us: int = 0, delete: bool = False) -> dict:
    body = {"follow_id": follow["follow_id"], "follower": follow["follower"].lower(),
            "leader": follow["leader"].lower(), "enabled": bool(follow.get("enabled", True))}
    return {
        "envelope": envelope(f"follow:{follow['follow_id']}:{occurred_at_us}", source, occurred_at_us),
        "entity": "FOLLOW",
        "entity_id": follow["follow_id"],
        "op": "DELETE" if delete else "UPSERT",
        "body": None if delete else json.dumps(body, sort_keys=True),
    }
