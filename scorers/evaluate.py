"""Measure a hallucination scorer as a classifier on a labelled JSONL set.

    python -m driftline.scorers.evaluate [--halueval PATH] [--summedits PATH] [--faithful PATH] [--model PATH]

prints accuracy, balanced accuracy, precision / recall / F1 of the hallucinated class, AUROC and
speed (spans per second, one core) for HaluEval QA and SummEdits; the paths default to
../shared/data beside the repository. A third row, "faithful", scores long answers that are all
faithful (hand-written from HaluEval dev passages, some close to the passage and some paraphrased,
shipped in grounding/data/faithful_answers.jsonl): its accuracy is the share labelled grounded, the
check that the scorer does not flag an answer for being long.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from driftline.scorers.grounding.dataset import load_examples

__all__ = [
    "FAITHFUL_PATH",
    "Metrics",
    "ScoredLike",
    "ScorerLike",
    "auroc",
    "compute_metrics",
    "evaluate",
    "main",
]

_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FAITHFUL_PATH = Path(__file__).resolve().parent / "grounding" / "data" / "faithful_answers.jsonl"


class ScoredLike(Protocol):
    @property
    def value(self) -> float: ...
    @property
    def label(self) -> str: ...


class ScorerLike(Protocol):
    @property
    def threshold(self) -> float: ...
    def score(self, answer: str, context: str, question: str = "") -> ScoredLike: ...


@dataclass(frozen=True)
class Metrics:
    n: int
    accuracy: float
    balanced_accuracy: float
    precision: float  # of the hallucinated class
    recall: float
    f1: float
    auroc: float
    threshold: float
    spans_per_second: float = 0.0
    balanced_accuracy_by_domain: dict[str, float] = field(default_factory=dict)


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, tied scores sharing ranks."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            j += 1
        for k in range(i, j):
            ranks[order[k]] = (i + j + 1) / 2.0  # mean of the 1-based ranks i+1 .. j
        i = j
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _balanced(labels: Sequence[bool], predicted: Sequence[bool]) -> float:
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    tn = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and not p)
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if pos and neg:
        return (tp / pos + tn / neg) / 2.0
    return _ratio(tp + tn, len(labels))


def compute_metrics(
    labels: Sequence[bool],
    scores: Sequence[float],
    predicted: Sequence[bool],
    threshold: float,
    domains: Sequence[str] | None = None,
    spans_per_second: float = 0.0,
) -> Metrics:
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and p)
    fn = sum(1 for y, p in zip(labels, predicted, strict=True) if y and not p)
    correct = sum(1 for y, p in zip(labels, predicted, strict=True) if y == p)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    by_domain: dict[str, float] = {}
    if domains is not None and any(domains):
        for domain in sorted(set(domains)):
            idx = [i for i, d in enumerate(domains) if d == domain]
            by_domain[domain] = _balanced([labels[i] for i in idx], [predicted[i] for i in idx])
    return Metrics(
        n=len(labels),
        accuracy=_ratio(correct, len(labels)),
        balanced_accuracy=_balanced(labels, predicted),
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
        auroc=auroc(labels, scores),
        threshold=threshold,
        spans_per_second=spans_per_second,
        balanced_accuracy_by_domain=by_domain,
    )


def evaluate(scorer: ScorerLike, dataset_path: Path | str) -> Metrics:
    examples = load_examples(Path(dataset_path))
    scores: list[float] = []
    predicted: list[bool] = []
    start = time.perf_counter()
    for ex in examples:
        result = scorer.score(ex.answer, ex.context, ex.question)
        scores.append(result.value)
        predicted.append(result.label == "hallucinated")
    elapsed = time.perf_counter() - start
    return compute_metrics(
        [ex.hallucinated for ex in examples],
        scores,
        predicted,
        scorer.threshold,
        [ex.domain for ex in examples],
        _ratio(len(examples), elapsed),
    )


def format_table(rows: Sequence[tuple[str, Metrics]]) -> str:
    head = f"{'set':<12}{'n':>5}{'acc':>7}{'bal.acc':>9}{'prec':>7}{'recall':>8}{'F1':>7}{'AUROC':>7}{'spans/s':>9}"
    lines = [head, "-" * len(head)]
    for name, m in rows:
        lines.append(
            f"{name:<12}{m.n:>5}{m.accuracy:>7.3f}{m.balanced_accuracy:>9.3f}{m.precision:>7.3f}"
            f"{m.recall:>8.3f}{m.f1:>7.3f}{m.auroc:>7.3f}{m.spans_per_second:>9.0f}"
        )
    for name, m in rows:
        if m.balanced_accuracy_by_domain:
            parts = ", ".join(f"{d} {v:.3f}" for d, v in m.balanced_accuracy_by_domain.items())
            lines.append(f"{name} balanced accuracy by domain: {parts}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halueval", type=Path, default=_DATA_ROOT / "halueval-qa" / "dev.jsonl")
    parser.add_argument("--summedits", type=Path, default=_DATA_ROOT / "summedits" / "dev.jsonl")
    parser.add_argument("--faithful", type=Path, default=FAITHFUL_PATH)
    parser.add_argument("--model", type=Path, default=None, help="a model JSON other than the default one")
    args = parser.parse_args(argv)
    # Imported here so that the metric helpers above stay usable without loading the lexicon.
    from driftline.scorers.grounding import GroundednessScorer
    from driftline.scorers.grounding.model import LogisticModel

    scorer = GroundednessScorer(LogisticModel.load(args.model) if args.model else None)
    scorer.score("warm-up", "warm-up")  # the first call reads the lexicon: keep it out of the timing
    sets = (("halueval-qa", args.halueval), ("summedits", args.summedits), ("faithful", args.faithful))
    rows = [(name, evaluate(scorer, path)) for name, path in sets]
    print(f"{scorer.name} v{scorer.version}, model {args.model or 'default'}, threshold {scorer.threshold:.3f}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
