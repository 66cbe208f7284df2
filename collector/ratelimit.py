"""Per-tenant token buckets in spans per second; a tenant over its rate gets 429 + Retry-After."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["TenantRateLimiter"]


class TenantRateLimiter:
    def __init__(self, spans_per_s: float, burst_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = spans_per_s
        self.capacity = spans_per_s * burst_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, last refill)
        self._lock = threading.Lock()

    def try_take(self, tenant: str, spans: int) -> float:
        """0 when allowed; otherwise the seconds to wait before the request would fit."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(tenant, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            need = min(spans, self.capacity)  # a request larger than the burst waits for a full bucket
            if tokens >= need:
                self._buckets[tenant] = (tokens - spans, now)
                return 0.0
            self._buckets[tenant] = (tokens, now)
            return max(1.0, math.ceil((need - tokens) / self.rate))
