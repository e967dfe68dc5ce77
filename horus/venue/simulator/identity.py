"""How the CLOB simulator names itself: `GET /_sim/identity` answers exactly `identity()`.

A real venue has no such route, so an engine in paper mode asks it before its first request and refuses
to run against anything else (horus.venue.guard). Kept apart from the app so the engine can read these
constants without importing the web framework.

`follow_leaders` says the simulator is a paper venue that starts empty (what `horus stack up` runs): its
markets are made and moved by the engine as the leaders trade (horus.venue.paper.PaperMarkets). A simulator
seeded with its own markets (tests, the demo, chaos) says false and its books are left alone.
"""

from __future__ import annotations

IDENTITY_PATH = "/_sim/identity"
SIMULATOR_NAME = "horus-clob-sim"
IDENTITY_VERSION = 1


def identity(follow_leaders: bool = False) -> dict:
    return {"simulator": SIMULATOR_NAME, "version": IDENTITY_VERSION, "follow_leaders": follow_leaders}
