"""Fit the scorer's logistic model on the dev sets and estimate how well it holds up on unseen data.

    python -m tools.grounding.train [--halueval PATH] [--summedits PATH] [--dry-run]

Writes `scorers/grounding/data/model.json`. (Version 1 also shipped a variant that used answer length as evidence when a
question was given; with the relational features it added under a point on HaluEval while it
flagged long answers for their length, so it is gone.)

Both sets get equal total weight, so neither dominates the shared threshold. The held-out estimate
is grouped cross-validation: rows that share a question (HaluEval) or a source document and seed
summary (SummEdits) always fall in the same fold, because near-duplicate rows on both sides of a
split would flatter the estimate. Fold assignment hashes the group name, so it is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from driftline.scorers.evaluate import Metrics, compute_metrics, format_table
from driftline.scorers.grounding.context import ContextIndex
from driftline.scorers.grounding.dataset import Example, load_examples
from driftline.scorers.grounding.features import FEATURE_NAMES, analyse
from driftline.scorers.grounding.lexicon import default_lexicon
from driftline.scorers.grounding.model import DEFAULT_MODEL_PATH, LogisticModel, fit_logistic

__all__ = [
    "FOLDS",
    "L2",
    "THRESHOLD",
    "TrainingSet",
    "confident_bounds",
    "cross_validate",
    "featurize",
    "fit",
    "main",
]

_DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FOLDS = 5
L2 = 1.0
THRESHOLD = 0.5  # both sets are balanced and equally weighted, so 0.5 is the fitted decision point
# `confident` must be right this often, out of fold, on each set.
_CONFIDENT_ACCURACY = 0.95


@dataclass
class TrainingSet:
    name: str
    examples: list[Example]
    x: list[list[float]]
    verified: list[bool]  # the rows the scorer calls confidently grounded whatever the model says

    @property
    def y(self) -> list[bool]:
        return [e.hallucinated for e in self.examples]


def featurize(name: str, path: Path) -> TrainingSet:
    lexicon = default_lexicon()
    examples = load_examples(path)
    analyses = [analyse(e.answer, ContextIndex.build(e.context, e.question, lexicon), lexicon) for e in examples]
    return TrainingSet(name, examples, [a.vector() for a in analyses], [a.verified for a in analyses])


def _fold(group: str) -> int:
    return int(hashlib.sha1(group.encode(), usedforsecurity=False).hexdigest(), 16) % FOLDS


def fit(sets: Sequence[TrainingSet], keep: Sequence[bool] | None = None, exclude: Sequence[str] = ()) -> LogisticModel:
    x: list[list[float]] = []
    y: list[bool] = []
    w: list[float] = []
    offset = 0
    for s in sets:
        rows = [i for i in range(len(s.x)) if keep is None or keep[offset + i]]
        offset += len(s.x)
        for i in rows:
            x.append(s.x[i])
            y.append(s.examples[i].hallucinated)
            w.append(1.0 / len(rows))  # each set weighs the same in total
    scale = len(x) / sum(w)
    skip = [FEATURE_NAMES.index(name) for name in exclude]
    weights, bias = fit_logistic(x, y, [v * scale for v in w], l2=L2, exclude=skip)
    return LogisticModel(FEATURE_NAMES, tuple(weights), bias, THRESHOLD, confident_low=0.0, confident_high=1.0)


def cross_validate(sets: Sequence[TrainingSet], exclude: Sequence[str] = ()) -> list[list[float]]:
    """Out-of-fold probabilities for every row of every set."""
    folds = [_fold(f"{s.name}/{e.group}") for s in sets for e in s.examples]
    flat = [row for s in sets for row in s.x]
    out: list[float] = [0.0] * len(folds)
    for k in range(FOLDS):
        model = fit(sets, [f != k for f in folds], exclude)
        for i, row in enumerate(flat):
            if folds[i] == k:
                out[i] = model.probability(row)
    result: list[list[float]] = []
    offset = 0
    for s in sets:
        result.append(out[offset : offset + len(s.x)])
        offset += len(s.x)
    return result


def _metrics(s: TrainingSet, p: Sequence[float]) -> Metrics:
    return compute_metrics(s.y, p, [v >= THRESHOLD for v in p], THRESHOLD, [e.domain for e in s.examples])


def confident_bounds(sets: Sequence[TrainingSet], oof: Sequence[Sequence[float]]) -> tuple[float, float, list[str]]:
    """The loosest bounds whose out-of-fold predictions are right at least 95% of the time on every
    set that has rows beyond them.

    Chosen separately for each side: an answer with no evidence against it is not thereby proven
    grounded, so the low side may well never be confident (then it is 0)."""
    candidates = sorted({v for p in oof for v in p})

    def ok(c: float, hallucinated_side: bool) -> bool:
        for s, p in zip(sets, oof, strict=True):
            idx = [i for i, v in enumerate(p) if (v >= c if hallucinated_side else v <= c)]
            if idx and sum(1 for i in idx if s.y[i] == hallucinated_side) < _CONFIDENT_ACCURACY * len(idx):
                return False
        return True

    high = next((c for c in candidates if c >= THRESHOLD and ok(c, True)), 1.0)
    low = next((c for c in reversed(candidates) if c < THRESHOLD and ok(c, False)), 0.0)
    notes = []
    for s, p in zip(sets, oof, strict=True):
        hi_rows = [i for i, v in enumerate(p) if v >= high]
        # Confidently grounded: below `low`, or verified (the context decides the question's choice the
        # answer's way) and below the threshold.
        lo_rows = [i for i, v in enumerate(p) if v <= low or (s.verified[i] and v < THRESHOLD)]
        hi_right = sum(1 for i in hi_rows if s.y[i])
        lo_right = sum(1 for i in lo_rows if not s.y[i])
        notes.append(
            f"{s.name}: confidently hallucinated on {len(hi_rows)}/{len(p)} rows (p>={high:.3f}), "
            f"{hi_right / max(1, len(hi_rows)):.3f} of them right; confidently grounded on "
            f"{len(lo_rows)} rows, {lo_right / max(1, len(lo_rows)):.3f} of them right"
        )
    return low, high, notes


def _report_and_fit(
    sets: Sequence[TrainingSet], exclude: Sequence[str], title: str
) -> tuple[LogisticModel, dict[str, object]]:
    oof = cross_validate(sets, exclude)
    print(f"== {title}\n{FOLDS}-fold grouped cross-validation (out-of-fold predictions):")
    print(format_table([(s.name, _metrics(s, p)) for s, p in zip(sets, oof, strict=True)]))
    low, high, notes = confident_bounds(sets, oof)
    print("\n".join(notes))
    m = fit(sets, exclude=exclude)
    model = LogisticModel(m.features, m.weights, m.bias, THRESHOLD, low, high)
    print("fitted on all dev rows, scored on the same rows:")
    print(format_table([(s.name, _metrics(s, [model.probability(r) for r in s.x])) for s in sets]))
    print("weights: " + ", ".join(f"{f}={w:.3f}" for f, w in zip(model.features, model.weights, strict=True)))
    print(f"bias={model.bias:.3f}\n")
    cv = [(s.name, _metrics(s, p)) for s, p in zip(sets, oof, strict=True)]
    return model, {
        "folds": FOLDS,
        "l2": L2,
        "excluded": list(exclude),
        "cv_accuracy": {name: round(m.accuracy, 4) for name, m in cv},
        "cv_auroc": {name: round(m.auroc, 4) for name, m in cv},
        "cv_balanced_accuracy_by_domain": {
            name: {d: round(v, 4) for d, v in m.balanced_accuracy_by_domain.items()}
            for name, m in cv
            if m.balanced_accuracy_by_domain
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halueval", type=Path, default=_DATA_ROOT / "halueval-qa" / "dev.jsonl")
    parser.add_argument("--summedits", type=Path, default=_DATA_ROOT / "summedits" / "dev.jsonl")
    parser.add_argument("--dry-run", action="store_true", help="report only; do not write the model files")
    args = parser.parse_args(argv)
    sets = [featurize("halueval-qa", args.halueval), featurize("summedits", args.summedits)]
    model, info = _report_and_fit(sets, (), "default model")
    if not args.dry_run:
        model.save(DEFAULT_MODEL_PATH, info)
        print(f"wrote {DEFAULT_MODEL_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
