"""Speed of the offline groundedness scorer on one core.

    python bench/grounding_bench.py [--halueval PATH] [--summedits PATH] [--repeat N] [--json]

Pins itself to a single CPU (where the OS allows it) and scores every row of each dev set: once with
a freshly loaded lexicon (cold: every word is looked up for the first time), then `--repeat` more
times with every context new (new: the per-word caches a long-running scorer has, but the scorer
forgets the contexts and sentences it read before each row, as for a document it has never seen),
then `--repeat` more times as a long-running scorer does (warm: the indexes of recent contexts and
the sentences read are kept too; SummEdits has several summaries of each document). Reports spans per
second, spans per thread-CPU-second (the one-core figure whatever else the machine runs) and per-span
latency percentiles, with the load average. SummEdits documents average ~2,900 characters, HaluEval
passages ~400.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from driftline.scorers.grounding import GroundednessScorer
from driftline.scorers.grounding.dataset import Example, load_examples
from driftline.scorers.grounding.lexicon import Lexicon

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _run(scorer: GroundednessScorer, examples: list[Example], new_contexts: bool = False) -> dict[str, float]:
    latencies: list[float] = []
    cpu = 0.0
    for ex in examples:
        if new_contexts:
            scorer.forget()
        t0, c0 = time.perf_counter(), time.thread_time()
        scorer.score(ex.answer, ex.context, ex.question)
        cpu += time.thread_time() - c0
        latencies.append(time.perf_counter() - t0)
    q = statistics.quantiles(latencies, n=100)
    return {
        "spans_per_second": len(examples) / sum(latencies),
        "spans_per_cpu_second": len(examples) / max(cpu, 1e-9),
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "max_ms": max(latencies) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halueval", type=Path, default=DATA / "halueval-qa" / "dev.jsonl")
    parser.add_argument("--summedits", type=Path, default=DATA / "summedits" / "dev.jsonl")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    pinned = _pin_to_one_core()
    t0 = time.perf_counter()
    Lexicon.load()  # timed on its own: the one-off cost a scorer pays at start-up
    load_s = time.perf_counter() - t0
    results: dict[str, object] = {"pinning": pinned, "lexicon_load_s": round(load_s, 3)}
    for name, path in (("halueval-qa", args.halueval), ("summedits", args.summedits)):
        examples = load_examples(path)
        scorer = GroundednessScorer(lexicon=Lexicon.load())  # a cold per-word cache for each set
        cold = _run(scorer, examples)
        new = [_run(scorer, examples, new_contexts=True) for _ in range(args.repeat)]
        warm = [_run(scorer, examples) for _ in range(args.repeat)]
        results[name] = {
            "rows": len(examples),
            "mean_context_chars": round(statistics.mean(len(e.context) for e in examples)),
            "cold": {k: round(v, 2) for k, v in cold.items()},
            "new_best": {k: round(v, 2) for k, v in _best(new, cold).items()},
            "warm_best": {k: round(v, 2) for k, v in _best(warm, cold).items()},
        }
    results["load_average"] = round(os.getloadavg()[0], 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{pinned}; lexicon load {load_s:.2f} s; load average {results['load_average']}")
    print(
        f"{'set':<12}{'ctx chars':>10}{'run':>6}{'spans/s':>9}{'spans/CPU-s':>13}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'max ms':>8}"
    )
    for name in ("halueval-qa", "summedits"):
        r = results[name]
        assert isinstance(r, dict)
        for run in ("cold", "new_best", "warm_best"):
            m = r[run]
            print(
                f"{name:<12}{r['mean_context_chars']:>10}{run.split('_')[0]:>6}{m['spans_per_second']:>9.0f}"
                f"{m['spans_per_cpu_second']:>13.0f}{m['p50_ms']:>8.2f}{m['p95_ms']:>8.2f}{m['max_ms']:>8.2f}"
            )
    return 0


def _best(runs: list[dict[str, float]], default: dict[str, float]) -> dict[str, float]:
    return max(runs, key=lambda r: r["spans_per_cpu_second"]) if runs else default


if __name__ == "__main__":
    raise SystemExit(main())
