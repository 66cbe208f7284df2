"""Release against release: has a candidate release regressed against a baseline release?

Each SLI gets both values and the same one-sided tests the drift alerts use (candidate worse).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from driftline.drift import DISTRIBUTION_POLICY, RATE_POLICY, DriftPolicy, DriftResult, ks_drift, rate_drift
from driftline.store import Store
from driftline.store.queries.feedback import feedback_counts
from driftline.vocabulary import LLM_OPERATIONS

__all__ = ["compare_releases"]


def compare_releases(
    store: Store,
    tenant: str,
    service: str,
    baseline: str,
    candidate: str,
    since: datetime,
    until: datetime,
    rate_policy: DriftPolicy = RATE_POLICY,
    distribution_policy: DriftPolicy = DISTRIBUTION_POLICY,
) -> dict[str, dict[str, Any]]:
    """Release against release for one service: has `candidate` regressed against `baseline`?

    Each SLI gets both values and the same one-sided test the drift alerts use (candidate worse).
    """
    out: dict[str, dict[str, Any]] = {}
    rates: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for r in store.releases.score_counts(tenant, service, since, until):
        if r["scorer"] == "tool_failure":
            rates["tool_failure_rate"][r["release"]] = (r["not_ok"], r["n"])
        else:
            name = "hallucination_rate" if r["scorer"] == "hallucination" else "refusal_rate"
            rates[name][r["release"]] = (r["raw_bad"], r["n"])
    # Feedback recorded in the window, on the service's traces of each release (as the SLI counts it).
    for r in feedback_counts(store, tenant, since, until, sorted(LLM_OPERATIONS)):
        if r["service"] == service:
            bad, n = rates["negative_feedback_rate"].get(r["release"], (0, 0))
            rates["negative_feedback_rate"][r["release"]] = (bad + int(r["bad"]), n + int(r["n"]))
    samples: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for r in store.releases.request_samples(tenant, service, since, until, sorted(LLM_OPERATIONS)):
        rates["error_rate"][r["release"]] = (r["bad"], r["n"])
        samples["latency_ms"][r["release"]] = list(r["lat"])
        samples["cost_per_request"][r["release"]] = list(r["cost"])
    for sli, by_release in rates.items():
        kc, nc = by_release.get(candidate, (0, 0))
        kb, nb = by_release.get(baseline, (0, 0))
        out[sli] = _as_dict(rate_drift(kc, nc, kb, nb, policy=rate_policy))
    for sli, values in samples.items():
        out[sli] = _as_dict(ks_drift(values.get(candidate, []), values.get(baseline, []), policy=distribution_policy))
    return out


def _as_dict(d: DriftResult) -> dict[str, Any]:
    def num(x: float) -> float | None:
        return None if math.isnan(x) else x  # NaN is not JSON

    return {
        "candidate": num(d.current), "baseline": num(d.baseline), "regressed": d.detected,
        "p_value": num(d.p_value), "statistic": num(d.statistic), "effect": num(d.effect),
        "n_candidate": d.n_current, "n_baseline": d.n_baseline, "method": d.method, "why_not": d.reason,
    }  # fmt: skip
