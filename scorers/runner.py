"""One scorer's job: pick what to score, score it, write the scores, move the watermark.

- Sampling is by a hash of the trace id computed in ClickHouse, so every replica and every re-run
  picks the same traces; spans with error status are always eligible.
- Stratified sampling (`stratum_min_per_hour`): a stratum (service, model, release) whose traffic
  in the previous clock hour would give it fewer scored spans than that at `sample_rate` gets the
  higher rate that does, and one with no traffic then (a new release) is scored whole: a quiet
  release still gets the samples its drift test needs. The rates are a function of stored traffic in
  a window fixed by the clock hour, so every replica computes the same ones, and the decision stays
  "hash of the trace id below the rate", so within a stratum a trace is in or out for all of them.
- Sharding is by another hash of the trace id: replica i of n scores the traces with hash % n == i,
  and a trace never splits across replicas.
- A watermark on `ingested_at` per (tenant, scorer, version, shard) says how far scoring got; each
  run also re-reads a sweep window behind it, so spans that reach the store late (a slow flush, a
  spool replay) are still scored. Spans that already have a score for this scorer version are
  skipped in the query itself, so a re-run, a restart or an overlap never scores twice, and if two
  writes of the same key ever happen, ReplacingMergeTree keeps one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from driftline.scorers.base import LLM_OPERATIONS, Score, Scorer, SpanRow, TraceContext
from driftline.store import Store
from driftline.store.records import SpanRecord

__all__ = ["SCORE_SCHEMA", "JobOptions", "RunResult", "ScorerJob", "score_model"]

log = logging.getLogger(__name__)

SCORE_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()), ("trace_id", pa.string()), ("span_id", pa.string()),
        ("scorer", pa.string()), ("scorer_version", pa.string()), ("value", pa.float64()),
        ("label", pa.string()), ("explanation", pa.string()), ("service", pa.string()),
        ("operation", pa.string()), ("model", pa.string()), ("release", pa.string()),
        ("environment", pa.string()), ("span_start_time", pa.timestamp("ns", tz="UTC")),
        ("scored_at", pa.timestamp("ms", tz="UTC")), ("details", pa.string()),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class JobOptions:
    sample_rate: float = 1.0  # share of traces scored (errors always are)
    shard_index: int = 0
    shard_count: int = 1
    sweep: timedelta = timedelta(minutes=10)  # how far behind the watermark each run looks again
    settle: timedelta = timedelta(seconds=1)  # ignore spans ingested in the last moment
    max_spans_per_run: int = 5000
    tenants: Sequence[str] = ()  # empty: all
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)  # column -> allowed values
    models: Sequence[str] = ()  # request or response model
    error_only: bool = False
    max_spans_per_hour: int = 0  # per tenant per clock hour; 0: no limit. Spans beyond it stay unscored
    # Stratified sampling (with sample_rate < 1): each (service, model, release) is sampled at least
    # at the rate that scores this many of its spans an hour, judged by its traffic in the previous
    # clock hour; a stratum that had none (a new release) is scored whole. 0: one rate for all.
    stratum_min_per_hour: int = 0

    @property
    def shard(self) -> str:
        return f"{self.shard_index}/{self.shard_count}"


@dataclass
class RunResult:
    candidates: int = 0
    scored: int = 0
    failed: int = 0
    lag_s: float = 0.0
    tenants: int = 0
    tenant_errors: int = 0  # tenants whose run failed (logged by tenant; retried next run)
    over_budget: int = 0  # spans left unscored: the tenant's max_spans_per_hour was reached


def _utc(value: datetime) -> datetime:
    """clickhouse-connect returns naive datetimes for UTC columns (its default tz_mode): mark them."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _own_model(span: SpanRow) -> str:
    return str(span.get("response_model") or span.get("request_model") or "")


def _asked_for(call: SpanRow, tool_call_id: str) -> bool:
    try:
        requested = json.loads(str(call.get("tool_calls") or "[]"))
    except ValueError:
        return False
    return isinstance(requested, list) and any(isinstance(c, dict) and c.get("id") == tool_call_id for c in requested)


def score_model(span: SpanRow, trace: Sequence[SpanRow]) -> str:
    """The `model` a span's score is labelled with (the SLIs' model label): the span's own model;
    for a span without one (a tool run, an agent step), the model that asked for it: the LLM call
    of its trace whose tool_calls name its tool_call_id, else the last LLM call that started
    before it, else the trace's first LLM call. '' when the trace has no model at all."""
    if own := _own_model(span):
        return own
    calls = [s for s in trace if s.get("operation") in LLM_OPERATIONS and _own_model(s)]  # oldest first
    call_id = str(span.get("tool_call_id") or "")
    if call_id:
        for c in calls:
            if _asked_for(c, call_id):
                return _own_model(c)
    before = [c for c in calls if c["start_time"] <= span["start_time"]]
    return _own_model(before[-1]) if before else (_own_model(calls[0]) if calls else "")


class ScorerJob:
    def __init__(
        self,
        scorer: Scorer,
        store: Store,
        options: JobOptions = JobOptions(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.scorer = scorer
        self.store = store
        self.opt = options
        self.clock = clock
        self.last = RunResult()
        self._spent: dict[str, tuple[str, int]] = {}  # tenant -> (clock hour, spans scored in it)

    # -- the run ------------------------------------------------------------------------
    def run_once(self) -> RunResult:
        now = self.clock()
        until = now - self.opt.settle
        result = RunResult()
        oldest_wm = until
        for tenant in self._tenants(until):
            result.tenants += 1
            try:
                new_wm = self._run_tenant(tenant, until, result)
            except Exception:  # one tenant the store refuses never stops the others
                result.tenant_errors += 1
                log.exception("scorer %s failed for tenant %s; its watermark stays", self.scorer.name, tenant)
                continue
            oldest_wm = min(oldest_wm, new_wm)
        result.lag_s = max(0.0, (now - oldest_wm).total_seconds())
        self.last = result
        return result

    def _run_tenant(self, tenant: str, until: datetime, result: RunResult) -> datetime:
        """Score one tenant's new spans, then move its watermark; the new watermark."""
        wm = self._watermark(tenant)
        since = (wm - self.opt.sweep) if wm is not None else datetime(1970, 1, 1, tzinfo=UTC)
        rows = self._candidates(tenant, since, until, strata=self.strata(tenant))
        result.candidates += len(rows)
        new_wm = until
        if len(rows) >= self.opt.max_spans_per_run:  # more than one run's worth: resume after these
            new_wm = _utc(rows[-1]["ingested_at"])
        scored, failed = self._score_and_write(tenant, rows, result)
        result.scored += scored
        result.failed += failed
        self._set_watermark(tenant, new_wm)
        return new_wm

    def backfill(
        self,
        since: datetime,
        until: datetime,
        on_tenant: Callable[[int, int, str], None] | None = None,
        on_page: Callable[[RunResult], None] | None = None,
    ) -> RunResult:
        """Re-score spans that *started* in (since, until], whatever their scores: replaces. Each
        tenant's window is read in pages of `max_spans_per_run` spans, to its end.

        Progress: `on_tenant(done, total, what)` (a progress bar's StepFn) hears of each tenant before
        it starts and after each page ("tenant: N spans"); `on_page(result)` gets the running totals
        after each page."""
        result = RunResult()
        tenants = self._tenants(None)
        for i, tenant in enumerate(tenants):
            if on_tenant is not None:
                on_tenant(i, len(tenants), tenant)
            result.tenants += 1
            after: tuple[datetime, str, str] | None = None
            spans = 0
            while True:
                rows = self._candidates(
                    tenant, since, until, by_start=True, skip_scored=False, after=after, strata=self.strata(tenant)
                )
                result.candidates += len(rows)
                spans += len(rows)
                s, f = self._score_and_write(tenant, rows, result)
                result.scored += s
                result.failed += f
                last_page = len(rows) < self.opt.max_spans_per_run
                if on_tenant is not None:
                    on_tenant(i + last_page, len(tenants), f"{tenant}: {spans} spans")
                if on_page is not None:
                    on_page(result)
                if last_page:
                    break
                last = rows[-1]
                after = (_utc(last["start_time"]), last["trace_id"], last["span_id"])
        return result

    def strata(self, tenant: str) -> dict[tuple[str, str, str], int] | None:
        """Sampling rates (ppm) per (service, model, release), or None for one rate for all."""
        o = self.opt
        if o.stratum_min_per_hour <= 0 or o.sample_rate >= 1.0:
            return None
        hour = self.clock().replace(minute=0, second=0, microsecond=0)
        traffic = self.store.scoring.stratum_traffic(tenant, hour - timedelta(hours=1), hour)
        base = round(o.sample_rate * 1_000_000)
        return {k: min(1_000_000, max(base, -(-o.stratum_min_per_hour * 1_000_000 // n))) for k, n in traffic.items()}

    # -- queries --------------------------------------------------------------------------
    def _tenants(self, until: datetime | None) -> list[str]:
        if self.opt.tenants:
            return list(self.opt.tenants)
        return self.store.cross_tenant.tenants_with_spans()

    def _watermark(self, tenant: str) -> datetime | None:
        wm = self.store.scoring.watermark(tenant, self.scorer.name, self.scorer.version, self.opt.shard)
        return None if wm is None else _utc(wm)

    def _set_watermark(self, tenant: str, wm: datetime) -> None:
        table = pa.table(
            {
                "tenant": [tenant],
                "scorer": [self.scorer.name],
                "scorer_version": [self.scorer.version],
                "shard": [self.opt.shard],
                "watermark": pa.array([wm], pa.timestamp("ms", tz="UTC")),
                "updated_at": pa.array([self.clock()], pa.timestamp("ms", tz="UTC")),
            }
        )
        self.store.insert_arrow("scorer_state", table)

    def _candidates(
        self,
        tenant: str,
        since: datetime,
        until: datetime,
        by_start: bool = False,
        skip_scored: bool = True,
        after: tuple[datetime, str, str] | None = None,
        strata: dict[tuple[str, str, str], int] | None = None,
    ) -> list[SpanRecord]:
        o = self.opt
        return self.store.scoring.candidates(
            tenant,
            scorer=self.scorer.name,
            version=self.scorer.version,
            since=since,
            until=until,
            shard_index=o.shard_index,
            shard_count=o.shard_count,
            sample_ppm=round(o.sample_rate * 1_000_000),
            limit=o.max_spans_per_run,
            by_start=by_start,
            skip_scored=skip_scored,
            error_only=o.error_only,
            filters=o.filters,
            models=o.models,
            after=after,
            strata=strata,
        )

    # -- scoring --------------------------------------------------------------------------
    def _budget_left(self, tenant: str) -> int | None:
        """Spans this tenant may still have scored this clock hour; None: no limit."""
        if self.opt.max_spans_per_hour <= 0:
            return None
        hour, n = self._spent.get(tenant, ("", 0))
        return self.opt.max_spans_per_hour - (n if hour == self.clock().strftime("%Y-%m-%dT%H") else 0)

    def carry_hourly_count_from(self, other: ScorerJob) -> None:
        """Take over the spans `other` scored this clock hour (a judge's job rebuilt for an edit:
        editing is no way round max_spans_per_hour)."""
        self._spent = dict(other._spent)

    def _spend(self, tenant: str, n: int) -> None:
        now = self.clock().strftime("%Y-%m-%dT%H")
        hour, spent = self._spent.get(tenant, (now, 0))
        self._spent[tenant] = (now, (spent if hour == now else 0) + n)

    def _score_and_write(self, tenant: str, rows: list[SpanRecord], result: RunResult) -> tuple[int, int]:
        todo = [r for r in rows if self.scorer.applies(r)]
        left = self._budget_left(tenant)
        if left is not None and len(todo) > left:
            # Beyond the hourly budget: left unscored (a later run's sweep may still reach them).
            result.over_budget += len(todo) - max(0, left)
            todo = todo[: max(0, left)]
        if not todo:
            return 0, 0
        # Traces for the scorer, and for spans without a model of their own (a tool run): their
        # score is labelled with the model that asked for them (score_model).
        wanted = {r["trace_id"] for r in todo if self.scorer.needs_trace or not _own_model(r)}
        traces = self.store.scoring.trace_spans(tenant, sorted(wanted))

        def one(r: SpanRecord) -> Score | Exception | None:
            try:
                return self.scorer.score(r, TraceContext(traces.get(r["trace_id"], ())))
            except Exception as e:  # one bad span never stops the run; it is logged by id and retried next run
                log.exception("scorer %s failed on %s/%s", self.scorer.name, r["trace_id"], r["span_id"])
                return e

        # A scorer that waits on an endpoint (an LLM judge) says how many calls it may have in
        # flight; its spans are scored that many at a time. Results keep the spans' order.
        workers = min(int(getattr(self.scorer, "concurrency", 1) or 1), len(todo))
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix=f"score-{self.scorer.name}") as pool:
                results = list(pool.map(one, todo))
        else:
            results = [one(r) for r in todo]
        out: list[tuple[SpanRecord, Score, str]] = []
        failed = 0
        for r, s in zip(todo, results, strict=True):
            if isinstance(s, Exception):
                failed += 1
            elif s is not None:
                out.append((r, s, score_model(r, traces.get(r["trace_id"], ()))))
        if out:
            self.store.insert_arrow("scores", self._table(tenant, out))
        self._spend(tenant, len(todo))
        return len(out), failed

    def _table(self, tenant: str, scored: list[tuple[SpanRecord, Score, str]]) -> pa.Table:
        now_ms = int(self.clock().timestamp() * 1000)
        cols: dict[str, list[Any]] = {f.name: [] for f in SCORE_SCHEMA}
        for r, s, model in scored:
            cols["tenant"].append(tenant)
            cols["trace_id"].append(r["trace_id"])
            cols["span_id"].append(r["span_id"])
            cols["scorer"].append(self.scorer.name)
            cols["scorer_version"].append(self.scorer.version)
            cols["value"].append(float(s.value))
            cols["label"].append(s.label)
            cols["explanation"].append(s.explanation[:2000])
            cols["service"].append(r.get("service") or "")
            cols["operation"].append(r.get("operation") or "")
            cols["model"].append(model)
            cols["release"].append(r.get("release") or "")
            cols["environment"].append(r.get("environment") or "")
            cols["span_start_time"].append(r["start_time"])
            cols["scored_at"].append(now_ms)
            cols["details"].append(json.dumps(dict(s.details), default=str) if s.details else "")
        return pa.table(cols, schema=SCORE_SCHEMA)
