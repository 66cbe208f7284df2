"""The judges tenants define through the API, run as scorer jobs without a restart.

One periodic job (`api-judges`, every scorer_interval_s, on every replica) reads each tenant's
judge book and runs each live judge as a ScorerJob of that tenant alone, through the scoring
service's one wrapper (runs, duration, failures, lag per judge name). A judge's job is kept while
its definition and key stay the same (its hourly budget with it) and built anew when they change:
an edited prompt is a new version, with its own watermark and its own scores, never mixed with
the old version's. A judge whose name a built-in scorer, a configured judge or a plugin already
uses is skipped (and logged once): its scores would be indistinguishable from theirs.

A judge with a `canary_dataset` is watched as a configured judge with a canary is
(scorers/judge_canary.py): on replica 0, every `canary_interval_s`, the review golden dataset of
its tenant is re-scored by the judge and compared with the version's pinned baseline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from driftline.config import ScorerJobConfig, ScorerSettings
from driftline.judge_config import endpoint_allowed
from driftline.pricing import Pricer
from driftline.scorers.judge_book import JudgeBook, StoredJudge
from driftline.scorers.judge_cache import JudgeCache
from driftline.scorers.judge_canary import CanaryItem, CanaryJob, reviewed_items
from driftline.scorers.judge_custom import CustomJudgeScorer, JudgeSpec
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.runner import JobOptions, RunResult, ScorerJob
from driftline.store import Store

__all__ = ["ApiJudgeJobs", "api_judge_options"]

log = logging.getLogger(__name__)


OptionsOf = Callable[[ScorerSettings, ScorerJobConfig], JobOptions]


def api_judge_options(settings: ScorerSettings, tenant: str, j: StoredJudge, options: OptionsOf) -> JobOptions:
    """The judge's sampling and filters as a configured scorer's `scorers.<name>` would give them,
    for its own tenant only."""
    d = j.definition
    cfg = ScorerJobConfig(
        interval_s=d.interval_s, sample_rate=d.sample_rate, tenants=[tenant], services=d.services, models=d.models,
        operations=d.operations, releases=d.releases, environments=d.environments, error_only=d.error_only,
        max_spans_per_hour=d.max_spans_per_hour,
    )  # fmt: skip
    return options(settings, cfg)


@dataclass
class _Entry:
    fingerprint: tuple[str, str]  # (definition JSON, key): a change builds the job anew
    job: ScorerJob
    interval_s: float
    last_run: float = -1e18  # monotonic seconds
    canary: CanaryJob | None = None
    canary_interval_s: float = 3600.0
    canary_last_run: float = -1e18


def _dataset_items(store: Store, tenant: str, dataset: str) -> Callable[[], list[CanaryItem]]:
    return lambda: reviewed_items(store, tenant, dataset)


class ApiJudgeJobs:
    def __init__(
        self,
        settings: ScorerSettings,
        store: Store,
        metrics: ScorerMetrics,
        run: Callable[[ScorerJob], RunResult | None],
        options: OptionsOf,
        run_periodic: Callable[[str, Callable[[], object]], None] | None = None,
        taken: Iterable[str] = (),
        pricer: Pricer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`run`: the scoring service's wrapper of scorer runs, `run_periodic` its wrapper of other
        jobs (the canaries; None: no canaries, as on replicas other than 0); `options`: settings ->
        JobOptions (the registry's); `taken`: scorer names already in use in this process."""
        self.settings = settings
        self.store = store
        self.book = JudgeBook(store)
        self.metrics = metrics
        self._run = run
        self._run_periodic = run_periodic
        self._options = options
        self.taken = frozenset(taken)
        self.pricer = pricer
        self.cache = JudgeCache(store)
        self._clock = clock
        self._monotonic = monotonic
        self._jobs: dict[tuple[str, str], _Entry] = {}
        self._jobs_lock = threading.Lock()  # the scheduler's runs and the backfill API's lookups
        self._told: set[tuple[str, str]] = set()
        self._told_endpoint: set[tuple[str, str, str]] = set()

    def run_once(self) -> dict[tuple[str, str], RunResult | None]:
        """Run every live judge that is due; (tenant, judge) -> its run's result."""
        out: dict[tuple[str, str], RunResult | None] = {}
        seen: set[tuple[str, str]] = set()
        for tenant in self.store.cross_tenant.tenants_with_judges():
            for j in self.book.judges(tenant):
                key = (tenant, j.name)
                if not self._runnable(tenant, j):
                    continue
                seen.add(key)
                entry = self._entry(tenant, j)
                now = self._monotonic()
                if now - entry.last_run >= entry.interval_s:
                    entry.last_run = now
                    out[key] = self._run(entry.job)
                canary, run_periodic = entry.canary, self._run_periodic
                if (
                    canary is not None
                    and run_periodic is not None
                    and (now - entry.canary_last_run >= entry.canary_interval_s)
                ):
                    entry.canary_last_run = now
                    run_periodic(canary.name, canary.run_once)
        with self._jobs_lock:
            for gone in set(self._jobs) - seen:  # deleted or disabled: its job (and budget) is dropped
                del self._jobs[gone]
        return out

    def job_for(self, tenant: str, name: str) -> ScorerJob | None:
        """The job of the tenant's judge `name` if it would run now (enabled, its endpoint listed,
        its name not a configured scorer's): what the admin backfill API runs. The same scorer as
        the scheduled runs, so both draw on one hourly budget and one cache."""
        for j in self.book.judges(tenant):
            if j.name == name and self._runnable(tenant, j):
                return self._entry(tenant, j).job
        return None

    def _runnable(self, tenant: str, j: StoredJudge) -> bool:
        """Whether the scorer runs this judge: enabled, its name no configured scorer's, its endpoint
        in this scorer's judge_endpoints (each refusal but the first logged once)."""
        if not j.definition.enabled:
            return False
        key = (tenant, j.name)
        if j.name in self.taken:
            if key not in self._told:
                self._told.add(key)
                log.warning("judge %s of tenant %s is not run: a configured scorer has that name",
                            j.name, tenant)  # fmt: skip
            return False
        # The API checked the endpoint when the judge was stored; the operator's list may have
        # changed since, and the scorer holds to the list it runs with.
        if not endpoint_allowed(j.definition.base_url, self.settings.judge_endpoints):
            told = (*key, j.definition.base_url)
            if told not in self._told_endpoint:
                self._told_endpoint.add(told)
                log.warning("judge %s of tenant %s is not run: its endpoint is not in judge_endpoints",
                            j.name, tenant)  # fmt: skip
            return False
        return True

    def _entry(self, tenant: str, j: StoredJudge) -> _Entry:
        with self._jobs_lock:
            return self._entry_locked(tenant, j)

    def _entry_locked(self, tenant: str, j: StoredJudge) -> _Entry:
        d = j.definition
        fingerprint = (d.model_dump_json(), d.api_key.get_secret_value())
        entry = self._jobs.get((tenant, j.name))
        if entry is not None and entry.fingerprint == fingerprint:
            return entry
        spec = JudgeSpec(name=j.name, definition=d, base_url=d.base_url, model=d.model,
                         api_key=d.api_key.get_secret_value())  # fmt: skip
        scorer = CustomJudgeScorer(spec, self.metrics, cache=self.cache, pricer=self.pricer)
        opts = api_judge_options(self.settings, tenant, j, self._options)
        job = ScorerJob(scorer, self.store, opts, clock=self._clock)
        old = entry
        if old is not None:
            job.carry_hourly_count_from(old.job)
            if isinstance(old.job.scorer, CustomJudgeScorer):
                scorer.budget.carry_from(old.job.scorer.budget)
        entry = _Entry(fingerprint, job, d.interval_s or self.settings.scorer_interval_s)
        if d.canary_dataset:
            items = _dataset_items(self.store, tenant, d.canary_dataset)
            entry.canary = CanaryJob(scorer, self.store, self.metrics, tenant, items, clock=self._clock)
            entry.canary_interval_s = d.canary_interval_s
            if old is not None and old.canary is not None and old.job.scorer.version == scorer.version:
                entry.canary_last_run = old.canary_last_run  # a budget edit is no reason to ask again
        self._jobs[(tenant, j.name)] = entry
        return entry
