"""Decode workers: the CPU-heavy half of ingestion (decode, normalize, redact, Arrow) in processes.

Normalizing is pure Python, so in one process it runs one request at a time under the GIL, next
to the HTTP server, the spool and the writer: measured on 2 cores, that process held the GIL ~75%
of the time and stopped near 16k spans/s while a core sat idle. Worker processes each have their
own interpreter: the receiving process only reads bodies, keeps prepared batches (spool + queue)
and writes them, while the workers' Arrow tables come back whole (pickled buffers, no per-row work).

A worker that dies (OOM kill, a crash in a C extension) breaks the pool: the requests in flight get
retry-later, the pool is rebuilt, and the next request goes on. With `workers=0` the same code runs
on one thread of the receiving process (small machines, or one core).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from driftline.collector.consume import Prepared, Preparer
from driftline.collector.errors import Refused
from driftline.collector.metrics import CollectorMetrics
from driftline.collector.normalize import Normalizer
from driftline.collector.redact import Redactor, parse_patterns
from driftline.pricing import ModelPrice, Pricer

__all__ = ["DecodeWorkers", "PrepareOptions", "build_preparer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareOptions:
    """Everything a worker needs to build its own Preparer (picklable)."""

    max_request_bytes: int
    max_value_bytes: int
    redact: tuple[str, ...] = ()
    price_overrides: dict[str, ModelPrice] = field(default_factory=dict)


def build_preparer(opts: PrepareOptions) -> Preparer:
    redactor = Redactor(parse_patterns(list(opts.redact))) if opts.redact else None
    normalizer = Normalizer(pricer=Pricer(opts.price_overrides), max_value_bytes=opts.max_value_bytes)
    return Preparer(normalizer, redactor, opts.max_request_bytes)


_preparer: Preparer | None = None  # one per worker process


def _init_worker(opts: PrepareOptions, parent: int) -> None:
    global _preparer  # noqa: PLW0603 - one Preparer per worker process, built once
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    _preparer = build_preparer(opts)
    gc.collect()
    gc.freeze()  # price tables and lexicons live for the whole process: keep the GC off them


def _exit_with_parent(parent: int) -> None:
    """A SIGKILLed collector cannot stop its workers, and they hold both ends of their task pipe,
    so they would never see it close: each watches its parent and leaves when it is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _ready() -> bool:
    return _preparer is not None


def _prepare(tenant: str, body: bytes, encoding: str, media: str, ingested_at_ms: int) -> Prepared:
    if _preparer is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("decode worker not initialized")
    return _preparer.prepare_body(tenant, body, encoding, media, ingested_at_ms)


class DecodeWorkers:
    """Runs `Preparer.prepare_body` in `workers` processes (or one thread when `workers` is 0)."""

    def __init__(self, workers: int, opts: PrepareOptions, metrics: CollectorMetrics, local: Preparer) -> None:
        """`local`: this process's Preparer (built from `opts`), used when `workers` is 0."""
        self.workers = workers
        self._opts = opts
        self._m = metrics
        self._lock = threading.Lock()
        self._pool: Executor | None = None
        self._local = local if workers == 0 else None

    def start(self) -> None:
        with self._lock:
            self._pool = self._new_pool()

    def _new_pool(self) -> Executor:
        if self.workers == 0:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="otlp-decode")
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            # spawn, not fork: the parent runs chDB's and gRPC's threads, which fork does not copy.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._opts, os.getpid()),
        )
        # Start every worker now, so the first requests do not wait for interpreters to boot.
        for f in [pool.submit(_ready) for _ in range(self.workers)]:
            f.result(timeout=120)
        return pool

    def worker_pids(self) -> list[int]:
        """The decode worker processes' ids (the pool's are this process's only multiprocessing
        children; the stdlib keeps no public list per pool)."""
        if not isinstance(self._pool, ProcessPoolExecutor):
            return []
        return sorted(p.pid for p in multiprocessing.active_children() if p.pid is not None)

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, tenant: str, body: bytes, encoding: str, media: str, ingested_at_ms: int) -> Future[Prepared]:
        pool = self._pool
        if pool is None:
            raise Refused("decode_unavailable", "collector is not running, retry later", retry_after_s=1)
        try:
            if self._local is not None:
                return pool.submit(self._local.prepare_body, tenant, body, encoding, media, ingested_at_ms)
            return pool.submit(_prepare, tenant, body, encoding, media, ingested_at_ms)
        except BrokenProcessPool:
            raise self._broken(pool) from None
        except RuntimeError:  # shut down meanwhile
            raise Refused("decode_unavailable", "collector is stopping, retry later", retry_after_s=1) from None

    def prepare(self, tenant: str, body: bytes, encoding: str, media: str, ingested_at_ms: int) -> Prepared:
        pool = self._pool
        try:
            return self.submit(tenant, body, encoding, media, ingested_at_ms).result()
        except BrokenProcessPool:
            raise self._broken(pool) from None

    async def prepare_async(self, tenant: str, body: bytes, encoding: str, media: str, ingested_at_ms: int) -> Prepared:
        pool = self._pool
        try:
            return await asyncio.wrap_future(self.submit(tenant, body, encoding, media, ingested_at_ms))
        except BrokenProcessPool:
            raise self._broken(pool) from None

    def _broken(self, broken: Executor | None) -> Refused:
        """A worker died: rebuild the pool once (whoever sees it first) and answer retry-later."""
        with self._lock:
            if self._pool is broken and broken is not None:
                log.error("a decode worker process died; restarting the decode workers")
                self._m.decode_worker_restarts.inc()
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
        return Refused("decode_unavailable", "a decode worker restarted, retry later", retry_after_s=1)
