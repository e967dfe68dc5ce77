"""An async TTL cache with one request in flight per key: concurrent askers of a missing or expired key
share one load (a cancelled asker does not cancel it for the others). A failed load caches nothing; by
default it answers the last good value, if any, so a flaky venue degrades to slightly stale data, never to
an exception in the stage. With `keep_last_on_error=False` the failure reaches every asker instead (for
values that must not be stale, such as a follower's account).

With `refresh_ahead=f`, a hit on a value older than f x TTL (still fresh) answers at once and starts one
reload in the background, so a key asked for steadily never makes its asker wait for the venue (a decide
batch blocked ~60 ms on every expiry before)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger(__name__)


class SingleFlightCache(Generic[K, V]):
    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        ttl_s: float,
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        keep_last_on_error: bool = True,
        refresh_ahead: float | None = None,
    ) -> None:
        self._load, self.ttl_s, self.name, self._clock = load, ttl_s, name, clock
        self.keep_last_on_error = keep_last_on_error
        if refresh_ahead is not None and not (0 < refresh_ahead < 1 and keep_last_on_error):
            raise ValueError("refresh_ahead is a fraction of the TTL in (0, 1), for keep_last_on_error caches")
        self._refresh_at = None if refresh_ahead is None else ttl_s * (1 - refresh_ahead)  # seconds before expiry
        self._values: dict[K, tuple[V, float]] = {}
        self._inflight: dict[K, asyncio.Future[V | None]] = {}
        self.loads = 0

    def peek(self, key: K) -> V | None:
        """The cached value, fresh or not, without any request."""
        entry = self._values.get(key)
        return None if entry is None else entry[0]

    def put(self, key: K, value: V) -> None:
        self._values[key] = (value, self._clock() + self.ttl_s)

    def forget(self, key: K) -> None:
        self._values.pop(key, None)

    async def get(self, key: K) -> V | None:
        entry = self._values.get(key)
        if entry is not None:
            left = entry[1] - self._clock()
            if left > 0:
                if self._refresh_at is not None and left <= self._refresh_at and key not in self._inflight:
                    self._start(key)  # answered now; the next asker gets the reloaded value
                return entry[0]
        return await asyncio.shield(self._inflight.get(key) or self._start(key))

    def _start(self, key: K) -> asyncio.Future[V | None]:
        task = asyncio.ensure_future(self._fetch(key))
        self._inflight[key] = task

        def landed(_done: asyncio.Future[V | None]) -> None:
            self._inflight.pop(key, None)

        task.add_done_callback(landed)
        return task

    async def _fetch(self, key: K) -> V | None:
        self.loads += 1
        try:
            value = await self._load(key)
        except Exception as exc:  # noqa: BLE001 - logged; the caller decides with what is known
            if not self.keep_last_on_error:
                raise
            log.warning("%s: loading %s failed: %s: %s", self.name, key, type(exc).__name__, exc)
            return self.peek(key)
        self.put(key, value)
        return value
