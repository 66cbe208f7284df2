"""False pages on stable traffic: how often a drift page fires when nothing changed, by traffic
rate, alpha and the alert's `for:`.

Simulates one label set with a constant 5% bad rate and Poisson arrivals at --rates scored
requests/s, day after day: the SLI job's test (driftline.drift.rate_drift, the real code) every 15 s
on the current window (5 minutes, lengthened a minute at a time up to an hour while it holds fewer
than the minimum sample, as the SLI job does) against a day of baseline at the same rate; a page
is a detection that holds through `for:` (consecutive 15 s evaluations), with keep_firing_for 5m
merging the episodes of one page. Prints pages per 100 series-days.

    python bench/drift_false_pages.py --days 40 --alphas 1e-3 1e-5 --fors 45 30
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from driftline.drift import RATE_POLICY, DriftPolicy, rate_drift

STEP_S = 15
DAY_S = 86_400


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: lam is at most a few tens here.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate(rate: float, alpha: float, for_s: int, days: int, seed: int) -> tuple[int, int]:
    """(pages, tests) over `days` series-days."""
    policy = DriftPolicy(alpha=alpha, min_current=RATE_POLICY.min_current, min_baseline=RATE_POLICY.min_baseline,
                         min_effect=RATE_POLICY.min_effect)  # fmt: skip
    rng = random.Random(seed)
    need_steps = for_s // STEP_S + 1  # detections at consecutive evaluations spanning for_s
    pages = tests = 0
    minute_steps = 60 // STEP_S
    for _ in range(days):
        n_base = rng.randint(int(rate * DAY_S * 0.95), int(rate * DAY_S * 1.05))
        k_base = sum(1 for _ in range(n_base) if rng.random() < 0.05) if n_base < 50_000 else round(
            rng.gauss(0.05 * n_base, math.sqrt(n_base * 0.05 * 0.95)))  # fmt: skip

        @functools.cache
        def detected(kc: int, nc: int, kb: int = k_base, nb: int = n_base) -> bool:
            return rate_drift(kc, nc, kb, nb, policy=policy).detected

        # Per 15 s step: (bad, total) arrivals; the window sums the last 20 steps, or more (whole
        # minutes) while it holds fewer than the minimum, up to an hour.
        steps: list[tuple[int, int]] = []
        run = 0
        quiet_until = -1
        for t in range(DAY_S // STEP_S + 240):
            n = poisson(rng, rate * STEP_S)
            bad = sum(1 for _ in range(n) if rng.random() < 0.05)
            steps.append((bad, n))
            if t < 240:  # an hour of history first
                continue
            kc = sum(b for b, _ in steps[-20:])
            nc = sum(x for _, x in steps[-20:])
            back = 20
            while nc < policy.min_current and back < 240:
                for b, x in steps[-back - minute_steps : -back]:
                    kc, nc = kc + b, nc + x
                back += minute_steps
            tests += 1
            if detected(kc, nc):
                run += 1
                if run >= need_steps and t > quiet_until:
                    pages += 1
                if run >= need_steps:
                    quiet_until = t + 300 // STEP_S  # keep_firing_for 5m: one page
            else:
                run = 0
            if len(steps) > 300:
                del steps[:60]
    return pages, tests


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=40, help="series-days per configuration")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.55, 2.0])
    ap.add_argument("--alphas", type=float, nargs="+", default=[1e-3, 1e-5])
    ap.add_argument("--fors", type=int, nargs="+", default=[45, 30])
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    print(f"{'rate/s':>7} {'alpha':>7} {'for':>5} {'pages':>6} {'per 100 series-days':>20} {'tests':>9}")
    for rate in args.rates:
        for alpha in args.alphas:
            for for_s in args.fors:
                t0 = time.perf_counter()
                pages, tests = simulate(rate, alpha, for_s, args.days, args.seed)  # same traffic for each `for`
                print(f"{rate:7g} {alpha:7g} {for_s:4d}s {pages:6d} {100 * pages / args.days:20.1f} {tests:9d}"
                      f"   ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
