"""Measure a hallucination scorer as a classifier on a labelled JSONL set.

    python -m driftline.scorers.evaluate [--halueval PATH] [--summedits PATH] [--faithful PATH] [--model PATH]

First the figures to expect on unseen data: grouped cross-validation of the offline model
(grounding/crossval.py), the model refitted in each fold on its training rows only, HaluEval folds
grouped by question and SummEdits held out one domain at a time. Per set: balanced accuracy of all
out-of-fold predictions, and the mean, standard deviation, minimum and maximum over the folds; per
held-out fold (per SummEdits domain) its figure with a 90% bootstrap interval over its questions or
documents. Then the shipped model on the same dev rows it was fitted on (in-sample, so flattering):
accuracy, balanced accuracy, precision / recall / F1 of the hallucinated class, AUROC and
speed (spans per second, one core) for HaluEval QA and SummEdits; the paths default to
../shared/data beside the repository. A third row, "faithful", scores long answers that are all
faithful (hand-written from HaluEval dev passages, some close to the passage and some paraphrased,
shipped in grounding/data/faithful_answers.jsonl): its accuracy is the share labelled grounded, the
check that the scorer does not flag an answer for being long. A metric a set cannot define prints
as n/a: recall, F1 and AUROC need hallucinated answers (the faithful set has none), precision needs
at least one flagged answer; a note under the table says so for each such set.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from driftline.progress import bar
from driftline.scorers.grounding.dataset import load_examples

if TYPE_CHECKING:
    from driftline.scorers.grounding.crossval import CVResult

__all__ = [
    "FAITHFUL_PATH",
    "Metrics",
    "ScoredLike",
    "ScorerLike",
    "auroc",
    "compute_metrics",
    "evaluate",
    "format_cv",
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


NAN = float("nan")


@dataclass(frozen=True)
class Metrics:
    """Classifier metrics of the hallucinated class; NaN where the set cannot define one."""

    n: int
    accuracy: float
    balanced_accuracy: float
    precision: float  # NaN when nothing was flagged
    recall: float  # NaN when no answer is hallucinated
    f1: float  # NaN when precision or recall is
    auroc: float  # NaN unless both classes occur
    threshold: float
    spans_per_second: float = 0.0
    balanced_accuracy_by_domain: dict[str, float] = field(default_factory=dict)
    hallucinated: int = 0  # answers labelled hallucinated
    flagged: int = 0  # answers the scorer labelled hallucinated


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
        return NAN
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _defined_ratio(a: float, b: float) -> float:
    """A ratio with nothing to count from is undefined, not 0."""
    return a / b if b else NAN


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
    precision, recall = _defined_ratio(tp, tp + fp), _defined_ratio(tp, tp + fn)
    f1 = NAN if math.isnan(precision) or math.isnan(recall) else _ratio(2 * precision * recall, precision + recall)
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
        f1=f1,
        auroc=auroc(labels, scores),
        threshold=threshold,
        spans_per_second=spans_per_second,
        balanced_accuracy_by_domain=by_domain,
        hallucinated=tp + fn,
        flagged=tp + fp,
    )


def evaluate(scorer: ScorerLike, dataset_path: Path | str, name: str = "") -> Metrics:
    """`scorer` on every example of a labelled set, behind a progress bar named `name` (stderr,
    terminals only: a judge takes seconds per answer)."""
    path = Path(dataset_path)
    examples = load_examples(path)
    scores: list[float] = []
    predicted: list[bool] = []
    start = time.perf_counter()
    for ex in bar(examples, desc=name or path.stem, unit="answer"):
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


def _cell(value: float, width: int) -> str:
    return f"{'n/a':>{width}}" if math.isnan(value) else f"{value:>{width}.3f}"


def _note(name: str, m: Metrics) -> str | None:
    """What an n/a in the row means, in the set's own numbers."""
    if m.n == 0:
        return f"{name}: no answers"
    if m.hallucinated == 0:
        grounded = m.n - m.flagged
        flags = f"; the {m.flagged} flagged are false alarms (prec {m.precision:.3f})" if m.flagged else ""
        return (
            f"{name}: all answers faithful: acc = share labelled grounded ({grounded} of {m.n}){flags};"
            " recall, F1, AUROC need hallucinated answers (n/a)"
        )
    if m.hallucinated == m.n:
        return f"{name}: every answer is hallucinated, so acc is recall and AUROC is n/a"
    if m.flagged == 0:
        return f"{name}: no answer was flagged, so precision and F1 are n/a"
    return None


def format_table(rows: Sequence[tuple[str, Metrics]]) -> str:
    head = f"{'set':<12}{'n':>5}{'acc':>7}{'bal.acc':>9}{'prec':>7}{'recall':>8}{'F1':>7}{'AUROC':>7}{'spans/s':>9}"
    lines = [head, "-" * len(head)]
    for name, m in rows:
        lines.append(
            f"{name:<12}{m.n:>5}{_cell(m.accuracy, 7)}{_cell(m.balanced_accuracy, 9)}{_cell(m.precision, 7)}"
            f"{_cell(m.recall, 8)}{_cell(m.f1, 7)}{_cell(m.auroc, 7)}{m.spans_per_second:>9.0f}"
        )
    lines.append("prec, recall, F1: of the hallucinated class; AUROC: of the score, whatever the threshold")
    for name, m in rows:
        note = _note(name, m)
        if note:
            lines.append(note)
    for name, m in rows:
        if m.balanced_accuracy_by_domain:
            parts = ", ".join(f"{d} {v:.3f}" for d, v in m.balanced_accuracy_by_domain.items())
            lines.append(f"{name} balanced accuracy by domain: {parts}")
    return "\n".join(lines)


def format_cv(results: Sequence[CVResult]) -> str:
    head = f"{'set':<12}{'scheme':<44}{'pooled':>7}{'mean':>7}{'std':>7}{'min':>7}{'max':>7}"
    lines = [
        "grouped cross-validation, balanced accuracy (model refitted in each fold on its training rows):",
        head,
        "-" * len(head),
    ]
    for r in results:
        lines.append(
            f"{r.name:<12}{r.scheme:<44}{_cell(r.pooled, 7)}{_cell(r.mean, 7)}{_cell(r.std, 7)}"
            f"{_cell(r.min, 7)}{_cell(r.max, 7)}"
        )
    lines.append("pooled: all out-of-fold predictions together; mean, std, min, max: over the folds")
    for r in results:
        if r.folds:
            lines.append(f"{r.name} by held-out fold (90% bootstrap interval over its questions / documents):")
            for f in r.folds:
                lines.append(f"  {f.name:<12} n={f.n:<4}{_cell(f.balanced_accuracy, 7)}  [{f.low:.3f}, {f.high:.3f}]")
    return "\n".join(lines)


def cross_validated(halueval: Path, summedits: Path) -> list[CVResult]:
    from driftline.scorers.grounding.crossval import cross_validate, featurize

    return cross_validate([featurize("halueval-qa", halueval), featurize("summedits", summedits)])


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
    rows = [(name, evaluate(scorer, path, name)) for name, path in sets]
    print(f"{scorer.name} v{scorer.version}, model {args.model or 'default'}, threshold {scorer.threshold:.3f}")
    print(format_cv(cross_validated(args.halueval, args.summedits)))
    print("\nthe shipped model on the dev rows it was fitted on (in-sample: expect less on unseen data);")
    print("the faithful set was not fitted on")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
