"""The bounded in-memory queue between receiving and writing.

Bounded in spans, not requests, because memory follows spans. When a batch does not fit, `offer`
refuses the whole batch and the receiver answers retry-later: the client keeps the spans, so
nothing is lost and memory stays bounded under any load.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

__all__ = ["Batch", "SpanQueue"]


@dataclass
class Batch:
    """Normalized spans of one request, and where they sit in the spool log."""

    table: pa.Table
    position: int
    next_position: int
    enqueued_at: float = 0.0  # set by SpanQueue.offer, on the queue's clock

    @property
    def spans(self) -> int:
        return int(self.table.num_rows)


class SpanQueue:
    def __init__(
        self,
        capacity_spans: int,
        on_change: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock`: how old a batch is (the flush interval); tests pass a fake one."""
        self.capacity = capacity_spans
        self._clock = clock
        self._items: deque[Batch] = deque()
        self._size = 0
        self._in_flight = 0  # spans taken by the writer and not yet stored or spooled
        self._taken_from: int | None = None  # spool position of the oldest batch the writer holds
        self._cond = threading.Condition()
        self._closed = False
        self._on_change = on_change

    def __len__(self) -> int:
        return self._size

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._size)

    def oldest_position(self) -> int | None:
        with self._cond:
            return self._items[0].position if self._items else None

    def held_from(self) -> int | None:
        """Spool position of the oldest batch still in memory (queued, or taken by the writer and
        not yet done); None when memory holds none. Spool records before it are backlog: only on
        disk, waiting for a replay."""
        with self._cond:
            if self._taken_from is not None:
                return self._taken_from
            return self._items[0].position if self._items else None

    def has_room(self, spans: int) -> bool:
        return not self._closed and self._size + spans <= self.capacity

    def offer(self, batch: Batch) -> bool:
        """Enqueue the whole batch or nothing; False when full or closed."""
        with self._cond:
            if not self.has_room(batch.spans):
                return False
            batch.enqueued_at = self._clock()
            self._items.append(batch)
            self._size += batch.spans
            self._changed()
            self._cond.notify_all()
            return True

    def take(self, max_spans: int, max_wait_s: float, force: threading.Event | None = None) -> list[Batch]:
        """Wait until `max_spans` are queued, `max_wait_s` passed since the oldest arrived, a
        flush is forced or the queue closes; then hand over up to `max_spans` spans."""
        with self._cond:
            while True:
                if self._items:
                    age = self._clock() - self._items[0].enqueued_at
                    if (
                        self._size >= max_spans
                        or age >= max_wait_s
                        or self._closed
                        or (force is not None and force.is_set())
                    ):
                        break
                    self._cond.wait(timeout=max(0.001, max_wait_s - age))
                elif self._closed:
                    return []
                else:
                    # Nothing queued: hand control back after `max_wait_s`, so the writer's own
                    # timer (probes, replays) runs even when no span arrives.
                    self._cond.wait(timeout=max_wait_s)
                    if not self._items:
                        return []
            # Whole batches only (a batch is one spool record); at least one, even if large.
            out: list[Batch] = []
            taken = 0
            while self._items and (not out or taken + self._items[0].spans <= max_spans):
                b = self._items.popleft()
                out.append(b)
                taken += b.spans
            self._size -= taken
            self._in_flight += taken
            if self._taken_from is None:
                self._taken_from = out[0].position
            self._changed()
            return out

    def done(self, spans: int) -> None:
        """The writer stored (or spooled) `spans` it took."""
        with self._cond:
            self._in_flight -= spans
            if self._in_flight <= 0:
                self._in_flight = 0
                self._taken_from = None
            self._cond.notify_all()

    def wait_empty(self, timeout_s: float) -> bool:
        """True once nothing is queued or in flight."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._size or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=left)
            return True

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Refuse new spans; the writer drains what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
