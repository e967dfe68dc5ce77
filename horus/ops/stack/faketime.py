"""Clock skew for a child process: libfaketime preloaded with a fixed offset on the wall clock.

`horus chaos` runs some workers seconds ahead of or behind the others, as machines drift apart. Only the wall
clock moves (`time.time()`, what timestamps and expiries are made of); the monotonic clock stays true, so
timeouts and sleeps keep their length. The library comes from the distribution's `faketime` package, which
`make setup` installs; without it the run fails, it is never silently skipped.
"""

from __future__ import annotations

import glob
from pathlib import Path

from horus.ops.stack.processes import StackError

# the multi-threaded build: every worker runs Kafka client threads beside Python's own
LIBRARY = "libfaketimeMT.so.1"
PLACES = (
    "/usr/lib/*/faketime",
    "/usr/lib/faketime",
    "/usr/lib64/faketime",
    "/usr/local/lib/faketime",
    "/usr/local/lib",
)


def faketime_library() -> Path:
    """The installed libfaketime, or a StackError saying how to install it."""
    for place in PLACES:
        for found in sorted(glob.glob(f"{place}/{LIBRARY}")):
            return Path(found)
    raise StackError(
        f"libfaketime ({LIBRARY}) is not installed; `horus chaos` needs it to skew workers' clocks. "
        "Fix: `make setup` (installs the Debian/Ubuntu package `faketime`), or "
        "`apt-get install -y faketime`"
    )


def skewed_env(offset_s: float) -> dict[str, str]:
    """Environment variables that start a process with its wall clock `offset_s` seconds off (0: none)."""
    if offset_s == 0:
        return {}
    return {"LD_PRELOAD": str(faketime_library()), "FAKETIME": f"{offset_s:+g}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
