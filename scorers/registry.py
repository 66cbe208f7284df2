"""Every scorer Driftline runs, built from settings into scheduled jobs: the built-in scorers, the
custom LLM judges declared in `judges`, and the scorers of installed plugins (scorers/plugins.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from driftline.config import ScorerJobConfig, ScorerSettings
from driftline.pricing import Pricer
from driftline.scorers.base import Scorer
from driftline.scorers.cost import CostScorer, TraceCostScorer
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.judge import HallucinationJudgeScorer, JudgeConfig
from driftline.scorers.judge_cache import JudgeCache
from driftline.scorers.judge_custom import CustomJudgeScorer, JudgeSpec
from driftline.scorers.latency import CriticalPathScorer, LatencyScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.pii import PIIScorer
from driftline.scorers.plugins import load_plugin_scorers
from driftline.scorers.refusal import RefusalScorer
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.scheduler import ScheduledJob
from driftline.scorers.tool_failure import ToolFailureScorer
from driftline.store import Store

__all__ = ["SCORER_NAMES", "build_jobs", "build_scorers", "job_options", "judge_specs"]

# The name each scorer writes on its scores, the judge's included (configured or not): what the
# UI's scorer filter offers, so it never lists a name no score carries.
SCORER_NAMES: tuple[str, ...] = tuple(
    c.name
    for c in (
        OfflineHallucinationScorer,
        HallucinationJudgeScorer,
        ToolFailureScorer,
        RefusalScorer,
        PIIScorer,
        LatencyScorer,
        CriticalPathScorer,
        CostScorer,
        TraceCostScorer,
    )
)


def judge_specs(settings: ScorerSettings) -> list[JudgeSpec]:
    """The configured judges with the settings' endpoint, model and key where they leave them blank."""
    return [
        JudgeSpec(
            name=name,
            definition=d,
            base_url=d.base_url or settings.judge_base_url,
            model=d.model or settings.judge_model,
            api_key=(d.api_key.get_secret_value() or settings.judge_api_key.get_secret_value()),
        )
        for name, d in sorted(settings.judges.items())
    ]


def build_scorers(
    settings: ScorerSettings,
    metrics: ScorerMetrics,
    pricer: Pricer | None = None,
    store: Store | None = None,
    plugins: bool = True,
) -> list[Scorer]:
    """Built-in scorers, configured judges (their cache in `store`, when given) and, with `plugins`,
    the installed plugins' scorers. A name used twice raises ValueError."""
    offline = OfflineHallucinationScorer()
    out: list[Scorer] = [
        offline,
        CostScorer(),
        TraceCostScorer(),
        LatencyScorer(),
        CriticalPathScorer(),
        ToolFailureScorer(),
        RefusalScorer(),
        PIIScorer(),
    ]
    cache = JudgeCache(store) if store is not None else None
    if settings.judge_base_url:
        out.append(
            HallucinationJudgeScorer(
                JudgeConfig(
                    base_url=settings.judge_base_url,
                    model=settings.judge_model,
                    api_key=settings.judge_api_key.get_secret_value(),
                    budget_tokens_per_hour=settings.judge_budget_tokens_per_hour,
                    budget_usd_per_hour=settings.judge_budget_usd_per_hour,
                    concurrency=settings.judge_concurrency,
                ),
                metrics,
                offline=offline,
                pricer=pricer,
                cache=cache,
            )
        )
    for spec in judge_specs(settings):
        if spec.name in SCORER_NAMES:
            raise ValueError(f"judge {spec.name!r} takes the name of a built-in scorer")
        out.append(CustomJudgeScorer(spec, metrics, cache=cache, pricer=pricer))
    if plugins:
        out.extend(load_plugin_scorers(taken=[*SCORER_NAMES, *(s.name for s in out)]))
    return out


def job_options(settings: ScorerSettings, cfg: ScorerJobConfig) -> JobOptions:
    """A scorer's sampling, filters and budget: its `scorers.<name>` over the settings' defaults."""
    filters = {
        k: v
        for k, v in {
            "service": cfg.services,
            "operation": cfg.operations,
            "release": cfg.releases,
            "environment": cfg.environments,
        }.items()
        if v
    }
    return JobOptions(
        sample_rate=settings.scorer_sample_rate if cfg.sample_rate is None else cfg.sample_rate,
        shard_index=settings.replica_index,
        shard_count=settings.replica_count,
        sweep=timedelta(seconds=settings.scorer_sweep_s),
        max_spans_per_run=settings.scorer_max_spans_per_run,
        tenants=tuple(cfg.tenants),
        filters=filters,
        models=tuple(cfg.models),
        error_only=cfg.error_only,
        max_spans_per_hour=cfg.max_spans_per_hour,
        stratum_min_per_hour=(
            settings.scorer_stratum_min_per_hour if cfg.stratum_min_per_hour is None else cfg.stratum_min_per_hour
        ),
    )


def build_jobs(
    settings: ScorerSettings,
    store: Store,
    metrics: ScorerMetrics,
    pricer: Pricer | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[ScheduledJob]:
    scorers = build_scorers(settings, metrics, pricer, store)
    known = {s.name for s in scorers}
    unknown = sorted(set(settings.scorers) - known - {"hallucination_judge"})
    if unknown:
        raise ValueError(f"scorers: unknown scorer {unknown[0]!r} (known: {', '.join(sorted(known))})")
    jobs: list[ScheduledJob] = []
    for s in scorers:
        cfg = settings.scorers.get(s.name, ScorerJobConfig())
        if not cfg.enabled:
            continue
        job = ScorerJob(s, store, job_options(settings, cfg), clock=clock)
        jobs.append(ScheduledJob(job, cfg.interval_s or settings.scorer_interval_s))
    return jobs
