"""Key-ordered concurrency: one lane (an asyncio task) per key, jobs of one key strictly in order,
different keys concurrently. A lane exists only while it has work, so a million followers cost
nothing when idle. `in_flight` counts jobs queued or running (the runner's back-pressure signal).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any

log = logging.getLogger("horus.execution")


class KeyedLanes:
    def __init__(self, run: Callable[[Any], Awaitable[None]], done: Callable[[Any, BaseException | None], None]):
        self._run = run
        self._done = done
        self._queues: dict[Hashable, deque] = {}
        self._tasks: dict[Hashable, asyncio.Task] = {}
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, key: Hashable, job: Any) -> None:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(job)
        self.in_flight += 1
        self._idle.clear()
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._lane(key, queue), name=f"lane-{key}")

    async def _lane(self, key: Hashable, queue: deque) -> None:
        try:
            while queue:
                job = queue[0]
                error: BaseException | None = None
                try:
                    await self._run(job)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the runner decides what a failed job means (no commit past it)
                    error = exc
                queue.popleft()
                self.in_flight -= 1
                self._done(job, error)
        finally:
            self._tasks.pop(key, None)
            if not queue:
                self._queues.pop(key, None)
            if self.in_flight == 0:
                self._idle.set()

    def jobs(self) -> Iterator[Any]:
        """Every job queued or running."""
        for queue in self._queues.values():
            yield from queue

    @property
    def lanes(self) -> int:
        return len(self._tasks)

    async def wait_idle(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def cancel(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
