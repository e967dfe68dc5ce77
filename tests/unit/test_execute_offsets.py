"""Offsets never pass an unfinished message; lanes keep one key in order and run keys side by side."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from horus.execution.lanes import KeyedLanes
from horus.execution.offsets import OffsetTracker


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=60), st.randoms())
def test_committable_is_always_the_lowest_unfinished_offset(gaps, rnd):
    offsets, at = [], 10
    for gap in gaps:  # increasing offsets with holes (compaction, transaction markers)
        offsets.append(at)
        at += gap
    tracker = OffsetTracker()
    done: set[int] = set()
    pending = list(offsets)
    added = []
    while pending or len(done) < len(added):
        if pending and (rnd.random() < 0.5 or len(done) == len(added)):
            tracker.add(pending[0])
            added.append(pending.pop(0))
        else:
            offset = rnd.choice([o for o in added if o not in done])
            tracker.done(offset)
            done.add(offset)
        unfinished = [o for o in added if o not in done]
        expected = min(unfinished) if unfinished else added[-1] + 1
        assert tracker.committable() == expected  # never past an unfinished one, never behind the finished prefix
        assert tracker.in_flight == len(unfinished)


def test_empty_tracker_and_misuse():
    tracker = OffsetTracker()
    assert tracker.committable() is None
    tracker.add(5)
    tracker.done(99)  # never added: ignored
    assert tracker.committable() == 5
    try:
        tracker.add(4)
    except ValueError as exc:
        assert "must increase" in str(exc)
    else:
        raise AssertionError("decreasing offset accepted")


def test_lanes_serialise_one_key_and_overlap_keys():
    log: list[tuple[str, str, int]] = []
    finished: list[tuple[str, int]] = []

    async def run(job):
        key, n = job
        log.append(("start", key, n))
        await asyncio.sleep(0.05)
        log.append(("end", key, n))

    async def main():
        lanes = KeyedLanes(run, lambda job, error: finished.append(job))
        for n in range(3):
            lanes.submit("a", ("a", n))
        for key in "bcdef":
            lanes.submit(key, (key, 0))
        assert lanes.in_flight == 8
        started = asyncio.get_running_loop().time()
        assert await lanes.wait_idle(5)
        return asyncio.get_running_loop().time() - started

    elapsed = asyncio.run(main())
    a_events = [(kind, n) for kind, key, n in log if key == "a"]
    assert a_events == [("start", 0), ("end", 0), ("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    assert elapsed < 0.3  # 5 other keys overlapped with a's three jobs instead of queueing behind them
    assert len(finished) == 8
