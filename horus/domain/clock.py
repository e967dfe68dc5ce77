"""How far a leader fill's time may run ahead of our clock.

Fill times come from other machines (block timestamps, Data API rows, replay files), and clocks differ by
seconds. A fill dated further ahead than this slack is not a fresh fill but a bad one (a unit mix-up such
as microseconds read as milliseconds, a skewed or hostile source): copied "as fresh", a backfill of old
fills would be traded at their old prices. So every ingest source refuses such a fill, and decide SKIPs
a candidate of one with FILL_IN_FUTURE. decide's dedup window is kept this much longer than the oldest
fill any follow may copy, for the same reason: a candidate decided up to this slack "early" is still
young when it is redelivered.
"""

from __future__ import annotations

CLOCK_SLACK_S = 60
CLOCK_SLACK_US = CLOCK_SLACK_S * 1_000_000


def in_future(occurred_at_us: int, now_us: int) -> bool:
    """True when a fill at `occurred_at_us` is dated beyond the clock slack ahead of `now_us`."""
    return occurred_at_us > now_us + CLOCK_SLACK_US


def future_detail(occurred_at_us: int, now_us: int) -> str:
    """Why such a fill is refused, for SKIP details and dead letters."""
    return (
        f"leader fill is dated {(occurred_at_us - now_us) / 1_000_000:.1f}s ahead of our clock "
        f"(at most {CLOCK_SLACK_S}s of clock difference is allowed)"
    )
