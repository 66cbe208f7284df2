"""Drift statistics: is the current window *worse* than the baseline window?

Pure and deterministic, no I/O: the SLI job feeds counts (rates) or samples (latency, cost per
request) of two windows and exports the `DriftResult` as the `driftline_drift_*` gauges.

A result says `detected` only when three things hold, so alerts neither flap nor miss:
1. enough samples on *both* sides (`min_current`, `min_baseline`): an estimate from 12 spans is
   noise, whatever a test says about it;
2. the one-sided test is significant (`p_value < alpha`): every SLI here is worse when it goes
   *up* (rates, latency, cost), and a drop in hallucinations must never page;
3. the effect is above a floor (`min_effect`): with a day of baseline traffic any difference is
   "significant"; the floor keeps 5.0% -> 5.3% from paging anyone.

Methods
- Rates: `rate_drift`. Default `bayes`: the posterior probability, under uniform Beta(1, 1)
  priors, that the current rate exceeds the baseline rate, computed exactly (Evan Miller's closed
  form). Against a large baseline its complement is the exact binomial tail, so it stays honest
  for rare events (error rate 0.5%, 100 spans), where the normal approximation behind the
  two-proportion z-test (`ztest`, also offered) under-states the tail and alarms too often
  (simulated at alpha 1e-4 without the floor: 3.5x the nominal rate at a 5% rate, 20x at 0.5%;
  the bayes form 1.2x and 2.6x). The effect size is Cohen's h = 2 asin sqrt(p1) - 2 asin sqrt(p0);
  its floor 0.2 ("small") means a doubling around 5% (5% -> 10.2%), 1% -> 4%, 20% -> 28.5%,
  40% -> 50%.
- Distributions: `ks_drift` (default), the one-sided two-sample Kolmogorov-Smirnov test with
  Hodges' small-sample correction to the asymptotic tail (the formula scipy uses for its
  one-sided 'asymp' mode); effect = D+, the largest share of requests that got slower. And
  `psi_drift`, the population stability index over the baseline's deciles, with its chi-square
  approximation PSI ~ (1/n + 1/m) chi2(bins - 1) for a p-value (conservative, as the baseline
  proportions are fixed by construction); effect = PSI, floor 0.25 (the usual "major shift").

Why no scipy: it is a 40 MB dependency for erfc, lgamma and two tail formulas that the standard
library already provides. tests/test_drift.py pins our numbers to reference values computed with
scipy 1.17.1 (binomial, beta, ks_2samp, chi2).

Why these defaults (alpha 1e-5; 150 current and 1,000 baseline samples; the floors above)
- The test runs at every SLI recomputation (every 15-30 s) for every SLI and label set: a hundred
  series, each with 288 independent 5-minute windows a day. alpha = 0.01 would page every few
  minutes somewhere on pure noise. Simulated: 80 series-days of a sliding 5-minute window tested
  every 15 s at 0.55 scored requests/s (windows near the minimum, where the effect floor does not
  yet bind), a page being a detection held for the rules' `for: 45s`: alpha 1e-3 paged 40 times,
  1e-4 once, 1e-5 never. Above ~1 request/s the effect floor is what binds, and real traffic,
  which varies more than binomially from hour to hour, is held back by the floor too.
- 150 current samples: reached in a 5-minute window from 0.5 scored requests/s. At exactly the
  minimum (against 1,000 baseline samples) a 5% -> 25% jump is detected with >= 99% power
  (test (b): 99.7%). Lower traffic needs a longer current window, the SLI job's choice: it
  lengthens the window of a label set a minute at a time until it holds the minimum
  (`drift_current_max_window_s`), and never tests a smaller sample.
- Detection delay with a sliding 5-minute window, step 5% -> 25%: p95 150 s at 1 scored
  request/s, 105 s at 10/s (the floor binds: a quarter of the window must be post-change). That
  fits the 5-minute page budget of alerts/README.md with scraping, evaluation, `for:` and
  group_wait; tests/test_drift.py measures it.
- Distributions: +50% latency (lognormal, sigma 0.5) is detected every time at the minimum
  samples; a very spread latency (sigma 1) needs ~300 current / 5,000 baseline for 95%.
- Which baseline: the SLI job should compare against the same tenant, service, model and
  environment over the previous day, excluding the current window and across releases, so a bad
  release is measured against what came before it, not against its own first minutes.
- KS on very large windows finds tiny shifts significant: hence the floor D+ >= 0.1 (a tenth of
  requests got slower); samples may be capped (a reservoir per window) without losing power.
- p-values below ~1e-13 are at floating-point resolution (the bayes form is 1 - a sum near 1);
  nothing here compares them at that level.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DISTRIBUTION_POLICY",
    "PSI_POLICY",
    "RATE_POLICY",
    "DriftPolicy",
    "DriftResult",
    "RateMethod",
    "beta_binomial_prob_worse",
    "cohens_h",
    "ks_drift",
    "ks_one_sided",
    "psi",
    "psi_drift",
    "rate_drift",
    "two_proportion_ztest",
]

RateMethod = Literal["bayes", "ztest"]


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    """When a difference counts as drift (see the module docstring for the defaults)."""

    alpha: float
    """Significance: detected only when p_value < alpha (one-sided)."""
    min_current: int
    """Fewest samples in the current window before anything is decided."""
    min_baseline: int
    """Fewest samples in the baseline window before anything is decided."""
    min_effect: float
    """Effect-size floor in the method's unit: Cohen's h for rates, D+ for KS, PSI for PSI."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_current < 1 or self.min_baseline < 1:
            raise ValueError("min_current and min_baseline must be at least 1")
        if not self.min_effect >= 0.0:
            raise ValueError(f"min_effect must be >= 0, got {self.min_effect}")


RATE_POLICY = DriftPolicy(alpha=1e-5, min_current=150, min_baseline=1000, min_effect=0.2)
DISTRIBUTION_POLICY = DriftPolicy(alpha=1e-5, min_current=150, min_baseline=1000, min_effect=0.1)
PSI_POLICY = DriftPolicy(alpha=1e-5, min_current=150, min_baseline=1000, min_effect=0.25)


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One comparison of a current window against its baseline: the `driftline_drift_*` gauges."""

    method: str
    statistic: float
    """bayes: P(current rate > baseline rate); ztest: z; ks: D+; psi: PSI."""
    p_value: float
    """One-sided; for bayes the posterior probability that current is *not* worse. NaN if untested."""
    effect: float
    current: float
    """Rate for rates, median for distributions."""
    baseline: float
    n_current: int
    n_baseline: int
    detected: bool
    reason: str | None
    """Why not detected (too few samples, not worse, not significant, effect below floor)."""


def _decide(
    method: str,
    statistic: float,
    p_value: float,
    effect: float,
    current: float,
    baseline: float,
    n_current: int,
    n_baseline: int,
    worse: bool,
    policy: DriftPolicy,
) -> DriftResult:
    # Sample size is checked first: below it nothing the test says is trusted.
    reason: str | None
    if n_current < policy.min_current or n_baseline < policy.min_baseline:
        reason = (
            f"too few samples (current {n_current} of {policy.min_current}, "
            f"baseline {n_baseline} of {policy.min_baseline})"
        )
    elif not worse:
        reason = "not worse: current is not above baseline"
    elif not p_value < policy.alpha:  # also catches NaN
        reason = f"not significant (p={p_value:.3g}, alpha={policy.alpha:g})"
    elif not effect >= policy.min_effect:
        reason = f"effect {effect:.3g} below floor {policy.min_effect:g}"
    else:
        reason = None
    return DriftResult(
        method, statistic, p_value, effect, current, baseline, n_current, n_baseline, reason is None, reason
    )


# ---------------------------------------------------------------------------------------- rates


def _check_counts(k: int, n: int, side: str) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"{side}: need 0 <= successes <= trials, got {k} of {n}")


def cohens_h(p_current: float, p_baseline: float) -> float:
    """Cohen's h, the effect size for two proportions (variance-stabilised: the same h is about
    equally detectable whether the rates are near 1% or near 50%)."""
    return 2.0 * math.asin(math.sqrt(p_current)) - 2.0 * math.asin(math.sqrt(p_baseline))


def two_proportion_ztest(k_current: int, n_current: int, k_baseline: int, n_baseline: int) -> tuple[float, float]:
    """Pooled two-proportion z statistic and its one-sided p-value (current rate greater)."""
    p_c, p_b = k_current / n_current, k_baseline / n_baseline
    pooled = (k_current + k_baseline) / (n_current + n_baseline)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_current + 1.0 / n_baseline))
    if se == 0.0:  # both sides all 0 or all 1: identical, no evidence either way
        return 0.0, 1.0
    z = (p_c - p_b) / se
    return z, 0.5 * math.erfc(z / math.sqrt(2.0))


def beta_binomial_prob_worse(k_current: int, n_current: int, k_baseline: int, n_baseline: int) -> float:
    """P(current rate > baseline rate) with Beta(1, 1) priors, exactly.

    Evan Miller's closed form (https://www.evanmiller.org/bayesian-ab-testing.html) for
    X_c ~ Beta(a_c, b_c), X_b ~ Beta(a_b, b_b) with integer a_c:
        P(X_c > X_b) = sum_{i < a_c} t_i,  t_i = B(a_b + i, b_b + b_c) / ((b_c + i) B(1 + i, b_c) B(a_b, b_b))
    With integer b_c too, t_0 = prod_{j < b_c} (b_b + j) / (a_b + b_b + j) and
    t_{i+1} / t_i = (a_b + i)(b_c + i) / ((a_b + b_b + b_c + i)(1 + i)): products of ratios
    instead of lgamma differences, whose rounding at a baseline of millions of spans would
    swamp a p-value near alpha. Work is O(n_current), independent of the baseline size.
    """
    a_c, b_c = k_current + 1, n_current - k_current + 1
    a_b, b_b = k_baseline + 1, n_baseline - k_baseline + 1
    log_t = math.fsum(math.log1p(-a_b / (a_b + b_b + j)) for j in range(b_c))  # log, to never underflow
    log_terms = [log_t]
    for i in range(a_c - 1):
        log_t += math.log((a_b + i) * (b_c + i) / ((a_b + b_b + b_c + i) * (1.0 + i)))
        log_terms.append(log_t)
    return min(1.0, max(0.0, math.fsum(math.exp(x) for x in log_terms)))


def rate_drift(
    k_current: int,
    n_current: int,
    k_baseline: int,
    n_baseline: int,
    *,
    policy: DriftPolicy = RATE_POLICY,
    method: RateMethod = "bayes",
) -> DriftResult:
    """Has a rate (hallucinated, failed, refused, errored: k of n) gone up?"""
    _check_counts(k_current, n_current, "current")
    _check_counts(k_baseline, n_baseline, "baseline")
    nan = math.nan
    if n_current == 0 or n_baseline == 0:
        return _decide(method, nan, nan, nan, nan, nan, n_current, n_baseline, False, policy)
    p_c, p_b = k_current / n_current, k_baseline / n_baseline
    if method == "bayes":
        statistic = beta_binomial_prob_worse(k_current, n_current, k_baseline, n_baseline)
        p_value = 1.0 - statistic
    elif method == "ztest":
        statistic, p_value = two_proportion_ztest(k_current, n_current, k_baseline, n_baseline)
    else:
        raise ValueError(f"unknown rate method {method!r}")
    effect = cohens_h(p_c, p_b)
    return _decide(method, statistic, p_value, effect, p_c, p_b, n_current, n_baseline, p_c > p_b, policy)


# -------------------------------------------------------------------------------- distributions


def _sorted_finite(values: Iterable[float], side: str) -> list[float]:
    out = sorted(float(v) for v in values)
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{side}: samples must be finite numbers")
    return out


def _median(s: list[float]) -> float:
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2.0


def _ks_plus(current: list[float], baseline: list[float]) -> float:
    # D+ = max_x F_baseline(x) - F_current(x): the share of mass that moved right (got larger).
    # The maximum sits where F_baseline jumps, i.e. at baseline values; ties are handled by
    # taking both CDFs after the last equal value (bisect_right).
    n, m = len(current), len(baseline)
    d = 0.0
    for j, x in enumerate(baseline):
        if j + 1 < m and baseline[j + 1] == x:
            continue
        d = max(d, (j + 1) / m - bisect_right(current, x) / n)
    return d


def ks_one_sided(current: Iterable[float], baseline: Iterable[float]) -> tuple[float, float]:
    """One-sided two-sample KS: D+ (current stochastically larger) and its p-value.

    Hodges (1958) eq. 5.3, with m >= n the larger and smaller sample and z = sqrt(mn/(m+n)) D:
        p ~= exp(-2 z^2 - 2 z (m + 2n) / (3 sqrt(m n (m + n))))
    The plain asymptotic exp(-2 z^2) plus a correction that matters for small samples.
    """
    c, b = _sorted_finite(current, "current"), _sorted_finite(baseline, "baseline")
    if not c or not b:
        raise ValueError("both samples must be non-empty")
    return _ks_sorted(c, b)


def _ks_sorted(c: list[float], b: list[float]) -> tuple[float, float]:
    d = _ks_plus(c, b)
    m, n = (float(len(c)), float(len(b))) if len(c) >= len(b) else (float(len(b)), float(len(c)))
    z = math.sqrt(m * n / (m + n)) * d
    p = math.exp(-2.0 * z * z - 2.0 * z * (m + 2.0 * n) / math.sqrt(m * n * (m + n)) / 3.0)
    return d, min(1.0, max(0.0, p))


def ks_drift(
    current: Iterable[float], baseline: Iterable[float], *, policy: DriftPolicy = DISTRIBUTION_POLICY
) -> DriftResult:
    """Have latencies (or costs per request) got larger? One-sided KS; effect = D+."""
    c, b = _sorted_finite(current, "current"), _sorted_finite(baseline, "baseline")
    if not c or not b:
        nan = math.nan
        med_c, med_b = (_median(c) if c else nan), (_median(b) if b else nan)
        return _decide("ks", nan, nan, nan, med_c, med_b, len(c), len(b), False, policy)
    d, p = _ks_sorted(c, b)
    return _decide("ks", d, p, d, _median(c), _median(b), len(c), len(b), d > 0.0, policy)


def _chi2_sf(x: float, dof: int) -> float:
    """Chi-square survival function for integer dof: Q(dof/2, x/2), exactly, by the recurrence
    Q(a + 1, y) = Q(a, y) + y^a e^-y / Gamma(a + 1), from Q(1/2, y) = erfc(sqrt y) or Q(1, y) = e^-y."""
    if x <= 0.0:
        return 1.0
    y = x / 2.0
    a, q = (0.5, math.erfc(math.sqrt(y))) if dof % 2 else (1.0, math.exp(-y))
    while a < dof / 2.0:
        q += math.exp(a * math.log(y) - y - math.lgamma(a + 1.0))
        a += 1.0
    return min(1.0, q)


def psi(current: Iterable[float], baseline: Iterable[float], bins: int = 10) -> tuple[float, int]:
    """Population stability index over the baseline's quantile bins; returns (PSI, bins used).

    Bins whose edges coincide (many equal costs) are merged. Each bin count gets +0.5 so an
    empty bin does not make the index infinite (the usual Jeffreys-style smoothing).
    """
    c, b = _sorted_finite(current, "current"), _sorted_finite(baseline, "baseline")
    if not c or not b:
        raise ValueError("both samples must be non-empty")
    return _psi_sorted(c, b, bins)


def _psi_sorted(c: list[float], b: list[float], bins: int) -> tuple[float, int]:
    if bins < 2:
        raise ValueError("bins must be at least 2")
    edges = sorted({b[min(len(b) - 1, (len(b) * i) // bins)] for i in range(1, bins)})
    # A bin is (edge[i-1], edge[i]]; the last one is open above.
    counts_c = [0] * (len(edges) + 1)
    counts_b = [0] * (len(edges) + 1)
    for values, counts in ((c, counts_c), (b, counts_b)):
        for v in values:
            counts[bisect_left(edges, v)] += 1
    total_c, total_b = len(c) + 0.5 * len(counts_c), len(b) + 0.5 * len(counts_b)
    index = 0.0
    for kc, kb in zip(counts_c, counts_b, strict=True):
        pc, pb = (kc + 0.5) / total_c, (kb + 0.5) / total_b
        index += (pc - pb) * math.log(pc / pb)
    return index, len(counts_c)


def psi_drift(
    current: Iterable[float], baseline: Iterable[float], *, bins: int = 10, policy: DriftPolicy = PSI_POLICY
) -> DriftResult:
    """Has the distribution shifted, and upwards (current median above baseline's)? Effect = PSI."""
    c, b = _sorted_finite(current, "current"), _sorted_finite(baseline, "baseline")
    if not c or not b:
        nan = math.nan
        med_c, med_b = (_median(c) if c else nan), (_median(b) if b else nan)
        return _decide("psi", nan, nan, nan, med_c, med_b, len(c), len(b), False, policy)
    index, used = _psi_sorted(c, b, bins)
    p = _chi2_sf(index / (1.0 / len(c) + 1.0 / len(b)), used - 1)
    med_c, med_b = _median(c), _median(b)
    # PSI is symmetric: the direction comes from the medians, so faster responses never page.
    return _decide("psi", index, p, index, med_c, med_b, len(c), len(b), med_c > med_b, policy)
