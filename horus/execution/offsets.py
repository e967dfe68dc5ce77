"""Which offset of a partition may be committed while messages finish out of order.

Messages of one partition are handed to many follower lanes and finish in any order. The offset to
commit is the lowest offset still unfinished (Kafka's committed offset = the next one to read), or
one past the highest offset seen when nothing is unfinished. Committing that never skips a message
whose work is not done, so a crash re-delivers every unfinished message (the ledger makes that safe).
"""

from __future__ import annotations

import heapq


class OffsetTracker:
    """Unfinished offsets of one partition. Offsets are added in increasing order (as consumed)."""

    __slots__ = ("_heap", "_unfinished", "_next")

    def __init__(self) -> None:
        self._heap: list[int] = []  # min-heap of added offsets; finished ones are dropped lazily
        self._unfinished: set[int] = set()
        self._next: int | None = None  # one past the highest offset added

    def add(self, offset: int) -> None:
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} added after {self._next - 1}: offsets must increase")
        heapq.heappush(self._heap, offset)
        self._unfinished.add(offset)
        self._next = offset + 1

    def done(self, offset: int) -> None:
        """Mark an added offset finished (again, or never added: ignored)."""
        self._unfinished.discard(offset)
        heap = self._heap
        while heap and heap[0] not in self._unfinished:
            heapq.heappop(heap)

    @property
    def in_flight(self) -> int:
        return len(self._unfinished)

    def committable(self) -> int | None:
        """The offset to commit (next to read after a restart), or None before anything was added. Safe to call
        from the consumer thread while the event loop marks offsets done: the heap may lose its last element
        between a check and a read (that IndexError silently ended the commit loop: safety review S2); a
        concurrent `done` only ever moves the answer forward past finished offsets."""
        try:
            return self._heap[0]
        except IndexError:
            return self._next
