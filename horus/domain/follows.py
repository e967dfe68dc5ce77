"""Follows as ConfigChange events, from the minimal follow dict the demo and tests use."""

from __future__ import annotations

import json

from horus.domain.config import config_change


def follow_change(follow: dict, source: str, occurred_at_us: int = 0, delete: bool = False) -> dict:
    """A FOLLOW change with whatever fields `follow` has (follow_id, follower, leader required).
    Configs built by `horus follow add` are validated first (horus.domain.config)."""
    body = dict(
        follow,
        follower=follow["follower"].lower(),
        leader=follow["leader"].lower(),
        enabled=bool(follow.get("enabled", True)),
    )
    text = None if delete else json.dumps(body, sort_keys=True, default=str)
    return config_change("FOLLOW", follow["follow_id"], text, source, occurred_at_us)
