"""Scorer jobs on APScheduler, each wrapped once: runs, duration, failures and lag are recorded and
an exception is caught, so one failing job never stops the scheduler or the other jobs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import RunResult, ScorerJob

__all__ = ["ScheduledJob", "ScoringService"]

log = logging.getLogger(__name__)

# APScheduler's executor logs two INFO lines per run ("Running job", "executed successfully"): ~80 a
# minute with every scorer and the SLI job. The wrapper below records each run in metrics and logs
# failures, so only the executor's warnings and errors are kept.
logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


class ScheduledJob:
    def __init__(self, job: ScorerJob, interval_s: float) -> None:
        self.job = job
        self.interval_s = interval_s


class ScoringService:
    def __init__(self, jobs: Sequence[ScheduledJob], metrics: ScorerMetrics) -> None:
        self.jobs = list(jobs)
        self.m = metrics
        self._periodic: list[tuple[str, Callable[[], object], float]] = []
        self._sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        # periodic job -> (the scorers whose new scores bring its next run forward, its interval)
        self._after: dict[str, tuple[frozenset[str], float]] = {}
        self._started: dict[str, float] = {}  # periodic job -> monotonic time its last run started
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def run(self, job: ScorerJob) -> RunResult | None:
        """The one wrapper every run goes through."""
        name = job.scorer.name
        t0 = time.perf_counter()
        try:
            r = job.run_once()
        except Exception:
            self.m.runs.labels(name, "error").inc()
            log.exception("scorer job %s failed", name)
            return None
        finally:
            self.m.duration.labels(name).observe(time.perf_counter() - t0)
        self.m.scored.labels(name).inc(r.scored)
        self.m.failed.labels(name).inc(r.failed)
        self.m.lag.labels(name).set(r.lag_s)
        if r.over_budget:
            self.m.over_budget.labels(name).inc(r.over_budget)
        if r.tenant_errors:  # the other tenants were scored; this run was not clean
            self.m.runs.labels(name, "partial").inc()
            self.m.tenant_failures.labels(name).inc(r.tenant_errors)
            return r
        self.m.runs.labels(name, "ok").inc()
        self.m.last_success.labels(name).set(time.time())
        if r.scored:
            self._bring_forward(name)
        return r

    def _bring_forward(self, scorer: str) -> None:
        """Run now the periodic jobs that read this scorer's scores (the SLI and drift job), unless one
        is running or started within the last third of its interval: new scores reach the SLIs as soon
        as they are written instead of up to an interval later, and the job still runs at most about
        three times an interval. APScheduler's interval then counts from this run."""
        if not self._sched.running:
            return
        now = time.monotonic()
        for name, (scorers, interval) in self._after.items():
            if scorer not in scorers:
                continue
            with self._lock:
                if name in self._running or now - self._started.get(name, -1e9) < interval / 3:
                    continue
                self._started[name] = now  # claimed: a scorer finishing a moment later does not trigger again
            job = self._sched.get_job(name)
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    def run_all_once(self) -> dict[str, RunResult | None]:
        return {sj.job.scorer.name: self.run(sj.job) for sj in self.jobs}

    def add_periodic(self, name: str, fn: Callable[[], object], interval_s: float, after: Sequence[str] = ()) -> None:
        """Another periodic job (the SLI computation) under the same wrapper and metrics. `after`:
        scorers whose runs that wrote scores bring its next run forward (see _bring_forward)."""
        self._periodic.append((name, fn, interval_s))
        if after:
            self._after[name] = (frozenset(after), interval_s)

    def run_periodic(self, name: str, fn: Callable[[], object]) -> None:
        """The one wrapper every periodic run goes through (also for jobs run from inside another,
        as the API judges' canaries): runs, duration and failures recorded, an exception logged."""
        t0 = time.perf_counter()
        with self._lock:
            self._running.add(name)
            self._started[name] = time.monotonic()
        try:
            fn()
        except Exception:
            self.m.runs.labels(name, "error").inc()
            log.exception("periodic job %s failed", name)
            return
        finally:
            with self._lock:
                self._running.discard(name)
            self.m.duration.labels(name).observe(time.perf_counter() - t0)
        self.m.runs.labels(name, "ok").inc()
        self.m.last_success.labels(name).set(time.time())

    def start(self) -> None:
        for name, fn, interval in self._periodic:
            self._sched.add_job(self.run_periodic, IntervalTrigger(seconds=interval), args=[name, fn], id=name)
        for sj in self.jobs:
            self._sched.add_job(
                self.run, IntervalTrigger(seconds=sj.interval_s), args=[sj.job], id=sj.job.scorer.name,
                name=f"scorer {sj.job.scorer.name}",
            )  # fmt: skip
        self._sched.start()

    def stop(self, wait: bool = True, timeout_s: float | None = None) -> bool:
        """Start no run; with `wait`, let a running one finish, for at most `timeout_s`.
        False: a run was still going at the deadline (it ends on its own; nothing else starts)."""
        if not self._sched.running:
            return True
        if not wait or timeout_s is None:
            self._sched.shutdown(wait=wait)
            return True
        waiter = threading.Thread(
            target=self._sched.shutdown, kwargs={"wait": True}, name="scheduler-stop", daemon=True
        )
        waiter.start()
        waiter.join(timeout_s)
        return not waiter.is_alive()
