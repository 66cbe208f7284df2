"""The write queue and the tenant rate limiter, alone: bounds, hand-over, idle return, fake clock."""

from __future__ import annotations

import threading

import pyarrow as pa

from driftline.collector.buffer import Batch, SpanQueue
from driftline.collector.ratelimit import TenantRateLimiter


def _batch(pos: int, n: int) -> Batch:
    return Batch(pa.table({"i": list(range(n))}), pos, pos + 10)


def test_offer_is_all_or_nothing_within_capacity() -> None:
    q = SpanQueue(10)
    assert q.offer(_batch(0, 6))
    assert not q.offer(_batch(10, 5))  # would be 11
    assert q.offer(_batch(10, 4)) and len(q) == 10
    q.close()
    assert not q.offer(_batch(20, 0))


def test_take_hands_whole_batches_up_to_the_limit_and_tracks_what_memory_holds() -> None:
    q = SpanQueue(100)
    for i in range(4):
        q.offer(_batch(i * 10, 5))
    assert q.held_from() == 0
    out = q.take(12, 0.0)
    assert [b.position for b in out] == [0, 10] and len(q) == 10
    assert q.held_from() == 0  # taken, not yet done: still in memory
    q.done(10)
    assert q.held_from() == 20
    q.done(0)
    assert [b.position for b in q.take(1, 0.0)] == [20]  # at least one batch, even past the limit
    q.done(5)
    assert [b.position for b in q.take(100, 0.0)] == [30]
    q.done(5)
    assert q.held_from() is None and q.wait_empty(0)


def test_take_returns_when_idle_so_the_writer_timer_runs() -> None:
    q = SpanQueue(100)
    assert q.take(10, 0.01) == []  # before: waited for a span for ever


def test_take_returns_what_is_left_once_closed() -> None:
    q = SpanQueue(100)
    q.offer(_batch(0, 3))
    q.close()
    assert [b.position for b in q.take(10, 3600)] == [0]
    assert q.take(10, 3600) == []


def test_force_hands_over_a_young_batch() -> None:
    q = SpanQueue(100)
    q.offer(_batch(0, 3))
    force = threading.Event()
    force.set()
    assert [b.position for b in q.take(10, 3600, force)] == [0]


class _Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rate_limiter_refills_per_tenant_with_the_clock() -> None:
    clock = _Clock()
    rl = TenantRateLimiter(10, burst_s=2, clock=clock)
    assert rl.try_take("a", 20) == 0  # the burst
    assert rl.try_take("a", 5) >= 1  # empty
    assert rl.try_take("b", 20) == 0  # another tenant has its own bucket
    clock.t += 1.0
    assert rl.try_take("a", 10) == 0  # refilled at 10/s
    assert rl.try_take("a", 1) >= 1
    assert rl.try_take("a", 50) >= 2  # larger than the burst: waits for a full bucket


def test_rate_limiter_peeks_without_taking_and_forgets_full_buckets() -> None:
    from driftline.collector import ratelimit

    clock = _Clock()
    rl = TenantRateLimiter(1, burst_s=3, clock=clock)
    assert rl.wait_for("a") == 0 and rl.wait_for("a") == 0  # looking takes nothing
    assert [rl.try_take("a", 1) for _ in range(3)] == [0, 0, 0]
    assert rl.wait_for("a") == 1 and rl.try_take("a", 1) == 1  # empty: 1 s to the next token
    # Many keys (one per client address) do not pile up: buckets that have filled again are dropped.
    for k in range(ratelimit._KEYS_KEPT + 1):
        rl.try_take(f"k{k}", 1)
    clock.t += 10.0
    rl.try_take("new", 1)
    assert len(rl._buckets) <= 2  # the new key, and none of the refilled ones
    assert rl.wait_for("a") == 0  # a dropped bucket starts full, as it would have been


def test_split_by_days_keeps_every_row_and_bounds_the_days_per_part() -> None:
    from driftline.collector.batch import rows_to_table
    from driftline.store.partitions import split_by_days

    day = 86_400 * 10**9
    t0 = 1_800_000_000 * 10**9
    rows = [
        {"trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "start_time": t0 + (i * 37 % 130) * day + i}
        for i in range(400)
    ]
    for r in rows:
        r["end_time"] = r["start_time"]
    table = rows_to_table("t", rows, 0)
    parts = list(split_by_days(table, 50))
    assert [len({s.value // day for s in p.column("start_time")}) for p in parts] == [50, 50, 30]
    assert sorted(s for p in parts for s in p.column("span_id").to_pylist()) == sorted(
        f"{i + 1:016x}" for i in range(400)
    )
    assert list(split_by_days(table.slice(0, 3), 50)) == [table.slice(0, 3)]  # few days: as is


def test_the_flush_interval_runs_on_the_queues_clock() -> None:
    """A batch is handed over once it is `max_wait_s` old by the queue's clock (a fake one here)."""
    now = [100.0]
    q = SpanQueue(100, clock=lambda: now[0])
    q.offer(_batch(0, 3))
    assert q.take(50, 0.0) != []  # due at once with no wait
    q.done(3)
    q.offer(_batch(10, 3))
    now[0] += 3600  # an hour later by the clock: due without any real wait
    got: list[list[Batch]] = []
    t = threading.Thread(target=lambda: got.append(q.take(50, 3600.0)))
    t.start()
    t.join(10)  # a bound, not a wait: take returns at once
    assert not t.is_alive() and [b.position for b in got[0]] == [10]
    q.close()
