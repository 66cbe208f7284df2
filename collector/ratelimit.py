"""Token buckets per key (a tenant's spans per second; the web UI's failed sign-ins per client
address); a key over its rate gets 429 + Retry-After."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["TenantRateLimiter"]


# Keys kept before the buckets that have filled up again are dropped (one per client address can
# be many): a full bucket is what a key never seen gets anyway.
_KEYS_KEPT = 10_000


class TenantRateLimiter:
    def __init__(self, spans_per_s: float, burst_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = spans_per_s
        self.capacity = spans_per_s * burst_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, last refill)
        self._lock = threading.Lock()

    def try_take(self, tenant: str, spans: int) -> float:
        """0 when allowed; otherwise the seconds to wait before the request would fit."""
        return self._take(tenant, spans, take=True)

    def wait_for(self, key: str, n: int = 1) -> float:
        """What try_take(key, n) would answer, taking nothing."""
        return self._take(key, n, take=False)

    def _take(self, key: str, n: int, take: bool) -> float:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            need = min(n, self.capacity)  # a request larger than the burst waits for a full bucket
            if tokens >= need:
                if take:
                    self._buckets[key] = (tokens - n, now)
                    if len(self._buckets) > _KEYS_KEPT:
                        self._drop_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return max(1.0, math.ceil((need - tokens) / self.rate))

    def _drop_full(self, now: float) -> None:
        full = [k for k, (tok, last) in self._buckets.items() if tok + (now - last) * self.rate >= self.capacity]
        for k in full:
            del self._buckets[k]
