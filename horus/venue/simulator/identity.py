"""How the CLOB simulator names itself: `GET /_sim/identity` answers exactly `identity()`.

A real venue has no such route, so an engine in paper mode asks it before its first request and refuses
to run against anything else (horus.venue.guard). Kept apart from the app so the engine can read these
constants without importing the web framework.
"""
from __future__ import annotations

IDENTITY_PATH = "/_sim/identity"
SIMULATOR_NAME = "horus-clob-sim"
IDENTITY_VERSION = 1


def identity() -> dict:
    return {"simulator": SIMULATOR_NAME, "version": IDENTITY_VERSION}
