"""The LLM judge as a classifier on the labeled sets, when a judge endpoint is configured.

Each labeled row becomes the span the judge would see in production: the answer as the model
output, the question as the user input, and the passage as a retrieved document in the trace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from driftline.config import ScorerSettings
from driftline.scorers.base import Score, TraceContext
from driftline.scorers.evaluate import Metrics, evaluate, format_table
from driftline.scorers.judge import HallucinationJudgeScorer, JudgeConfig
from driftline.scorers.metrics import ScorerMetrics

__all__ = ["JudgeAsClassifier", "evaluate_judge"]


class JudgeAsClassifier:
    threshold = 0.5

    def __init__(self, judge: HallucinationJudgeScorer) -> None:
        self.judge = judge

    def score(self, answer: str, context: str, question: str = "") -> Score:
        span = {"tenant": "eval", "span_id": "answer", "start_time": 1, "operation": "chat",
                "output_text": answer, "input_text": question}  # fmt: skip
        docs = json.dumps([{"content": context}])
        trace = TraceContext([{"span_id": "retrieval", "start_time": 0, "retrieved_documents": docs}])
        s = self.judge.score(span, trace)
        if s is None:  # over budget: counted as "not flagged", and visible in the judge's metrics
            return Score(0.5, "skipped")
        return s if not math.isnan(s.value) else Score(0.5, s.label, s.explanation)


def _limited(path: Path, limit: int, tmp: Path) -> Path:
    """The first `limit` rows (a judge costs money); the sets are ordered so pairs stay together."""
    if limit <= 0:
        return path
    out = tmp / path.name
    with path.open() as src, out.open("w") as dst:
        for i, line in enumerate(src):
            if i >= limit:
                break
            dst.write(line)
    return out


def evaluate_judge(
    settings: ScorerSettings, sets: Sequence[tuple[str, Path]], limit: int, tmp: Path, **judge_kw: Any
) -> list[tuple[str, Metrics]]:
    cfg = JudgeConfig(
        base_url=settings.judge_base_url,
        model=settings.judge_model,
        api_key=settings.judge_api_key.get_secret_value(),
        budget_tokens_per_hour=settings.judge_budget_tokens_per_hour,
        budget_usd_per_hour=settings.judge_budget_usd_per_hour,
        prefilter=False,  # measure the judge itself
        **judge_kw,
    )
    judge = HallucinationJudgeScorer(cfg, ScorerMetrics(CollectorRegistry()))
    clf = JudgeAsClassifier(judge)
    return [(name, evaluate(clf, _limited(path, limit, tmp), f"judge {name}")) for name, path in sets]


def print_judge_table(rows: list[tuple[str, Metrics]], model: str) -> None:
    print(f"\nLLM judge ({model}):")
    print(format_table(rows))
