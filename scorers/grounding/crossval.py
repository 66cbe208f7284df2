"""Grouped cross-validation of the grounding model: the only honest figure the dev sets can give.

Rows that share a question (HaluEval) or a source document (SummEdits) are near-duplicates of each
other, so they always fall in the same fold; on SummEdits a whole domain is held out at a time
(leave-one-domain-out), which asks the harder question: how does the model do on a kind of document
it has never seen? The model is refitted in every fold on the training rows only, with both sets
weighing the same in total, exactly as the shipped model is fitted on all rows
(tools/grounding/train.py). Features are computed once per row and cached: they are rules, not
learned, so no fold can leak into them.

numpy is needed to fit (it is imported by `fit_logistic`), not to score.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from driftline.scorers.grounding.context import ContextIndex
from driftline.scorers.grounding.dataset import Example, load_examples
from driftline.scorers.grounding.features import FEATURE_NAMES, Analysis, analyse
from driftline.scorers.grounding.lexicon import Lexicon, default_lexicon
from driftline.scorers.grounding.model import LogisticModel, fit_logistic

__all__ = [
    "FOLDS",
    "L2",
    "THRESHOLD",
    "CVResult",
    "FoldScore",
    "LabelledSet",
    "SetChange",
    "balanced_accuracy",
    "compare",
    "cross_validate",
    "featurize",
    "fit",
    "folds_of",
    "gains_across_folds",
]

FOLDS = 5  # for sets without domains: GroupKFold by question / document
L2 = 1.0
THRESHOLD = 0.5  # both sets are balanced and equally weighted, so 0.5 is the fitted decision point
_BOOTSTRAP = 1000


@dataclass
class LabelledSet:
    name: str
    examples: list[Example]
    analyses: list[Analysis]

    @property
    def y(self) -> list[bool]:
        return [e.hallucinated for e in self.examples]

    def vectors(self, vector: Callable[[Analysis], list[float]] | None = None) -> list[list[float]]:
        return [(vector or Analysis.vector)(a) for a in self.analyses]


def featurize(name: str, path: Path, lexicon: Lexicon | None = None) -> LabelledSet:
    lex = lexicon if lexicon is not None else default_lexicon()
    examples = load_examples(path)
    analyses = [analyse(e.answer, ContextIndex.build(e.context, e.question, lex), lex) for e in examples]
    return LabelledSet(name, examples, analyses)


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def folds_of(examples: Sequence[Example]) -> tuple[list[str], str]:
    """A fold name per row, and how the folds were made.

    With domains: leave-one-domain-out. Without: GroupKFold by group (the question, or the source
    document), groups dealt round-robin in a fixed hashed order so folds are of near-equal size and
    the split does not depend on the file's order."""
    if all(e.domain for e in examples) and len({e.domain for e in examples}) > 1:
        return [e.domain for e in examples], "leave-one-domain-out"
    groups = sorted({e.group for e in examples}, key=_hash)
    k = min(FOLDS, len(groups))
    fold_of = {g: f"fold{i % k + 1}" for i, g in enumerate(groups)}
    return [fold_of[e.group] for e in examples], f"{k}-fold grouped by question / document"


def fit(
    xs: Sequence[Sequence[Sequence[float]]],
    ys: Sequence[Sequence[bool]],
    features: Sequence[str] = FEATURE_NAMES,
    exclude: Sequence[str] = (),
    signed: Sequence[str] = (),
) -> LogisticModel:
    """One model over several sets, each weighing the same in total."""
    x: list[Sequence[float]] = []
    y: list[bool] = []
    w: list[float] = []
    for xs_i, ys_i in zip(xs, ys, strict=True):
        x.extend(xs_i)
        y.extend(ys_i)
        w.extend([1.0 / max(1, len(xs_i))] * len(xs_i))
    scale = len(x) / sum(w)
    skip = [list(features).index(name) for name in exclude]
    free = [list(features).index(name) for name in signed if name in features]
    weights, bias = fit_logistic(x, y, [v * scale for v in w], l2=L2, exclude=skip, signed=free)
    return LogisticModel(tuple(features), tuple(weights), bias, THRESHOLD, confident_low=0.0, confident_high=1.0)


def balanced_accuracy(y: Sequence[bool], predicted: Sequence[bool]) -> float:
    pos = sum(1 for v in y if v)
    neg = len(y) - pos
    tp = sum(1 for v, p in zip(y, predicted, strict=True) if v and p)
    tn = sum(1 for v, p in zip(y, predicted, strict=True) if not v and not p)
    if pos and neg:
        return (tp / pos + tn / neg) / 2.0
    return (tp + tn) / len(y) if y else math.nan


@dataclass(frozen=True)
class FoldScore:
    name: str
    n: int
    balanced_accuracy: float
    # A 90% bootstrap interval over the fold's groups: how far one fold's figure can move by chance.
    low: float
    high: float


@dataclass
class CVResult:
    name: str
    scheme: str
    oof: list[float]  # out-of-fold probability per row
    folds: list[FoldScore] = field(default_factory=list)
    pooled: float = math.nan  # balanced accuracy of all out-of-fold predictions together

    @property
    def mean(self) -> float:
        return sum(f.balanced_accuracy for f in self.folds) / len(self.folds) if self.folds else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation of the per-fold figures."""
        if len(self.folds) < 2:
            return math.nan
        m = self.mean
        return math.sqrt(sum((f.balanced_accuracy - m) ** 2 for f in self.folds) / (len(self.folds) - 1))

    @property
    def min(self) -> float:
        return min((f.balanced_accuracy for f in self.folds), default=math.nan)

    @property
    def max(self) -> float:
        return max((f.balanced_accuracy for f in self.folds), default=math.nan)


def _interval(y: Sequence[bool], predicted: Sequence[bool], groups: Sequence[str], seed: str) -> tuple[float, float]:
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    names = sorted(by_group)
    rng = random.Random(_hash(seed))
    values = []
    for _ in range(_BOOTSTRAP):
        idx = [i for g in rng.choices(names, k=len(names)) for i in by_group[g]]
        values.append(balanced_accuracy([y[i] for i in idx], [predicted[i] for i in idx]))
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return math.nan, math.nan
    return values[int(0.05 * (len(values) - 1))], values[int(0.95 * (len(values) - 1))]


def cross_validate(
    sets: Sequence[LabelledSet],
    vector: Callable[[Analysis], list[float]] | None = None,
    features: Sequence[str] = FEATURE_NAMES,
    exclude: Sequence[str] = (),
    signed: Sequence[str] = (),
) -> list[CVResult]:
    """Out-of-fold predictions and per-fold balanced accuracy for every set.

    A row of one set is predicted by a model fitted on the other folds of its own set and on all of
    the other sets (they share no question or document with it)."""
    xs = [s.vectors(vector) for s in sets]
    ys = [s.y for s in sets]
    results = []
    for k, s in enumerate(sets):
        fold_names, scheme = folds_of(s.examples)
        if len(set(fold_names)) < 2:
            results.append(CVResult(s.name, "not possible: fewer than 2 questions / documents", []))
            continue
        oof = [0.0] * len(s.examples)
        scores = []
        for fold in sorted(set(fold_names)):
            train = [i for i, f in enumerate(fold_names) if f != fold]
            test = [i for i, f in enumerate(fold_names) if f == fold]
            train_x = [[xs[k][i] for i in train] if j == k else xs[j] for j in range(len(sets))]
            train_y = [[ys[k][i] for i in train] if j == k else ys[j] for j in range(len(sets))]
            model = fit(train_x, train_y, features, exclude, signed)
            for i in test:
                oof[i] = model.probability(xs[k][i])
            y = [ys[k][i] for i in test]
            predicted = [oof[i] >= THRESHOLD for i in test]
            low, high = _interval(y, predicted, [s.examples[i].group for i in test], f"{s.name}/{fold}")
            scores.append(FoldScore(fold, len(test), balanced_accuracy(y, predicted), low, high))
        pooled = balanced_accuracy(ys[k], [p >= THRESHOLD for p in oof])
        results.append(CVResult(s.name, scheme, oof, scores, pooled))
    return results


@dataclass(frozen=True)
class SetChange:
    """One set's grouped-CV figures after a change, against those recorded before it."""

    name: str
    pooled_before: float
    pooled_after: float
    gained: tuple[str, ...]  # held-out folds whose figure rose
    lost: tuple[str, ...]  # and fell
    unchanged: int

    @property
    def holds(self) -> bool:
        """Not worse on this set: the pooled figure did not fall, and more folds rose than fell (or none
        moved)."""
        if round(self.pooled_after, 4) < round(self.pooled_before, 4):
            return False
        return len(self.gained) > len(self.lost) or not (self.gained or self.lost)


def compare(recorded: Mapping[str, Mapping[str, object]], results: Sequence[CVResult]) -> list[SetChange]:
    """Per set, which held-out folds a change moved, against figures recorded in the same shape as the
    shipped model's (`fit.cv` in data/model.json: 4-decimal figures per fold and pooled).

    The rule a change must pass to stay is `gains_across_folds`: a gain on the rows one has read is
    no evidence; a gain on held-out folds of every set, with no set worse, is some."""
    out = []
    for r in results:
        before = recorded.get(r.name)
        if not isinstance(before, Mapping):
            continue
        folds = before.get("folds")
        pooled = before.get("pooled_balanced_accuracy")
        if not isinstance(folds, Mapping) or not isinstance(pooled, int | float):
            continue
        gained, lost, same = [], [], 0
        for f in r.folds:
            old = folds.get(f.name)
            if not isinstance(old, int | float):
                continue
            new = round(f.balanced_accuracy, 4)
            if new > old:
                gained.append(f.name)
            elif new < old:
                lost.append(f.name)
            else:
                same += 1
        out.append(SetChange(r.name, float(pooled), r.pooled, tuple(gained), tuple(lost), same))
    return out


def gains_across_folds(changes: Sequence[SetChange]) -> bool:
    """Every set holds (see SetChange.holds) and at least one held-out fold rose."""
    return bool(changes) and all(c.holds for c in changes) and any(c.gained for c in changes)
