"""Quality SLIs and drift statistics, computed from ClickHouse by a scheduled job and served on
/metrics from a cache (a scrape never waits on a query).

Label set L = tenant, service, model, release, environment. Cardinality is bounded per tenant
and service: the top-N models and releases by traffic keep their names, the rest become `other`.
Drift compares the current window with a baseline window before it (same tenant, service, model
and environment, across releases), so a bad release is measured against what came before it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftline.drift import DISTRIBUTION_POLICY, RATE_POLICY, DriftPolicy, DriftResult, ks_drift, rate_drift
from driftline.store import Store
from driftline.store.queries.feedback import feedback_counts
from driftline.vocabulary import FAILED_LABEL, LLM_OPERATIONS, OTHER_LABEL, SLI_LABELS, TOOL_FAILURE_CLASSES

__all__ = ["LLM_OPS", "SLI_SCORERS", "SLIJob", "SLIOptions", "SLISnapshot", "options_from"]

log = logging.getLogger(__name__)

L = SLI_LABELS
LLM_OPS = sorted(LLM_OPERATIONS)  # a fixed order for the queries' bound parameter
SLI_SCORERS = ("hallucination", "refusal", "tool_failure")  # the scorers whose scores make SLIs
_BUCKET_S = 60  # a longer drift window grows a minute at a time
Key = tuple[str, str, str, str, str]
Keep = tuple[set[tuple[str, str]], set[tuple[str, str]]]  # (service, model), (service, release) kept


@dataclass(frozen=True)
class SLIOptions:
    windows: dict[str, timedelta] = field(
        default_factory=lambda: {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}
    )
    top_models: int = 10
    top_releases: int = 5
    drift_current: timedelta = timedelta(minutes=5)
    # A label set with fewer than min_current samples in drift_current looks further back, a
    # minute at a time, up to this long (see _extend): low traffic gets a longer window, never a
    # smaller sample. Equal to drift_current: off.
    drift_current_max: timedelta = timedelta(minutes=5)
    drift_baseline: timedelta = timedelta(hours=24)
    rate_policy: DriftPolicy = RATE_POLICY
    distribution_policy: DriftPolicy = DISTRIBUTION_POLICY
    sample_size: int = 2000  # latency/cost samples per side for the KS test


@dataclass
class SLISnapshot:
    gauges: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=lambda: defaultdict(list))
    computed_at: float = 0.0

    def add(self, name: str, labels: dict[str, str], value: float) -> None:
        self.gauges[name].append((labels, value))


_HELP = {
    "driftline_sli_requests": "LLM requests in the window.",
    "driftline_sli_scored": "Spans scored in the window, by scorer.",
    "driftline_sli_hallucination_rate": "Share of scored answers labeled hallucinated.",
    "driftline_sli_tool_failure_rate": "Share of tool calls that failed, by failure class.",
    "driftline_sli_refusal_rate": "Share of answers that refused.",
    "driftline_sli_feedback": "Feedback items recorded in the window, on traces of this label set.",
    "driftline_sli_negative_feedback_rate": "Share of feedback items that were negative.",
    "driftline_sli_error_rate": "Share of LLM requests with error status.",
    "driftline_sli_latency_seconds": "LLM request latency quantiles.",
    "driftline_sli_ttft_seconds": "Time to first token quantiles.",
    "driftline_sli_cost_usd_per_request": "Mean cost of a priced LLM request.",
    "driftline_sli_cost_usd_per_hour": "Spend rate over the window.",
    "driftline_sli_tokens_per_second": "Token rate over the window, by direction.",
    "driftline_drift_detected": "1 when the SLI drifted worse than its baseline (test, samples and effect).",
    "driftline_drift_p_value": "One-sided p-value (or posterior probability of not worse) of the drift test.",
    "driftline_drift_statistic": "Drift test statistic.",
    "driftline_drift_current": "SLI in the current drift window (rate, or median).",
    "driftline_drift_baseline": "SLI in the baseline window (rate, or median).",
    "driftline_drift_samples": "Samples on each side of the drift test.",
    "driftline_drift_window_seconds": "Length of the drift test's current window (longer than the default "
    "where traffic is too low to fill it with the minimum sample).",
    "driftline_sli_computed_timestamp_seconds": "When the SLIs were last computed.",
}


class _Exporter(Collector):
    def __init__(self, job: SLIJob) -> None:
        self.job = job

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.job.snapshot
        for name, help_text in _HELP.items():
            series = snap.gauges.get(name, [])
            if name == "driftline_sli_computed_timestamp_seconds":
                yield GaugeMetricFamily(name, help_text, value=snap.computed_at)
                continue
            if not series:
                continue
            keys = list(series[0][0])
            g = GaugeMetricFamily(name, help_text, labels=keys)
            for labels, value in series:
                g.add_metric([labels[k] for k in keys], value)
            yield g


class SLIJob:
    def __init__(
        self,
        store: Store,
        options: SLIOptions = SLIOptions(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.opt = options
        self.clock = clock
        self.snapshot = SLISnapshot()
        self.collector = _Exporter(self)

    # -- the run ------------------------------------------------------------------------
    def run_once(self) -> SLISnapshot:
        now = self.clock()
        snap = SLISnapshot()
        tenants = self._tenants(now)
        for tenant in tenants:
            keep = self._top_labels(tenant, now)
            for wname, span in self.opt.windows.items():
                self._window(snap, tenant, wname, now - span, now, keep)
            self._drift(snap, tenant, now, keep)
        snap.computed_at = now.timestamp()
        self.snapshot = snap  # one reference swap: scrapes see the old or the new, never half
        self._publish(snap, tenants, now)
        return snap

    def _publish(self, snap: SLISnapshot, tenants: list[str], now: datetime) -> None:
        """The drift verdicts into the store (drift_state), for the API in another process: its
        overview marks what fires now. One row per tenant with an empty `sli` marks the run, so a
        run that fires nothing still replaces the last one."""
        verdicts = zip(snap.gauges["driftline_drift_detected"], snap.gauges["driftline_drift_p_value"], strict=True)
        rows = [({**dict.fromkeys(L, ""), "tenant": t, "sli": ""}, 0.0, 1.0) for t in tenants]
        rows += [(labels, detected, p) for (labels, detected), (_, p) in verdicts]
        if not rows:
            return
        cols: dict[str, Any] = {c: [r[0][c] for r in rows] for c in ("tenant", "sli", *L[1:])}
        cols["detected"] = pa.array([int(r[1]) for r in rows], pa.uint8())
        cols["p_value"] = pa.array([r[2] for r in rows], pa.float64())
        cols["computed_at"] = pa.array([now] * len(rows), pa.timestamp("ms", tz="UTC"))
        self.store.insert_arrow("drift_state", pa.table(cols))

    # -- helpers ------------------------------------------------------------------------
    def _tenants(self, now: datetime) -> list[str]:
        horizon = now - max([*self.opt.windows.values(), self.opt.drift_current + self.opt.drift_baseline])
        return self.store.cross_tenant.tenants_with_spans(since=horizon)

    def _top_labels(self, tenant: str, now: datetime) -> Keep:
        """(service, model) and (service, release) pairs that keep their names."""
        since = now - max(self.opt.windows.values())
        rows = self.store.sli.traffic(tenant, since, LLM_OPS)
        by_model: dict[tuple[str, str], int] = defaultdict(int)
        by_release: dict[tuple[str, str], int] = defaultdict(int)
        for r in rows:
            by_model[(r["service"], r["model"])] += r["n"]
            by_release[(r["service"], r["release"])] += r["n"]
        return _top(by_model, self.opt.top_models), _top(by_release, self.opt.top_releases)

    @staticmethod
    def _key(tenant: str, r: dict[str, Any], keep: Keep) -> Key:
        svc = r["service"]
        model = r["model"] if (svc, r["model"]) in keep[0] else OTHER_LABEL
        release = r["release"] if (svc, r["release"]) in keep[1] else OTHER_LABEL
        return (tenant, svc, model, release, r["environment"])

    def _window(self, snap: SLISnapshot, tenant: str, w: str, since: datetime, until: datetime, keep: Keep) -> None:
        secs = (until - since).total_seconds()
        rows = self.store.sli.request_stats(tenant, since, until, LLM_OPS)
        agg: dict[Key, dict[str, Any]] = {}
        for r in rows:  # several label sets can fold into one `other`: merge counts, keep worst quantiles
            k = self._key(tenant, r, keep)
            a = agg.setdefault(
                k,
                {
                    "n": 0,
                    "errors": 0,
                    "cost": 0.0,
                    "priced": 0,
                    "tin": 0,
                    "tout": 0,
                    "lat": [0.0, 0.0, 0.0],
                    "ttft": None,
                },
            )
            for f in ("n", "errors", "cost", "priced", "tin", "tout"):
                a[f] += r[f]
            a["lat"] = [max(x, y) for x, y in zip(a["lat"], r["lat"], strict=True)]
            if r["n_ttft"]:
                a["ttft"] = (
                    r["ttft"] if a["ttft"] is None else [max(x, y) for x, y in zip(a["ttft"], r["ttft"], strict=True)]
                )
        for k, a in agg.items():
            lab = dict(zip(L, k, strict=True)) | {"window": w}
            snap.add("driftline_sli_requests", lab, a["n"])
            snap.add("driftline_sli_error_rate", lab, a["errors"] / a["n"])
            for q, v in zip(("0.5", "0.95", "0.99"), a["lat"], strict=True):
                snap.add("driftline_sli_latency_seconds", lab | {"quantile": q}, v / 1000)
            if a["ttft"] is not None:
                for q, v in zip(("0.5", "0.95", "0.99"), a["ttft"], strict=True):
                    snap.add("driftline_sli_ttft_seconds", lab | {"quantile": q}, v / 1000)
            if a["priced"]:
                snap.add("driftline_sli_cost_usd_per_request", lab, a["cost"] / a["priced"])
            snap.add("driftline_sli_cost_usd_per_hour", lab, a["cost"] * 3600 / secs)
            snap.add("driftline_sli_tokens_per_second", lab | {"direction": "input"}, a["tin"] / secs)
            snap.add("driftline_sli_tokens_per_second", lab | {"direction": "output"}, a["tout"] / secs)
        self._score_rates(snap, tenant, w, since, until, keep)
        self._feedback_rates(snap, tenant, w, since, until, keep)

    def _feedback_counts(self, tenant: str, since: datetime, until: datetime, keep: Keep) -> dict[Key, tuple[int, int]]:
        """Label set -> (negative, all) feedback items recorded in (since, until]."""
        out: dict[Key, tuple[int, int]] = {}
        for r in feedback_counts(self.store, tenant, since, until, LLM_OPS):
            k = self._key(tenant, r, keep)
            bad, n = out.get(k, (0, 0))
            out[k] = (bad + int(r["bad"]), n + int(r["n"]))
        return out

    def _feedback_rates(
        self, snap: SLISnapshot, tenant: str, w: str, since: datetime, until: datetime, keep: Keep
    ) -> None:
        for k, (bad, n) in self._feedback_counts(tenant, since, until, keep).items():
            lab = dict(zip(L, k, strict=True)) | {"window": w}
            snap.add("driftline_sli_feedback", lab, n)
            snap.add("driftline_sli_negative_feedback_rate", lab, bad / n)

    def _score_counts(self, tenant: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        return self.store.sli.score_counts(tenant, since, until)

    def _score_rates(
        self, snap: SLISnapshot, tenant: str, w: str, since: datetime, until: datetime, keep: Keep
    ) -> None:
        counts: dict[tuple[Key, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self._score_counts(tenant, since, until):
            counts[(self._key(tenant, r, keep), r["scorer"])][r["label"]] += r["n"]
        for (k, scorer), labels in counts.items():
            lab = dict(zip(L, k, strict=True)) | {"window": w}
            total = sum(labels.values())
            snap.add("driftline_sli_scored", lab | {"scorer": scorer}, total)
            if scorer == "tool_failure":
                snap.add(
                    "driftline_sli_tool_failure_rate",
                    lab | {"failure_class": "any"},
                    (total - labels.get("ok", 0)) / total,
                )
                for cls in TOOL_FAILURE_CLASSES:
                    snap.add(
                        "driftline_sli_tool_failure_rate",
                        lab | {"failure_class": cls},
                        labels.get(cls, 0) / total,
                    )
            else:
                metric = (
                    "driftline_sli_hallucination_rate" if scorer == "hallucination" else "driftline_sli_refusal_rate"
                )
                snap.add(metric, lab, labels.get(FAILED_LABEL[scorer], 0) / total)

    # -- drift --------------------------------------------------------------------------
    def _drift(self, snap: SLISnapshot, tenant: str, now: datetime, keep: Keep) -> None:
        cur_since = now - self.opt.drift_current
        base_since = cur_since - self.opt.drift_baseline
        # rates from scores and from span status
        cur = self._rate_counts(tenant, cur_since, now, keep)
        base = self._rate_counts(tenant, base_since, cur_since, keep)
        longer = self._extend(tenant, now, keep, cur, base)
        default_window = self.opt.drift_current.total_seconds()
        for (k, sli), counts in cur.items():
            kc, nc = counts
            kb, nb = base.get(((*k[:3], "*", k[4]), sli), (0, 0))
            window = default_window
            if (k, sli) in longer:
                kc, nc, kb, nb, start = longer[(k, sli)]
                window = (now - start).total_seconds()
            self._emit(snap, k, sli, rate_drift(kc, nc, kb, nb, policy=self.opt.rate_policy), window)
        # distributions: latency and cost per request
        cur_s = self._samples(tenant, cur_since, now, keep)
        base_s = self._samples(tenant, base_since, cur_since, keep)
        for (k, sli), values in cur_s.items():
            self._emit(
                snap,
                k,
                sli,
                ks_drift(values, base_s.get(((*k[:3], "*", k[4]), sli), []), policy=self.opt.distribution_policy),
                default_window,
            )

    def _extend(
        self,
        tenant: str,
        now: datetime,
        keep: Keep,
        cur: dict[tuple[Key, str], tuple[int, int]],
        base: dict[tuple[Key, str], tuple[int, int]],
    ) -> dict[tuple[Key, str], tuple[int, int, int, int, datetime]]:
        """Longer current windows for the rate tests that lack samples: (key, sli) -> (bad, n of the
        longer current window, bad, n of its baseline, the window's start).

        A label set with fewer than `min_current` samples in the last `drift_current` (a new release,
        a quiet service) takes in the minute before its window, then the one before that, until it
        holds `min_current` samples or reaches `drift_current_max`. Its baseline then ends where the
        longer window starts: every release's counts of those minutes are taken out of it, so no
        sample is on both sides. The minimum sample size, alpha and the effect floor stay as they
        are, so each test is as strict as before; a quiet label set is tested on fewer, longer,
        overlapping windows, i.e. on fewer independent samples a day than a busy one, and so cannot
        page more often than a busy one on noise. Feedback rates keep the default window."""
        cur_since = now - self.opt.drift_current
        need = self.opt.rate_policy.min_current
        short = [ks for ks, (_, n) in cur.items() if n < need and ks[0][3] != "*" and ks[1] != "negative_feedback_rate"]
        if not short or self.opt.drift_current_max <= self.opt.drift_current:
            return {}
        buckets = self._rate_buckets(tenant, now - self.opt.drift_current_max, cur_since, keep)
        out: dict[tuple[Key, str], tuple[int, int, int, int, datetime]] = {}
        for ks in short:
            (k, sli), (kc, nc) = ks, cur[ks]
            start = cur_since
            mine = buckets.get(ks, {})
            for b in sorted(mine, reverse=True):
                if nc >= need:
                    break
                kc, nc, start = kc + mine[b][0], nc + mine[b][1], b
            if start == cur_since:
                continue
            star = ((*k[:3], "*", k[4]), sli)
            kb, nb = base.get(star, (0, 0))
            for b, (bad, n) in buckets.get(star, {}).items():
                if b >= start:
                    kb, nb = kb - bad, nb - n
            out[ks] = (kc, nc, kb, nb, start)
        return out

    def _rate_buckets(
        self, tenant: str, since: datetime, until: datetime, keep: Keep
    ) -> dict[tuple[Key, str], dict[datetime, tuple[int, int]]]:
        """(label set, sli) -> minute -> (bad, total) for the scored rates and the error rate, also
        under release '*'; minutes are UTC-aware starts of one-minute intervals."""
        out: dict[tuple[Key, str], dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))

        def add(k: Key, sli: str, b: datetime, bad: int, n: int) -> None:
            b = b if b.tzinfo else b.replace(tzinfo=UTC)
            for kk in (k, (*k[:3], "*", k[4])):
                out[(kk, sli)][b][0] += bad
                out[(kk, sli)][b][1] += n

        for r in self.store.sli.score_counts(tenant, since, until, bucket_s=_BUCKET_S):
            k = self._key(tenant, r, keep)
            if r["scorer"] == "tool_failure":
                add(k, "tool_failure_rate", r["bucket"], 0 if r["label"] == "ok" else r["n"], r["n"])
            else:
                sli = "hallucination_rate" if r["scorer"] == "hallucination" else "refusal_rate"
                add(k, sli, r["bucket"], r["n"] if r["label"] == FAILED_LABEL[r["scorer"]] else 0, r["n"])
        for r in self.store.sli.error_counts(tenant, since, until, LLM_OPS, bucket_s=_BUCKET_S):
            add(self._key(tenant, r, keep), "error_rate", r["bucket"], r["bad"], r["n"])
        return {ks: {b: (v[0], v[1]) for b, v in m.items()} for ks, m in out.items()}

    def _rate_counts(
        self, tenant: str, since: datetime, until: datetime, keep: Keep
    ) -> dict[tuple[Key, str], tuple[int, int]]:
        """(label set, sli) -> (bad, total); also under release '*' for the baseline side."""
        out: dict[tuple[Key, str], list[int]] = defaultdict(lambda: [0, 0])

        def add(k: Key, sli: str, bad: int, n: int) -> None:
            for kk in (k, (*k[:3], "*", k[4])):
                out[(kk, sli)][0] += bad
                out[(kk, sli)][1] += n

        for r in self._score_counts(tenant, since, until):
            k = self._key(tenant, r, keep)
            if r["scorer"] == "tool_failure":
                add(k, "tool_failure_rate", 0 if r["label"] == "ok" else r["n"], r["n"])
            else:
                sli = "hallucination_rate" if r["scorer"] == "hallucination" else "refusal_rate"
                add(k, sli, r["n"] if r["label"] == FAILED_LABEL[r["scorer"]] else 0, r["n"])
        for k, (bad, n) in self._feedback_counts(tenant, since, until, keep).items():
            add(k, "negative_feedback_rate", bad, n)
        rows = self.store.sli.error_counts(tenant, since, until, LLM_OPS)
        for r in rows:
            add(self._key(tenant, r, keep), "error_rate", r["bad"], r["n"])
        return {key: (v[0], v[1]) for key, v in out.items()}

    def _samples(self, tenant: str, since: datetime, until: datetime, keep: Keep) -> dict[tuple[Key, str], list[float]]:
        rows = self.store.sli.samples(tenant, since, until, LLM_OPS, self.opt.sample_size)
        out: dict[tuple[Key, str], list[float]] = defaultdict(list)
        for r in rows:
            k = self._key(tenant, r, keep)
            for kk in (k, (*k[:3], "*", k[4])):
                out[(kk, "latency")].extend(r["lat"])
                out[(kk, "cost_per_request")].extend(r["cost"])
        return out

    @staticmethod
    def _emit(snap: SLISnapshot, k: Key, sli: str, d: DriftResult, window_s: float) -> None:
        if k[3] == "*":  # the all-releases aggregate exists only as a baseline
            return
        lab = {"sli": sli} | dict(zip(L, k, strict=True))
        snap.add("driftline_drift_detected", lab, 1.0 if d.detected else 0.0)
        snap.add("driftline_drift_p_value", lab, d.p_value)
        snap.add("driftline_drift_statistic", lab, d.statistic)
        snap.add("driftline_drift_current", lab, d.current)
        snap.add("driftline_drift_baseline", lab, d.baseline)
        snap.add("driftline_drift_samples", lab | {"side": "current"}, d.n_current)
        snap.add("driftline_drift_samples", lab | {"side": "baseline"}, d.n_baseline)
        snap.add("driftline_drift_window_seconds", lab, window_s)


def _top(counts: dict[tuple[str, str], int], n: int) -> set[tuple[str, str]]:
    by_service: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (svc, name), c in counts.items():
        by_service[svc].append((c, name))
    keep: set[tuple[str, str]] = set()
    for svc, items in by_service.items():
        for _, name in sorted(items, key=lambda x: (-x[0], x[1]))[:n]:
            keep.add((svc, name))
    return keep


def options_from(settings: object) -> SLIOptions:
    """SLIOptions from ScorerSettings (kept loose to avoid importing config into this module)."""
    s: Any = settings
    common = {
        "alpha": s.drift_alpha,
        "min_current": s.drift_min_current,
        "min_baseline": s.drift_min_baseline,
    }
    return SLIOptions(
        top_models=s.sli_top_models,
        top_releases=s.sli_top_releases,
        drift_current=timedelta(seconds=s.drift_current_window_s),
        drift_current_max=timedelta(seconds=max(s.drift_current_window_s, s.drift_current_max_window_s)),
        drift_baseline=timedelta(seconds=s.drift_baseline_window_s),
        rate_policy=DriftPolicy(min_effect=s.drift_min_effect_rate, **common),
        distribution_policy=DriftPolicy(min_effect=s.drift_min_effect_distribution, **common),
    )
