"""A small logistic model over the scorer's features, stored as JSON beside the code.

Fitting lives here too (numpy, dev-time only); scoring is a plain dot product, so the scorer needs
no numerical library at run time. Every feature is evidence *for* hallucination, so fitted weights
are kept non-negative: a fit that wanted "more unsupported names -> more faithful" would be learning
a quirk of the training data, not a rule that holds elsewhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["DEFAULT_MODEL_PATH", "LogisticModel", "fit_logistic"]

DEFAULT_MODEL_PATH = Path(__file__).with_name("data") / "model.json"


@dataclass(frozen=True)
class LogisticModel:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float  # probability at or above which an answer is labelled hallucinated
    # A score at or below `confident_low`, or at or above `confident_high`, is far enough from the
    # threshold to be trusted without asking an LLM judge.
    confident_low: float
    confident_high: float

    def confident(self, p: float) -> bool:
        return p <= self.confident_low or p >= self.confident_high

    def probability(self, x: Sequence[float]) -> float:
        z = self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))
        # Split by sign so that exp never overflows.
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def save(self, path: Path = DEFAULT_MODEL_PATH, extra: dict[str, object] | None = None) -> None:
        body: dict[str, object] = dict(asdict(self))
        if extra:
            body["fit"] = extra
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL_PATH) -> LogisticModel:
        body = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            tuple(body["features"]),
            tuple(float(w) for w in body["weights"]),
            float(body["bias"]),
            float(body["threshold"]),
            float(body["confident_low"]),
            float(body["confident_high"]),
        )


def fit_logistic(
    x: Sequence[Sequence[float]],
    y: Sequence[bool],
    sample_weight: Sequence[float],
    l2: float = 1.0,
    iterations: int = 50,
    exclude: Sequence[int] = (),
    signed: Sequence[int] = (),
) -> tuple[list[float], float]:
    """Weighted L2-regularised logistic regression by Newton's method, with the feature weights held
    non-negative (a feature whose weight would go negative is dropped and the rest refitted), except
    at the `signed` positions (an indicator of the kind of input, not evidence either way).
    Features at the `exclude` positions get weight 0."""
    import numpy as np  # dev-time only: keep it out of the scorer's import path

    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    sw = np.asarray(sample_weight, dtype=float)
    n_features = xa.shape[1]
    active = [f for f in range(n_features) if f not in exclude]
    while True:
        design = np.hstack([xa[:, active], np.ones((xa.shape[0], 1))])
        beta = np.zeros(design.shape[1])
        penalty = np.full(design.shape[1], l2)
        penalty[-1] = 0.0  # the bias is not shrunk
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(design @ beta)))
            grad = design.T @ (sw * (p - ya)) + penalty * beta
            hess = (design * (sw * p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(beta))
            step = np.linalg.solve(hess, grad)
            beta -= step
            if float(np.max(np.abs(step))) < 1e-10:
                break
        negative = [f for f, b in zip(active, beta[:-1], strict=True) if b < 0 and f not in signed]
        if not negative:
            weights = [0.0] * n_features
            for f, b in zip(active, beta[:-1], strict=True):
                weights[f] = float(b)
            return weights, float(beta[-1])
        active = [f for f in active if f not in negative]
