"""The venue's clock, as bounds on this host's: "nothing is sent at or after the intent's expiry" is judged by the
time the venue receives the order, not by a worker whose clock may run seconds behind (the chaos run skews them).

`GET /time` answers whole seconds, so one reading gives bounds rather than a value: while the request was in
flight the venue's clock read `s` (to `s + 1`), so at any local moment `t`

    venue_now(t) <= t + (s + 1 - sent)          (latest)
    venue_now(t) >= t + (s - answered)          (earliest)

The executor stops sending once the LATEST possible venue time reaches an expiry (it loses at most a second of
an intent's life, never sends late) and proves an order absent only once the EARLIEST possible venue time is past
the expiry and its grace. Without a reading (the venue does not answer /time) both bounds are this host's clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("horus.execution")


def _local_us() -> int:
    return time.time_ns() // 1000


class VenueClock:
    def __init__(self, venue: Any = None, *, local_us: Callable[[], int] = _local_us) -> None:
        self.venue = venue
        self._local_us = local_us
        self.latest_offset_us = 0
        self.earliest_offset_us = 0
        self.measured = False

    async def measure(self) -> bool:
        """Read the venue's /time once; True if the bounds were updated."""
        if self.venue is None:
            return False
        sent = self._local_us()
        reply = await self.venue.server_time()
        answered = self._local_us()
        if not reply.ok or isinstance(reply.body, bool) or not isinstance(reply.body, (int, float)):
            log.warning(
                "venue clock: /time gave no usable answer (HTTP %s); keeping %s",
                reply.status_code,
                "the last reading" if self.measured else "this host's clock",
            )
            return False
        seconds = int(reply.body)
        self.latest_offset_us = (seconds + 1) * 1_000_000 - sent
        self.earliest_offset_us = seconds * 1_000_000 - answered
        if not self.measured or abs(self.latest_offset_us) > 2_000_000:
            log.info(
                "venue clock: between %+.3fs and %+.3fs from this host's",
                self.earliest_offset_us / 1e6,
                self.latest_offset_us / 1e6,
            )
        self.measured = True
        return True

    def latest_us(self) -> int:
        """The latest the venue's clock can read now."""
        return self._local_us() + self.latest_offset_us

    def earliest_us(self) -> int:
        """The earliest the venue's clock can read now."""
        return self._local_us() + self.earliest_offset_us
