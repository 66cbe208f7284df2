"""Prometheus alerting and recording rules for Driftline, rendered from config.

`render_rules(AlertThresholds())` is alerts/rules.yml, byte for byte (a test holds them in step).
Rules are built as Python structures and dumped with yaml.safe_dump, never by string templating
of YAML, so a threshold or URL can never break the file's structure. Annotations are Go templates
evaluated by Prometheus; config values placed in them are validated to contain no template
delimiters. The timing arithmetic behind the defaults is in alerts/README.md.

    python -m driftline.alerting [--thresholds my-thresholds.yml] > rules.yml
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftline.drift import RATE_POLICY
from driftline.vocabulary import OTHER_LABEL, SLI_LABELS

__all__ = ["DRIFT_SLIS", "SLI_LABELS", "AlertThresholds", "duration_seconds", "main", "render_rules"]

DRIFT_SLIS = (
    "hallucination_rate",
    "tool_failure_rate",
    "refusal_rate",
    "error_rate",
    "latency",
    "cost_per_request",
    "negative_feedback_rate",
)
SLI_WINDOW_SECONDS = 300  # the "5m" window the threshold alerts read

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]+$")


def duration_seconds(value: str) -> float:
    """Seconds in a Prometheus duration ("1m30s"); ValueError if it is not one."""
    m = _DURATION.match(value)
    if not value or m is None:
        raise ValueError(f"{value!r} is not a Prometheus duration such as 45s, 5m or 1h30m")
    return sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_UNITS, strict=True) if g)


class AlertThresholds(BaseModel):
    """Every number and URL in the rules. Defaults: see alerts/README.md for why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review_base_url: str = Field(
        default="http://127.0.0.1:4318/traces",
        description="Trace list of the web UI (`driftline up` serves it at /traces); alerts link to it "
        "filtered by tenant, service, model, release and environment, and by the alert's own signal.",
    )
    runbook_base_url: str = Field(
        default="https://driftline.example/runbooks/alerts",
        description="Runbook page; each alert links to it with #<alertname in lower case>.",
    )
    evaluation_interval: str = Field(default="15s", description="How often Prometheus evaluates these rule groups.")
    drift_for: str = Field(
        default="45s",
        description="How long drift must be detected before paging: one SLI recomputation period (30s) "
        "plus one scrape (15s), so two independent computations agree.",
    )
    drift_min_current: int = Field(
        default=RATE_POLICY.min_current,
        ge=1,
        description="Fewest current-window samples for a drift page (a second guard behind the SLI job's; "
        "keep it no higher than the job's policy).",
    )
    drift_min_baseline: int = Field(
        default=RATE_POLICY.min_baseline, ge=1, description="Fewest baseline-window samples for a drift page."
    )
    hallucination_rate_max: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="Warn when the 5m share of scored spans labeled hallucinated exceeds this.",
    )
    tool_failure_rate_max: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="Warn when the 5m tool failure rate (failure_class=any) exceeds this.",
    )
    latency_p95_max_seconds: float = Field(
        default=20.0, gt=0, description="Warn when the 5m p95 latency of LLM calls exceeds this many seconds."
    )
    cost_per_hour_max_usd: float = Field(
        default=25.0, gt=0, description="Warn when the 5m cost burn, in USD per hour, exceeds this."
    )
    min_requests: int = Field(
        default=100, ge=1, description="Fewest LLM requests in the 5m window before latency or cost can warn."
    )
    min_scored: int = Field(
        default=50, ge=1, description="Fewest scored spans in the 5m window before a scored rate can warn."
    )
    hallucination_scorer: str = Field(default="hallucination", description="Scorer label of the hallucination scorer.")
    tool_failure_scorer: str = Field(default="tool_failure", description="Scorer label of the tool-failure scorer.")
    threshold_for: str = Field(
        default="10m",
        description="How long a threshold must be exceeded before warning. Longer than the 5m window, "
        "so one expensive or slow trace, which stays in the window 5 minutes, cannot warn alone.",
    )
    keep_firing_for: str = Field(
        default="5m",
        description="Hysteresis: a firing alert stays firing this long after its condition ends.",
    )
    scorer_lag_max_seconds: float = Field(
        default=300,
        gt=0,
        description="Warn when a scorer is this far behind (beyond it drift cannot page in 5m).",
    )
    scorer_lag_for: str = Field(default="5m", description="How long the scorer lag must exceed its maximum.")
    judge_budget_for: str = Field(default="1m", description="How long the judge budget must read exhausted.")
    judge_canary_changed_min: int = Field(
        default=2, ge=1, description="Fewest changed canary verdicts (against the pinned baseline) to warn."
    )
    judge_canary_changed_share: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Warn only when more than this share of the canary set changed (one flip in a large set is noise).",
    )
    judge_canary_for: str = Field(
        default="1m", description="How long the canary count must hold (it changes only when the canary job runs)."
    )
    refused_spans_max_per_second: float = Field(
        default=0.0, ge=0, description="Warn when collectors refuse more spans per second than this (0: any)."
    )
    refusals_for: str = Field(
        default="5m",
        description="How long refusals must last; the 2m rate means a one-off burst cannot warn.",
    )
    spool_usage_max_ratio: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="Warn when a collector's spool is fuller than this share of capacity.",
    )
    spool_oldest_age_max_seconds: float = Field(
        default=600,
        gt=0,
        description="Warn when the oldest spooled batch is older than this and still ageing.",
    )
    spool_for: str = Field(default="5m", description="How long a spool condition must hold.")
    sli_stale_seconds: float = Field(
        default=120, gt=0, description="Warn when the SLIs were last computed longer ago than this."
    )
    sli_stale_for: str = Field(default="2m", description="How long the SLIs must be stale.")
    dropped_for: str = Field(
        default="1m", description="How long collectors must have quarantined spans (in the last 10m) to warn."
    )
    agreement_kappa_min: float = Field(
        default=0.4,
        ge=-1,
        le=1,
        description="Page when an automatic scorer's Cohen's kappa with reviewers' labels falls below this "
        "(0.4: agreement no better than 'fair'): a drifting judge pages like a drifting model.",
    )
    agreement_min_items: int = Field(
        default=30, ge=1, description="Fewest reviewed items behind an agreement figure before it can page."
    )
    agreement_for: str = Field(
        default="10m", description="How long the agreement must stay low (it moves only as labels come in)."
    )

    @field_validator(
        "evaluation_interval",
        "drift_for",
        "threshold_for",
        "keep_firing_for",
        "scorer_lag_for",
        "judge_budget_for",
        "judge_canary_for",
        "refusals_for",
        "spool_for",
        "sli_stale_for",
        "dropped_for",
        "agreement_for",
    )
    @classmethod
    def _duration(cls, v: str) -> str:
        duration_seconds(v)
        return v

    @field_validator("review_base_url", "runbook_base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        # These go into Go templates: delimiters would be executed, whitespace would break links.
        if "{{" in v or "}}" in v or any(c.isspace() for c in v) or '"' in v:
            raise ValueError("must not contain '{{', '}}', quotes or whitespace")
        return v.rstrip("/")

    @field_validator("hallucination_scorer", "tool_failure_scorer")
    @classmethod
    def _label_value(cls, v: str) -> str:
        if not _LABEL_VALUE.match(v):
            raise ValueError("must be letters, digits, '_', '.', ':' or '-'")
        return v

    @model_validator(mode="after")
    def _timing(self) -> AlertThresholds:
        if duration_seconds(self.threshold_for) <= SLI_WINDOW_SECONDS:
            raise ValueError("threshold_for must be longer than the 5m SLI window, or one trace can warn")
        if duration_seconds(self.drift_for) < duration_seconds(self.evaluation_interval):
            raise ValueError("drift_for must be at least one evaluation_interval")
        return self


# ------------------------------------------------------------------------------------- templates


def _t(expr: str) -> str:
    return "{{ " + expr + " }}"


def _where() -> str:
    return (
        f"tenant {_t('$labels.tenant')}, service {_t('$labels.service')}, model {_t('$labels.model')}, "
        f"release {_t('$labels.release')} ({_t('$labels.environment')})"
    )


def _which() -> str:
    return f"{_t('$labels.service')} / {_t('$labels.model')} @ {_t('$labels.release')}"


# Labels the SLI job folds into OTHER_LABEL beyond the top N: a link filtering on that value would
# match no trace, so the review link leaves the filter out (the list shows the service's traces).
_FOLDED_LABELS: Final = ("model", "release")


def _review_url(base: str, params: tuple[str, ...]) -> str:
    url = base + ("&" if "?" in base else "?") + f"{params[0]}={_t(f'$labels.{params[0]} | urlquery')}"
    for p in params[1:]:
        part = f"&{p}={_t(f'$labels.{p} | urlquery')}"
        if p in _FOLDED_LABELS:
            part = f'{{{{ if ne $labels.{p} "{OTHER_LABEL}" }}}}{part}{{{{ end }}}}'
        url += part
    return url


# Drift annotations look up the other drift gauges of the alert's own series. `$sel` is set
# once at the start of the description: the matchers for the alert's sli and label set.
_SELECTOR = (
    "{{ $sel := printf `"
    + ",".join(f"{name}=%q" for name in ("sli", *SLI_LABELS))
    + "` "
    + " ".join(f"$labels.{name}" for name in ("sli", *SLI_LABELS))
    + " }}"
)


def _query_value(metric: str, extra: str = "", fmt: str = "%.4g") -> str:
    """The value of a drift gauge for this alert's label set, looked up when the alert renders."""
    return (
        "{{ with print `" + metric + "{` $sel `" + extra + "}` | query }}"
        "{{ . | first | value | printf `" + fmt + "` }}{{ end }}"
    )


# What each SLI's alert should open on the trace list, beside its labels: the failing traces first.
_REVIEW_FILTERS = {
    "hallucination_rate": "&scorer=hallucination&label=hallucinated",
    "refusal_rate": "&scorer=refusal&label=refused",
    "tool_failure_rate": "&scorer=tool_failure&sort=score",
    "error_rate": "&status=error",
    "latency": "&sort=duration",
    "latency_ms": "&sort=duration",
    "cost_per_request": "&sort=cost",
    "negative_feedback_rate": "&feedback=negative",
}


def _annotations(
    t: AlertThresholds, alert: str, summary: str, description: str, review: bool, sli: str = ""
) -> dict[str, str]:
    out = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{t.runbook_base_url}#{alert.lower()}",
    }
    if review:
        out["review_url"] = _review_url(t.review_base_url, SLI_LABELS) + _REVIEW_FILTERS.get(sli, "")
    return out


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


# ----------------------------------------------------------------------------------------- rules

_ON_L = "on (" + ", ".join(SLI_LABELS) + ")"
_ON_SLI_L = "on (" + ", ".join(("sli", *SLI_LABELS)) + ")"
_SLI_TITLES = {
    "hallucination_rate": ("HallucinationRate", "hallucination rate"),
    "tool_failure_rate": ("ToolFailureRate", "tool failure rate"),
    "refusal_rate": ("RefusalRate", "refusal rate"),
    "error_rate": ("ErrorRate", "error rate"),
    "latency": ("Latency", "latency"),
    "cost_per_request": ("CostPerRequest", "cost per request"),
    "negative_feedback_rate": ("NegativeFeedbackRate", "negative feedback rate"),
}


def _drift_alert(t: AlertThresholds, sli: str) -> dict[str, Any]:
    name = f"Driftline{_SLI_TITLES[sli][0]}Drift"
    title = _SLI_TITLES[sli][1]
    samples = "driftline_drift_samples"
    expr = (
        f'(driftline_drift_detected{{sli="{sli}"}} == 1)\n'
        f'and {_ON_SLI_L} ({samples}{{sli="{sli}", side="current"}} >= {t.drift_min_current})\n'
        f'and {_ON_SLI_L} ({samples}{{sli="{sli}", side="baseline"}} >= {t.drift_min_baseline})'
    )
    current = _query_value("driftline_drift_current")
    baseline = _query_value("driftline_drift_baseline")
    p_value = _query_value("driftline_drift_p_value", fmt="%.2g")
    n_current = _query_value(samples, ',side="current"', "%.0f")
    n_baseline = _query_value(samples, ',side="baseline"', "%.0f")
    description = (
        f"{_SELECTOR}The {title} of {_where()} is worse than its baseline: {current} now against {baseline} "
        f"(one-sided p-value {p_value}, {n_current} current and {n_baseline} baseline samples)."
    )
    summary = f"{title.capitalize()} drifted up for {_which()}"
    return {
        "alert": name,
        "expr": expr,
        "for": t.drift_for,
        "keep_firing_for": t.keep_firing_for,
        "labels": {"severity": "page"},
        "annotations": _annotations(t, name, summary, description, review=True, sli=sli),
    }


@dataclass(frozen=True, slots=True)
class _Threshold:
    alert: str
    sli: str  # the drift page that inhibits this warning
    record: str
    metric: str
    guard: str
    limit: float
    human: str  # template pipeline that formats $value
    title: str
    what: str


def _threshold_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    """Guarded 5m SLIs (recorded) and the warnings on them; `sli` maps each to its drift page."""
    scored = 'driftline_sli_scored{{window="5m", scorer="{s}"}} >= {n}'
    requests = f'driftline_sli_requests{{window="5m"}} >= {t.min_requests}'
    specs = [
        _Threshold(
            alert="DriftlineHallucinationRateHigh",
            sli="hallucination_rate",
            record="driftline:hallucination_rate_5m:guarded",
            metric='driftline_sli_hallucination_rate{window="5m"}',
            guard=scored.format(s=t.hallucination_scorer, n=t.min_scored),
            limit=t.hallucination_rate_max,
            human="humanizePercentage",
            title=f"Hallucination rate above {_pct(t.hallucination_rate_max)}",
            what=f"of scored spans were labeled hallucinated over the last 5 minutes (limit "
            f"{_pct(t.hallucination_rate_max)}, at least {t.min_scored} scored spans)",
        ),
        _Threshold(
            alert="DriftlineToolFailureRateHigh",
            sli="tool_failure_rate",
            record="driftline:tool_failure_rate_5m:guarded",
            metric='driftline_sli_tool_failure_rate{window="5m", failure_class="any"}',
            guard=scored.format(s=t.tool_failure_scorer, n=t.min_scored),
            limit=t.tool_failure_rate_max,
            human="humanizePercentage",
            title=f"Tool failure rate above {_pct(t.tool_failure_rate_max)}",
            what=f"of tool calls failed over the last 5 minutes (limit {_pct(t.tool_failure_rate_max)}, "
            f"at least {t.min_scored} scored spans)",
        ),
        _Threshold(
            alert="DriftlineLatencyP95High",
            sli="latency",
            record="driftline:latency_p95_seconds_5m:guarded",
            metric='driftline_sli_latency_seconds{window="5m", quantile="0.95"}',
            guard=requests,
            limit=t.latency_p95_max_seconds,
            human="humanizeDuration",
            title=f"p95 latency above {t.latency_p95_max_seconds:g}s",
            what=f"is the p95 latency of LLM calls over the last 5 minutes "
            f"(limit {t.latency_p95_max_seconds:g}s, at least {t.min_requests} requests)",
        ),
        _Threshold(
            alert="DriftlineCostBurnHigh",
            sli="cost_per_request",  # a per-request cost drift explains an hourly burn
            record="driftline:cost_usd_per_hour_5m:guarded",
            metric='driftline_sli_cost_usd_per_hour{window="5m"}',
            guard=requests,
            limit=t.cost_per_hour_max_usd,
            human='printf "$%.2f/h"',
            title=f"Cost burn above ${t.cost_per_hour_max_usd:g}/h",
            what=f"is the LLM spend rate over the last 5 minutes (limit ${t.cost_per_hour_max_usd:g}/h, "
            f"at least {t.min_requests} requests)",
        ),
    ]
    rules: list[dict[str, Any]] = []
    for spec in specs:
        rules.append({"record": spec.record, "expr": f"{spec.metric}\nand {_ON_L} ({spec.guard})"})
        value = _t(f"$value | {spec.human}")
        rules.append(
            {
                "alert": spec.alert,
                "expr": f"{spec.record} > {spec.limit:g}",
                "for": t.threshold_for,
                "keep_firing_for": t.keep_firing_for,
                "labels": {"severity": "warning", "sli": spec.sli},
                "annotations": _annotations(
                    t,
                    spec.alert,
                    f"{spec.title} for {_which()}",
                    f"{value} {spec.what} for {_where()}, held for {t.threshold_for}.",
                    review=True,
                    sli=spec.sli,
                ),
            }
        )
    return rules


def _pipeline_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    tenant_review = {"review_url": _review_url(t.review_base_url, ("tenant",))}

    def alert(name: str, expr: str, for_: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": for_,
            "keep_firing_for": t.keep_firing_for,
            "labels": {"severity": "warning"},
            "annotations": _annotations(t, name, summary, description, review=False),
        }

    judge = alert(
        "DriftlineJudgeBudgetExhausted",
        "max by (tenant) (driftline_judge_budget_exhausted) == 1",
        t.judge_budget_for,
        f"LLM judge budget exhausted for tenant {_t('$labels.tenant')}",
        f"The LLM judge stopped scoring for tenant {_t('$labels.tenant')} until its budget resets "
        "(spent {{ with printf `driftline:judge_spend_usd:increase1h{tenant=%q}` $labels.tenant | query }}"
        "{{ . | first | value | printf `$%.2f` }}{{ end }} in the last hour): judge-scored SLIs go "
        "stale and cannot page. Raise the budget or lower the judge sampling rate.",
    )
    judge["annotations"].update(tenant_review)
    changed = "driftline_judge_canary_changed"
    canary = alert(
        "DriftlineJudgeCanaryChanged",
        f"{changed} >= {t.judge_canary_changed_min} and {changed} > {t.judge_canary_changed_share:g} * "
        "driftline_judge_canary_items",
        t.judge_canary_for,
        f"LLM judge {_t('$labels.judge')} (tenant {_t('$labels.tenant')}) changed {_t('$value')} canary verdicts",
        f"Re-scoring its canary set, judge {_t('$labels.judge')} of tenant {_t('$labels.tenant')} gave "
        f"{_t('$value')} verdicts that differ from its pinned baseline (of {{{{ with printf "
        "`driftline_judge_canary_items{judge=%q,tenant=%q}` $labels.judge $labels.tenant | query }}"
        "{{ . | first | value }}{{ end }} items): the endpoint or model behind it changed, and scores and SLIs "
        "it makes are no longer comparable with earlier ones. Compare the canary verdicts "
        "(judge_canary, kind latest vs baseline), pin the model version, or accept the new behaviour by "
        "changing the judge definition (a new version pins a new baseline).",
    )
    spool_age = "driftline_collector_spool_oldest_age_seconds"
    return [
        {
            "record": "driftline:collector_refused_spans:rate2m",
            "expr": "sum by (reason) (rate(driftline_collector_refused_spans_total[2m]))",
        },
        {
            "record": "driftline:collector_spool_usage:ratio",
            "expr": "driftline_collector_spool_bytes / (driftline_collector_spool_capacity_bytes > 0)",
        },
        {
            "record": "driftline:judge_spend_usd:increase1h",
            "expr": "sum by (tenant) (increase(driftline_judge_spend_usd_total[1h]))",
        },
        alert(
            "DriftlineScorerLagHigh",
            f"max by (scorer) (driftline_scorer_lag_seconds) > {t.scorer_lag_max_seconds:g}",
            t.scorer_lag_for,
            f"Scorer {_t('$labels.scorer')} is {_t('$value | humanizeDuration')} behind",
            f"Scorer {_t('$labels.scorer')} lags {_t('$value | humanizeDuration')} behind the newest spans "
            f"(limit {t.scorer_lag_max_seconds:g}s): its SLIs are stale and drift on them cannot page within "
            "5 minutes. Check the scorer replicas, the judge endpoint's latency and the job failure metrics.",
        ),
        judge,
        canary,
        alert(
            "DriftlineSLIStale",
            f"time() - driftline_sli_computed_timestamp_seconds > {t.sli_stale_seconds:g}",
            t.sli_stale_for,
            f"SLIs on {_t('$labels.instance')} are {_t('$value | humanizeDuration')} old",
            f"The SLI and drift job on {_t('$labels.instance')} last finished {_t('$value | humanizeDuration')} "
            f"ago (limit {t.sli_stale_seconds:g}s): drift pages and quality warnings are blind until it runs "
            "again. Check the scorer process's logs and its driftline_scorer_runs_total for scorer sli.",
        ),
        alert(
            "DriftlineIngestionRefused",
            f"driftline:collector_refused_spans:rate2m > {t.refused_spans_max_per_second:g}",
            t.refusals_for,
            f"Collectors are refusing spans ({_t('$labels.reason')})",
            f"Collectors refused {_t('$value | printf `%.3g`')} spans/s with reason {_t('$labels.reason')} "
            f"for {t.refusals_for}. Clients retry, but traces are delayed and may be dropped by SDKs whose "
            "queues fill: check ClickHouse (store_unavailable), the spool (spool_full), queue capacity "
            "(queue_full) or tenant rate limits (rate_limited).",
        ),
        alert(
            "DriftlineSpoolFilling",
            f"driftline:collector_spool_usage:ratio > {t.spool_usage_max_ratio:g}",
            t.spool_for,
            f"Collector spool {_t('$value | humanizePercentage')} full on {_t('$labels.instance')}",
            f"The on-disk spool of {_t('$labels.instance')} is {_t('$value | humanizePercentage')} full "
            f"(limit {_pct(t.spool_usage_max_ratio)}): ClickHouse writes are failing or slow. When it is "
            "full the collector refuses spans (spool_full).",
        ),
        alert(
            "DriftlineSpoolNotDraining",
            f"{spool_age} > {t.spool_oldest_age_max_seconds:g}\nand deriv({spool_age}[5m]) > 0",
            t.spool_for,
            f"Collector spool on {_t('$labels.instance')} is not draining",
            f"The oldest spooled batch on {_t('$labels.instance')} is {_t('$value | humanizeDuration')} old "
            f"and still ageing (limit {t.spool_oldest_age_max_seconds:g}s): replay into ClickHouse is "
            "stuck, so those spans are missing from SLIs and the review queue.",
        ),
        alert(
            "DriftlineSpansDropped",
            # Spool records the disk corrupted are counted in records (their spans cannot be read):
            # they join under their own reason, so neither count hides the other.
            "sum by (reason) (increase(driftline_collector_dropped_spans_total[10m])) > 0\n"
            "or\n"
            "label_replace(\n"
            "  sum by (reason) (increase(driftline_collector_dropped_records_total[10m])) > 0,\n"
            '  "reason", "${1}_spool_record", "reason", "(.+)"\n'
            ")",
            t.dropped_for,
            f"Collectors quarantined spans the store refused ({_t('$labels.reason')})",
            f"Collectors moved {_t('$value | printf `%.0f`')} accepted spans to the quarantine in the last "
            f"10m (reason {_t('$labels.reason')}; for unreadable_spool_record: whole spool records, whose "
            "spans cannot be counted): they are not stored. `driftline quarantine list` shows "
            "them and the store's error; fix the cause, then `driftline quarantine reinject`.",
        ),
    ]


def _review_rules(t: AlertThresholds) -> list[dict[str, Any]]:
    """Scorers against people: the agreement job publishes kappa per scorer version and rubric field."""
    on = "on (tenant, scorer, version, queue, field)"
    name = "DriftlineScorerAgreementLow"
    annotations = _annotations(
        t,
        name,
        f"Scorer {_t('$labels.scorer')} {_t('$labels.version')} disagrees with reviewers",
        f"Cohen's kappa between scorer {_t('$labels.scorer')} (version {_t('$labels.version')}) and reviewers' "
        f"{_t('$labels.field')} labels in queue {_t('$labels.queue')} of tenant {_t('$labels.tenant')} is "
        f"{_t('$value | printf `%.2f`')} (limit {t.agreement_kappa_min:g}, at least {t.agreement_min_items} "
        "reviewed items): the scorer's labels, and the SLIs and alerts built on them, can no longer be "
        "trusted. Read the disagreements (GET /api/v1/review/agreement has the confusion matrix), then fix "
        "or roll back the scorer or the judge's prompt or model.",
        review=False,
    )
    annotations["review_url"] = _review_url(t.review_base_url, ("tenant", "scorer"))
    return [
        {
            "alert": name,
            "expr": f"driftline_review_agreement_kappa < {t.agreement_kappa_min:g}\n"
            f"and {on} (driftline_review_agreement_items >= {t.agreement_min_items})",
            "for": t.agreement_for,
            "keep_firing_for": t.keep_firing_for,
            "labels": {"severity": "page"},
            "annotations": annotations,
        }
    ]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, so the rendered file reads like a hand-written one."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)

_HEADER = """\
# Driftline alerting and recording rules. GENERATED from driftline/alerting.py: do not edit.
# Regenerate with the defaults (tests/test_alert_rules.py checks this file is up to date):
#   .venv/bin/python -m driftline.alerting > alerts/rules.yml
# With your own thresholds (a YAML mapping of AlertThresholds fields):
#   python -m driftline.alerting --thresholds my-thresholds.yml > rules.yml
# Timing and the 5-minute page budget: alerts/README.md. Unit tests: alerts/tests/.
"""


def render_rules(thresholds: AlertThresholds) -> str:
    """The Prometheus rule file (alerting and recording rules) for these thresholds."""
    t = thresholds
    # Recording rules come first in their group: rules in a group run in order at the same
    # timestamp, so an alert on a recorded series adds no evaluation interval of delay.
    quality = _threshold_rules(t) + [_drift_alert(t, sli) for sli in DRIFT_SLIS]
    doc = {
        "groups": [
            {"name": "driftline-quality", "interval": t.evaluation_interval, "rules": quality},
            {"name": "driftline-pipeline", "interval": t.evaluation_interval, "rules": _pipeline_rules(t)},
            {"name": "driftline-review", "interval": t.evaluation_interval, "rules": _review_rules(t)},
        ]
    }
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True)
    return _HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m driftline.alerting", description="Print Driftline's Prometheus rules."
    )
    parser.add_argument("--thresholds", type=Path, help="YAML mapping of AlertThresholds fields to override")
    args = parser.parse_args(argv)
    values: Any = {}
    if args.thresholds is not None:
        values = yaml.safe_load(args.thresholds.read_text()) or {}
    try:
        if not isinstance(values, dict):
            raise TypeError(f"{args.thresholds}: expected a mapping of AlertThresholds fields")
        thresholds = AlertThresholds.model_validate(values)
    except (ValidationError, TypeError) as e:
        print(f"driftline.alerting: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(render_rules(thresholds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
