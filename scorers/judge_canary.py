"""Canaries that watch an LLM judge for drift: a small fixed set of items the judge re-scores on a
schedule, its verdicts compared with a pinned baseline.

The endpoint behind a judge changes without notice (a model update behind the same name, a new
safety layer, a quantized deployment), and with it the judge's verdicts: an SLI made by a drifting
judge drifts with it, and nobody can tell a worse application from a different judge. So each
judge definition with a `canary` keeps a set of items, from a JSON Lines file and/or from a review
golden dataset (items people reviewed), and a scheduled job asks the judge about every item again,
bypassing the verdict cache. The first run of a judge version pins its verdicts as the baseline
(stored, so a restart or another replica compares against the same); every later run counts the
items whose label differs from the baseline and exports it (`driftline_judge_canary_changed`,
`driftline_judge_canary_items`), which `DriftlineJudgeCanaryChanged` alerts on. A new version (an
edited prompt) starts a new baseline: its scores are a new series anyway.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from driftline.scorers.judge_client import JudgeCallError
from driftline.scorers.judge_custom import CustomJudgeScorer
from driftline.scorers.metrics import ScorerMetrics
from driftline.store import Store
from driftline.store.queries import review as review_queries

__all__ = ["CanaryItem", "CanaryJob", "CanaryResult", "load_canary_file", "reviewed_items"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CanaryItem:
    id: str
    variables: dict[str, Any]


def _item(doc: Any, where: str) -> CanaryItem:
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: not a JSON object")
    item_id, output = doc.get("id"), doc.get("output")
    if not isinstance(item_id, str | int) or str(item_id) == "":
        raise ValueError(f"{where}: needs an 'id'")
    if not isinstance(output, str) or not output:
        raise ValueError(f"{where}: needs an 'output' (the answer the judge judges)")
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: 'metadata' must be an object")
    return CanaryItem(
        str(item_id),
        {
            "input": str(doc.get("input") or ""),
            "output": output,
            "context": str(doc.get("context") or ""),
            "expected": str(doc.get("expected") or ""),
            "metadata": {"attributes": {}, **meta},
        },
    )


def load_canary_file(path: Path) -> list[CanaryItem]:
    """Items from JSON Lines: {"id", "output", "input", "context", "expected", "metadata"}; blank
    lines are skipped; a bad line raises ValueError naming it; ids must be unique."""
    items: list[CanaryItem] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{path}:{n}: not JSON: {e}") from None
        items.append(_item(doc, f"{path}:{n}"))
    ids = [i.id for i in items]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{path}: canary id {dup[0]!r} appears twice")
    return items


def reviewed_items(store: Store, tenant: str, dataset: str) -> list[CanaryItem]:
    """Items people reviewed: the records of a review golden dataset (driftline/review/golden.py),
    with the reviewer's corrected answer, if any, as `expected`."""
    out = []
    for text in review_queries.dataset_records(store, tenant, dataset):
        r = json.loads(text)
        if not r.get("output"):
            continue
        doc = {"id": f"review:{r['trace_id']}:{r.get('span_id', '')}", "input": r.get("input"),
               "output": r["output"], "context": r.get("context"), "expected": r.get("corrected_answer")}  # fmt: skip
        out.append(_item(doc, f"dataset {dataset!r}"))
    return out


@dataclass
class CanaryResult:
    items: int = 0  # items with a verdict now and a baseline to compare it with
    changed: int = 0
    pinned: int = 0  # items that got their baseline in this run
    skipped: int = 0  # over budget or the call failed: no verdict this run
    changed_ids: list[str] = field(default_factory=list)


class CanaryJob:
    def __init__(
        self,
        judge: CustomJudgeScorer,
        store: Store,
        metrics: ScorerMetrics,
        tenant: str,
        items: Callable[[], Sequence[CanaryItem]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.judge = judge
        self.store = store
        self.m = metrics
        self.tenant = tenant
        self.items = items
        self.clock = clock

    @property
    def name(self) -> str:
        return f"canary:{self.judge.name}"

    def run_once(self) -> CanaryResult:
        j, result = self.judge, CanaryResult()
        baseline = self.store.judges.canary(self.tenant, j.name, j.version, "baseline")
        verdicts: list[tuple[str, str, float, str]] = []
        for item in self.items():
            try:
                s = j.judge(self.tenant, item.variables, use_cache=False)  # ask the judge, not the cache
            except JudgeCallError:
                log.warning("canary %s: item %s got no verdict this run (the call failed)", self.name, item.id)
                s = None
            if s is None or s.label == "error":
                result.skipped += 1
                continue
            verdicts.append((item.id, s.label, s.value, s.explanation))
            before = baseline.get(item.id)
            if before is None:
                result.pinned += 1
            else:
                result.items += 1
                if before["label"] != s.label:
                    result.changed += 1
                    result.changed_ids.append(item.id)
        self._write("latest", verdicts)
        self._write("baseline", [v for v in verdicts if v[0] not in baseline])
        self.m.canary_items.labels(j.name, self.tenant).set(result.items)
        self.m.canary_changed.labels(j.name, self.tenant).set(result.changed)
        self.m.canary_last_run.labels(j.name, self.tenant).set(self.clock().timestamp())
        if result.changed:
            log.warning("canary %s: %d of %d verdicts differ from the baseline (items %s)", self.name,
                        result.changed, result.items, ", ".join(result.changed_ids[:10]))  # fmt: skip
        return result

    def _write(self, kind: str, verdicts: list[tuple[str, str, float, str]]) -> None:
        if not verdicts:
            return
        j, n = self.judge, len(verdicts)
        self.store.insert_arrow(
            "judge_canary",
            pa.table(
                {
                    "tenant": [self.tenant] * n, "judge": [j.name] * n, "judge_version": [j.version] * n,
                    "kind": [kind] * n, "item_id": [v[0] for v in verdicts], "label": [v[1] for v in verdicts],
                    "value": [v[2] for v in verdicts], "reasoning": [v[3] for v in verdicts],
                    "run_at": pa.array([self.clock()] * n, pa.timestamp("ms", tz="UTC")),
                }
            ),
        )  # fmt: skip
