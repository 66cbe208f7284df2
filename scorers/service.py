"""The scorer service: scheduled scorer jobs, the SLI and drift job, assembled from settings.

It reads stored spans and writes scores; it never receives OTLP, so it starts no decode worker and
no receiver. Stop: the scheduler starts no run and a running one may finish, up to the deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from driftline.auth import Authenticator
from driftline.config import ConfigError, ScorerSettings
from driftline.judge_config import CanaryConfig
from driftline.pricing import Pricer
from driftline.review.agreement import AgreementJob
from driftline.review.desk import ReviewDesk
from driftline.review.fill import QueueFiller, ReviewMetrics
from driftline.scorers.backfill_api import Backfills, backfill_router
from driftline.scorers.judge_api_jobs import ApiJudgeJobs
from driftline.scorers.judge_canary import CanaryItem, CanaryJob, load_canary_file, reviewed_items
from driftline.scorers.judge_custom import CustomJudgeScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.registry import SCORER_NAMES, build_jobs, job_options
from driftline.scorers.scheduler import ScoringService
from driftline.service import Service
from driftline.sli import SLI_SCORERS, SLIJob, options_from
from driftline.store import Store

__all__ = ["ScorerService", "run"]

log = logging.getLogger(__name__)


class ScorerService(Service):
    name = "scorer"

    def __init__(
        self,
        settings: ScorerSettings,
        store: Store,
        registry: CollectorRegistry,
        pricer: Pricer | None = None,
        auth: Authenticator | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`auth`: serve the admin backfill API with these keys (none: no HTTP routes); `clock`:
        the scorer jobs' (tests move it)."""
        self.settings = settings
        self.store = store
        self.metrics = ScorerMetrics(registry)
        self.pricer = pricer or Pricer(settings.model_prices())
        try:
            jobs = build_jobs(settings, store, self.metrics, self.pricer, clock=clock)
        except ValueError as e:  # a scorer name in `scorers` that does not exist
            raise ConfigError(f"invalid scorers: {e}") from None
        self.scoring = ScoringService(jobs, self.metrics)
        self.auth = auth
        self.sli: SLIJob | None = None
        if settings.scorers_enabled and settings.replica_index == 0:
            # One replica serves SLIs, so each series exists once; registered only where the job
            # runs, so a stale SLI shows as missing rather than frozen.
            self.sli = SLIJob(store, options_from(settings))
            registry.register(self.sli.collector)
            self.scoring.add_periodic("sli", self.sli.run_once, settings.sli_interval_s, after=SLI_SCORERS)
        # Judges tenants define through the API: read from the store at every run, on every replica
        # (each scores its own shard), so a new or edited judge runs without a restart.
        self.api_judges = ApiJudgeJobs(
            settings, store, self.metrics, run=self.scoring.run, options=job_options, pricer=self.pricer,
            taken={*SCORER_NAMES, *(sj.job.scorer.name for sj in jobs)}, clock=clock,
            run_periodic=self.scoring.run_periodic if settings.replica_index == 0 else None,
        )  # fmt: skip
        self.backfills = Backfills({sj.job.scorer.name: sj.job for sj in jobs}, more=self.api_judges.job_for)
        if settings.scorers_enabled:
            self.scoring.add_periodic("api-judges", self.api_judges.run_once, settings.scorer_interval_s)
        self.canaries: list[CanaryJob] = []
        if settings.scorers_enabled and settings.replica_index == 0:
            for sj in jobs:
                scorer = sj.job.scorer
                if isinstance(scorer, CustomJudgeScorer) and scorer.d.canary is not None:
                    cfg = scorer.d.canary
                    canary = CanaryJob(scorer, store, self.metrics, cfg.tenant, _canary_items(cfg, store))
                    try:
                        if cfg.file is not None:
                            load_canary_file(cfg.file)  # a bad canary file stops start-up, naming it
                    except (OSError, ValueError) as e:
                        raise ConfigError(f"invalid judges.{scorer.name}.canary: {e}") from None
                    self.canaries.append(canary)
                    self.scoring.add_periodic(canary.name, canary.run_once, cfg.interval_s)
        # Review queues: one filler (it owns the hourly caps) and one agreement series, on replica 0.
        self.review = ReviewDesk(store, settings.review_queues)
        self.filler: QueueFiller | None = None
        self.agreement: AgreementJob | None = None
        if settings.scorers_enabled and settings.replica_index == 0:
            self.filler = QueueFiller(self.review, ReviewMetrics(registry))
            self.scoring.add_periodic("review-fill", self.filler.run_once, settings.review_fill_interval_s)
            self.agreement = AgreementJob(self.review, timedelta(seconds=settings.review_agreement_window_s))
            registry.register(self.agreement.collector)
            self.scoring.add_periodic("review-agreement", self.agreement.run_once, settings.review_agreement_interval_s)

    def start(self) -> None:
        if self.settings.scorers_enabled:
            self.scoring.start()
            log.info("scorer started: %d jobs, replica %d of %d", len(self.scoring.jobs),
                     self.settings.replica_index, self.settings.replica_count)  # fmt: skip

    def routers(self) -> list[APIRouter]:
        return [backfill_router(self.backfills, self.auth)] if self.auth is not None else []

    def describe(self, base_url: str) -> list[str]:
        s = self.settings
        work = f"{len(self.scoring.jobs)} scorers, shard {s.replica_index} of {s.replica_count}"
        return [f"health {base_url}/healthz", work if s.scorers_enabled else "scorers off"]

    def stop_jobs(self, deadline: float) -> None:
        if not self.scoring.stop(wait=True, timeout_s=max(0.1, deadline - time.monotonic())):
            log.warning("a scorer run was still going at the shutdown deadline")
        self.backfills.wait(max(0.1, deadline - time.monotonic()))


def _canary_items(cfg: CanaryConfig, store: Store) -> Callable[[], list[CanaryItem]]:
    """A judge's canary items, read again at every run (an edited file or a grown dataset counts)."""

    def items() -> list[CanaryItem]:
        out = load_canary_file(cfg.file) if cfg.file is not None else []
        if cfg.dataset:
            out += reviewed_items(store, cfg.tenant, cfg.dataset)
        return out

    return items


def run(settings: ScorerSettings) -> int:
    """`driftline scorer`: one scorer replica (its shard of the scorers; SLIs on replica 0)."""
    from driftline.process import run_services

    return run_services(
        "scorer", settings, lambda ctx: [ScorerService(settings, ctx.store, ctx.registry, auth=ctx.auth)]
    )
