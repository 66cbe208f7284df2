"""The LLM judges' verdict cache: verdicts by (tenant, judge, judge version, input hash) in the
store's `judge_cache` table, so a re-run, a backfill, a restart or another replica asks the
endpoint nothing it has answered before. The input hash is the sha256 of exactly what the judge
was asked (the rendered messages)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from driftline.store import Store

__all__ = ["JudgeCache", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    value: float
    label: str
    reasoning: str


class JudgeCache:
    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock

    def get(self, tenant: str, judge: str, version: str, input_hash: str) -> Verdict | None:
        row = self.store.judges.cached(tenant, judge, version, [input_hash]).get(input_hash)
        return None if row is None else Verdict(float(row["value"]), str(row["label"]), str(row["reasoning"]))

    def put(self, tenant: str, judge: str, version: str, input_hash: str, v: Verdict) -> None:
        table = pa.table(
            {
                "tenant": [tenant], "judge": [judge], "judge_version": [version], "input_hash": [input_hash],
                "value": [v.value], "label": [v.label], "reasoning": [v.reasoning],
                "created_at": pa.array([self.clock()], pa.timestamp("ms", tz="UTC")),
            }
        )  # fmt: skip
        self.store.insert_arrow("judge_cache", table)
