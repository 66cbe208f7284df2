"""The scheduled job that fills review queues from what the scorers wrote and users fed back.

Like a scorer job (scorers/runner.py) it keeps a watermark per (tenant, queue) in `scorer_state`
(scorer `review-queue:<name>`, version `fill`) and re-reads a sweep window behind it on each run,
so scores written late are still seen. Each rule's matches are sampled by a hash of (trace id,
queue), so every run and every replica picks the same traces; traces already in the queue are left
out in the query itself, and the items table is keyed by (tenant, queue, trace_id): a re-run adds
no duplicate. The hourly cap counts the items the job added this clock hour; matches over the cap
are not queued (the queue is a sample: reviewers are never flooded), though a later run in the next
hour may still take a match its sweep window reads again. Items added by hand do not count.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter

from driftline.review.desk import Queue, ReviewDesk
from driftline.review.workflow import utc
from driftline.store.queries import review as q

__all__ = ["FillResult", "QueueFiller", "ReviewMetrics"]

log = logging.getLogger(__name__)

FILL_VERSION = "fill"
SHARD = "0/1"  # one filler: the scorer replica 0 runs it, as it runs the SLI job


class ReviewMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.added = Counter(
            "driftline_review_items_added_total", "Items the filling job added to review queues.",
            ["tenant", "queue", "rule"], registry=registry,
        )  # fmt: skip
        self.capped = Counter(
            "driftline_review_items_capped_total",
            "Matches the filling job left out because the queue's hourly cap was reached.",
            ["tenant", "queue"], registry=registry,
        )  # fmt: skip


@dataclass
class FillResult:
    tenants: int = 0
    queues: int = 0
    matched: int = 0
    added: int = 0
    capped: int = 0
    tenant_errors: int = 0


def _reason(rule: dict[str, Any], c: dict[str, Any]) -> str:
    kind = rule["kind"]
    value = c.get("m_value")
    v = f" ({value:.3g})" if isinstance(value, float) and math.isfinite(value) else ""
    if kind == "feedback":
        return f"negative feedback {c.get('m_label') or ''}".strip()
    if kind == "control":
        return "control sample of passing traffic"
    if kind == "disagreement":
        return f"{rule['scorer']} vs {rule['other_scorer']}: {c.get('m_label')}"
    if kind == "outlier":
        return f"{rule['scorer']} above its p{rule['quantile'] * 100:g} of {rule['window_hours']:g} h{v}"
    if kind == "uncertain":
        return f"{rule['scorer']} uncertain: {c.get('m_label')}{v}"
    return f"{rule['scorer']} label {c.get('m_label')}{v}"


class QueueFiller:
    def __init__(
        self,
        desk: ReviewDesk,
        metrics: ReviewMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sweep: timedelta = timedelta(minutes=10),
        settle: timedelta = timedelta(seconds=1),
        first_lookback: timedelta = timedelta(days=1),
        max_matches: int = 5000,
    ) -> None:
        """`first_lookback`: how far back a queue's first run reads; `max_matches`: per rule and run."""
        self.desk = desk
        self.store = desk.store
        self.metrics = metrics
        self.clock = clock
        self.sweep = sweep
        self.settle = settle
        self.first_lookback = first_lookback
        self.max_matches = max_matches
        self.last = FillResult()

    def run_once(self) -> FillResult:
        result = FillResult()
        for tenant in self.store.cross_tenant.tenants_with_spans():
            result.tenants += 1
            try:
                for qu in self.desk.queues(tenant):
                    if qu.definition.enabled and qu.definition.rules:
                        result.queues += 1
                        self._fill(tenant, qu, result)
            except Exception:  # one tenant the store refuses never stops the others
                result.tenant_errors += 1
                log.exception("review queue filling failed for tenant %s; its watermarks stay", tenant)
        self.last = result
        if result.tenant_errors:
            raise RuntimeError(f"review queue filling failed for {result.tenant_errors} tenant(s)")
        return result

    def _fill(self, tenant: str, qu: Queue, result: FillResult) -> None:
        d = qu.definition
        now = self.clock()
        until = now - self.settle
        job = f"review-queue:{qu.name}"
        wm = self.store.scoring.watermark(tenant, job, FILL_VERSION, SHARD)
        since = (utc(wm) - self.sweep) if wm is not None else until - self.first_lookback
        matches: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for rule in d.rules:
            r = rule.model_dump()
            for c in q.candidates(
                self.store, tenant, queue=qu.name, rule=r, salt=qu.name,
                sample_ppm=round(d.sample_rate * rule.sample_rate * 1_000_000),
                since=since, until=until, limit=self.max_matches,
            ):  # fmt: skip
                matches.setdefault(str(c["trace_id"]), (r, c))  # the first rule that matched says why
        result.matched += len(matches)
        hour = now.replace(minute=0, second=0, microsecond=0)
        room = max(0, d.max_per_hour - q.auto_items_since(self.store, tenant, qu.name, hour))
        ordered = sorted(matches.items(), key=lambda kv: (utc(kv[1][1]["trace_start"]), kv[0]))
        take, left = ordered[:room], ordered[room:]
        if left:
            result.capped += len(left)
            if self.metrics is not None:
                self.metrics.capped.labels(tenant, qu.name).inc(len(left))
        facts = q.trace_facts(self.store, tenant, [t for t, _ in take])
        rows = []
        for trace_id, (matched, c) in take:
            f = facts.get(trace_id)
            if f is None:  # scores of a trace whose spans are gone (retention): nothing to review
                continue
            value = c.get("m_value")
            rows.append({
                "queue": qu.name, "trace_id": trace_id, "span_id": str(c.get("m_span") or f["answer_span"] or ""),
                "rule": matched["kind"], "reason": _reason(matched, c)[:500], "scorer": str(c.get("m_scorer") or ""),
                "score_value": float(value) if isinstance(value, int | float) else None,
                "score_label": str(c.get("m_label") or "")[:200], "service": f["service"], "release": f["release"],
                "trace_start": f["trace_start"], "added_by": "", "created_at": now,
            })  # fmt: skip
        q.insert_items(self.store, tenant, rows)
        result.added += len(rows)
        if self.metrics is not None:
            for row in rows:
                self.metrics.added.labels(tenant, qu.name, row["rule"]).inc()
        self._set_watermark(tenant, job, until, now)

    def _set_watermark(self, tenant: str, job: str, wm: datetime, now: datetime) -> None:
        ms = pa.timestamp("ms", tz="UTC")
        table = pa.table({
            "tenant": [tenant], "scorer": [job], "scorer_version": [FILL_VERSION], "shard": [SHARD],
            "watermark": pa.array([wm], ms), "updated_at": pa.array([now], ms),
        })  # fmt: skip
        self.store.insert_arrow("scorer_state", table)
