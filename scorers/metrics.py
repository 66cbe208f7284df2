"""The scorers' metrics; the registry is passed in, labels come from small fixed sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ScorerMetrics"]


class ScorerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        p = "driftline_scorer_"
        self.runs = Counter(p + "runs_total", "Scorer job runs by outcome.", ["scorer", "outcome"], registry=registry)
        self.duration = Histogram(
            p + "run_duration_seconds", "Duration of one scorer job run.", ["scorer"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=registry,
        )  # fmt: skip
        self.scored = Counter(p + "scored_spans_total", "Spans scored.", ["scorer"], registry=registry)
        self.failed = Counter(p + "failed_spans_total", "Spans a scorer raised on.", ["scorer"], registry=registry)
        self.over_budget = Counter(
            p + "over_budget_spans_total",
            "Spans left unscored because the tenant reached the scorer's max_spans_per_hour.",
            ["scorer"],
            registry=registry,
        )
        self.tenant_failures = Counter(
            p + "tenant_failures_total",
            "Tenant runs that failed (the store refused them; logged by tenant); the other tenants go on.",
            ["scorer"],
            registry=registry,
        )
        self.lag = Gauge(
            p + "lag_seconds",
            "How far behind ingestion the scorer's watermark is.",
            ["scorer"],
            registry=registry,
        )
        self.last_success = Gauge(
            p + "last_success_timestamp_seconds",
            "When the scorer last ran cleanly.",
            ["scorer"],
            registry=registry,
        )
        j = "driftline_judge_"
        self.judge_calls = Counter(
            j + "calls_total",
            "LLM judge calls by judge and outcome (ok, cached, error, malformed, skipped_confident, over_budget).",
            ["judge", "tenant", "outcome"], registry=registry,
        )  # fmt: skip
        self.judge_retries = Counter(
            j + "retries_total", "Judge calls retried after a transient failure (429, 5xx, timeout).",
            ["judge", "tenant"], registry=registry,
        )  # fmt: skip
        self.judge_tokens = Counter(
            j + "tokens_total", "Tokens the judge used.", ["judge", "tenant", "direction"], registry=registry
        )
        self.judge_spend = Counter(
            j + "spend_usd_total", "USD the judge spent.", ["judge", "tenant"], registry=registry
        )
        self.judge_exhausted = Gauge(
            j + "budget_exhausted", "1 while the tenant's hourly budget of this judge is used up.", ["judge", "tenant"],
            registry=registry,
        )  # fmt: skip
        c = "driftline_judge_canary_"
        # tenant: the canary's (a configured judge's canary.tenant; an API judge's own tenant).
        self.canary_items = Gauge(c + "items", "Canary items the judge's last canary run scored.",
                                  ["judge", "tenant"], registry=registry)  # fmt: skip
        self.canary_changed = Gauge(
            c + "changed", "Canary verdicts of the last run that differ from the pinned baseline.",
            ["judge", "tenant"], registry=registry,
        )  # fmt: skip
        self.canary_last_run = Gauge(
            c + "last_run_timestamp_seconds", "When the judge's canary set was last re-scored.", ["judge", "tenant"],
            registry=registry,
        )  # fmt: skip
