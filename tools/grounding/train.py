"""Fit the scorer's logistic model on the dev sets, after measuring it by grouped cross-validation.

    python -m tools.grounding.train [--halueval PATH] [--summedits PATH] [--dry-run]

Writes `scorers/grounding/data/model.json`: the model fitted on all dev rows, with the
cross-validated figures it was shipped on. The folds (scorers/grounding/crossval.py) keep every
question (HaluEval) or source document (SummEdits) inside one fold, and hold out a whole SummEdits
domain at a time; the model is refitted inside each fold on its training rows only. What is shipped
is the same recipe fitted on all rows, so the cross-validated figures are the ones to expect of it.

Before writing, the new figures are set against those recorded in the current model file, fold by
fold, with a verdict: a change stays only if it gains across folds (more held-out folds up than
down on every set, no pooled figure lower) and labels no more of the long faithful answers
(scorers/grounding/data/faithful_answers.jsonl, never fitted on) hallucinated.

A caution that no split of the dev sets can lift: the features are hand-written rules, and rules
written while reading dev misses win on every dev fold (those misses are in the folds). Version 2's
question-role rules did exactly that, then failed to carry over to unseen questions; they are gone.
A new rule needs evidence from outside the rows it was written from.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from driftline.scorers.grounding.crossval import (
    FOLDS,
    L2,
    THRESHOLD,
    CVResult,
    LabelledSet,
    SetChange,
    compare,
    cross_validate,
    featurize,
    fit,
    gains_across_folds,
)
from driftline.scorers.grounding.model import DEFAULT_MODEL_PATH, LogisticModel

__all__ = ["confident_bounds", "format_changes", "main"]

_DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"
# `confident` must be right this often, out of fold, on each set.
_CONFIDENT_ACCURACY = 0.95


def confident_bounds(sets: Sequence[LabelledSet], oof: Sequence[Sequence[float]]) -> tuple[float, float, list[str]]:
    """The loosest bounds whose out-of-fold predictions are right at least 95% of the time on every
    set that has rows beyond them.

    Chosen separately for each side: an answer with no evidence against it is not thereby proven
    grounded, so the low side may well never be confident (then it is 0)."""
    candidates = sorted({v for p in oof for v in p})

    def ok(c: float, hallucinated_side: bool) -> bool:
        for s, p in zip(sets, oof, strict=True):
            y = s.y
            idx = [i for i, v in enumerate(p) if (v >= c if hallucinated_side else v <= c)]
            if idx and sum(1 for i in idx if y[i] == hallucinated_side) < _CONFIDENT_ACCURACY * len(idx):
                return False
        return True

    high = next((c for c in candidates if c >= THRESHOLD and ok(c, True)), 1.0)
    low = next((c for c in reversed(candidates) if c < THRESHOLD and ok(c, False)), 0.0)
    notes = []
    for s, p in zip(sets, oof, strict=True):
        y = s.y
        hi_rows = [i for i, v in enumerate(p) if v >= high]
        # Confidently grounded: below `low`, or verified (the context decides the question's choice the
        # answer's way) and below the threshold.
        lo_rows = [i for i, v in enumerate(p) if v <= low or (s.analyses[i].verified and v < THRESHOLD)]
        hi_right = sum(1 for i in hi_rows if y[i])
        lo_right = sum(1 for i in lo_rows if not y[i])
        notes.append(
            f"{s.name}: confidently hallucinated on {len(hi_rows)}/{len(p)} rows (p>={high:.3f}), "
            f"{hi_right / max(1, len(hi_rows)):.3f} of them right; confidently grounded on "
            f"{len(lo_rows)} rows, {lo_right / max(1, len(lo_rows)):.3f} of them right"
        )
    return low, high, notes


def _summary(r: CVResult) -> dict[str, object]:
    return {
        "scheme": r.scheme,
        "pooled_balanced_accuracy": round(r.pooled, 4),
        "fold_mean": round(r.mean, 4),
        "fold_std": round(r.std, 4),
        "fold_min": round(r.min, 4),
        "fold_max": round(r.max, 4),
        "folds": {f.name: round(f.balanced_accuracy, 4) for f in r.folds},
    }


def format_changes(changes: Sequence[SetChange], faithful: tuple[int, int], recorded_faithful: object) -> str:
    """The new grouped-CV figures against the recorded ones, fold by fold, and the verdict."""
    lines = ["against the figures recorded in the current model file:"]
    for c in changes:
        gained = f"; up: {', '.join(c.gained)}" if c.gained else ""
        lost = f"; down: {', '.join(c.lost)}" if c.lost else ""
        lines.append(
            f"  {c.name:<12} pooled {c.pooled_before:.3f} -> {c.pooled_after:.3f}; folds up {len(c.gained)}, "
            f"down {len(c.lost)}, same {c.unchanged}{gained}{lost}"
        )
    grounded, n = faithful
    faithful_ok = True
    if isinstance(recorded_faithful, list) and len(recorded_faithful) == 2:
        before_grounded, before_n = recorded_faithful
        lines.append(f"  faithful     labelled grounded {before_grounded}/{before_n} -> {grounded}/{n}")
        faithful_ok = before_n != n or grounded >= before_grounded
    if not changes:
        verdict = "nothing recorded to compare with"
    elif gains_across_folds(changes) and faithful_ok:
        verdict = "gains across folds"
    elif all(c.holds and not c.gained for c in changes) and faithful_ok:
        verdict = "no held-out fold moved"
    else:
        verdict = "does not gain across folds (or flags more faithful answers): do not keep it"
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines)


def _faithful_grounded(model: LogisticModel) -> tuple[int, int]:
    """How many of the long faithful answers the model labels grounded."""
    from driftline.scorers.evaluate import FAITHFUL_PATH

    faithful = featurize("faithful", FAITHFUL_PATH)
    grounded = sum(1 for a in faithful.analyses if model.probability(a.vector()) < model.threshold)
    return grounded, len(faithful.analyses)


def _recorded() -> dict[str, object]:
    if not DEFAULT_MODEL_PATH.exists():
        return {}
    fit_info = json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8")).get("fit")
    return fit_info if isinstance(fit_info, dict) else {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halueval", type=Path, default=_DATA_ROOT / "halueval-qa" / "dev.jsonl")
    parser.add_argument("--summedits", type=Path, default=_DATA_ROOT / "summedits" / "dev.jsonl")
    parser.add_argument("--dry-run", action="store_true", help="report only; do not write the model file")
    args = parser.parse_args(argv)
    # Imported here: the table printer lives with `driftline eval`.
    from driftline.scorers.evaluate import format_cv

    sets = [featurize("halueval-qa", args.halueval), featurize("summedits", args.summedits)]
    results = cross_validate(sets)
    print(format_cv(results))
    low, high, notes = confident_bounds(sets, [r.oof for r in results])
    print("\n".join(notes))
    m = fit([s.vectors() for s in sets], [s.y for s in sets])
    model = LogisticModel(m.features, m.weights, m.bias, THRESHOLD, low, high)
    print("weights: " + ", ".join(f"{f}={w:.3f}" for f, w in zip(model.features, model.weights, strict=True)))
    print(f"bias={model.bias:.3f}")
    faithful = _faithful_grounded(model)
    recorded = _recorded()
    cv_recorded = recorded.get("cv")
    changes = compare(cv_recorded, results) if isinstance(cv_recorded, dict) else []
    print(format_changes(changes, faithful, recorded.get("faithful_grounded")))
    info: dict[str, object] = {
        "l2": L2,
        "group_folds": FOLDS,
        "cv": {r.name: _summary(r) for r in results},
        "faithful_grounded": list(faithful),
    }
    if not args.dry_run:
        model.save(DEFAULT_MODEL_PATH, info)
        print(f"wrote {DEFAULT_MODEL_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
