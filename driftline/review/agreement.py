"""How far each automatic scorer can be trusted: its agreement with people's final labels.

For every rubric field tied to a scorer (`LabelField.scorer`), each finished item labeled in the
window gives one pair (human value, scorer verdict) per scorer version that scored the item: the
score of the item's span when there is one, else the trace's highest score of that scorer. Scorer
labels are read through the field's `scorer_labels` (identity by default); pairs where either side
is no verdict (a scorer's `no_context`, a reviewer's `unsure`) are left out.

Accuracy, Cohen's kappa and the confusion matrix are computed here by hand: two sums over a small
matrix, not worth a dependency (scikit-learn's cohen_kappa_score gives the same figures).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftline.review.desk import Queue, ReviewDesk, label_row
from driftline.review.golden import scorer_value
from driftline.review.models import ScorerAgreement, as_text
from driftline.review.workflow import Label, final_fields, fold
from driftline.store import Store
from driftline.store.queries import review as q

__all__ = ["AgreementJob", "agreement", "cohen_kappa", "confusion"]

log = logging.getLogger(__name__)


def confusion(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> list[list[int]]:
    """Rows: the human label, columns: the scorer's, both in `labels` order."""
    index = {lab: i for i, lab in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for human, machine in pairs:
        m[index[human]][index[machine]] += 1
    return m


def cohen_kappa(m: Sequence[Sequence[int]]) -> float | None:
    """Cohen's kappa of a confusion matrix; None when chance agreement is total (one label only)."""
    n = sum(sum(row) for row in m)
    if n == 0:
        return None
    observed = sum(m[i][i] for i in range(len(m))) / n
    chance = sum(sum(m[i]) * sum(row[i] for row in m) for i in range(len(m))) / (n * n)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def _verdicts(scores: list[dict[str, Any]], span_id: str) -> dict[tuple[str, str], str]:
    """(scorer, version) -> label for one trace: the item's span's score, else the highest."""
    out: dict[tuple[str, str], tuple[bool, float, str]] = {}
    for s in scores:
        key = (str(s["scorer"]), str(s["scorer_version"]))
        rank = (s["span_id"] == span_id and span_id != "", float(s["value"]) if math.isfinite(s["value"]) else -1e300)
        if key not in out or rank > out[key][:2]:
            out[key] = (*rank, str(s["label"]))
    return {k: v[2] for k, v in out.items()}


def agreement(
    store: Store, tenant: str, queues: Sequence[Queue], since: datetime, until: datetime
) -> list[ScorerAgreement]:
    """Agreement per (scorer, version, queue, field) over items whose final label came in [since, until)."""
    out: list[ScorerAgreement] = []
    for qu in queues:
        d = qu.definition
        tied = [f for f in d.rubric.fields if f.scorer]
        if not tied:
            continue
        by_trace: dict[str, list[Label]] = {}
        for r in q.labels(store, tenant, qu.name):
            by_trace.setdefault(str(r["trace_id"]), []).append(label_row(r))
        finals: dict[str, dict[str, Any]] = {}
        for trace_id, lbs in by_trace.items():
            st = fold([], lbs, d.rubric, d.reviewers_per_item, until)
            final = final_fields(st)
            decided = max(lb.labeled_at for lb in lbs)
            if final is not None and since <= decided < until:
                finals[trace_id] = final[0]
        if not finals:
            continue
        spans = {str(r["trace_id"]): str(r["span_id"]) for r in q.items(store, tenant, qu.name, sorted(finals))}
        scores: dict[str, list[dict[str, Any]]] = {}
        for s in q.scores_for_traces(store, tenant, sorted(finals), sorted({f.scorer for f in tied})):
            scores.setdefault(str(s["trace_id"]), []).append(s)
        for f in tied:
            targets = sorted(set(f.scorer_labels.values()) if f.scorer_labels else set(f.values() or []))
            pairs: dict[str, list[tuple[str, str]]] = {}
            for trace_id, fields in finals.items():
                if fields.get(f.name) is None or as_text(fields[f.name]) not in targets:
                    continue
                for (scorer, version), label in _verdicts(scores.get(trace_id, []), spans.get(trace_id, "")).items():
                    machine = scorer_value(f, label)
                    if scorer == f.scorer and machine is not None and machine in targets:
                        pairs.setdefault(version, []).append((as_text(fields[f.name]), machine))
            for version, ps in sorted(pairs.items()):
                m = confusion(ps, targets)
                out.append(ScorerAgreement(
                    scorer=f.scorer, version=version, queue=qu.name, field=f.name, n=len(ps),
                    accuracy=sum(h == s for h, s in ps) / len(ps), kappa=cohen_kappa(m), labels=targets, confusion=m,
                ))  # fmt: skip
    return out


@dataclass
class _Snapshot:
    rows: list[tuple[str, ScorerAgreement]]


class _Exporter(Collector):
    def __init__(self, job: AgreementJob) -> None:
        self._job = job

    def collect(self) -> Iterator[GaugeMetricFamily]:
        names = ["tenant", "scorer", "version", "queue", "field"]
        acc = GaugeMetricFamily(
            "driftline_review_agreement_accuracy",
            "Share of reviewed items where the scorer agreed with people.",
            labels=names,
        )
        kappa = GaugeMetricFamily(
            "driftline_review_agreement_kappa", "Cohen's kappa between the scorer and people's labels.", labels=names
        )
        n = GaugeMetricFamily(
            "driftline_review_agreement_items", "Reviewed items the agreement is computed over.", labels=names
        )
        for tenant, a in self._job.snapshot.rows:
            lab = [tenant, a.scorer, a.version, a.queue, a.field]
            n.add_metric(lab, a.n)
            if a.accuracy is not None:
                acc.add_metric(lab, a.accuracy)
            if a.kappa is not None:
                kappa.add_metric(lab, a.kappa)
        yield acc
        yield kappa
        yield n


class AgreementJob:
    """The scheduled computation behind the gauges: per tenant, over the last `window`."""

    def __init__(
        self, desk: ReviewDesk, window: timedelta, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.desk = desk
        self.window = window
        self.clock = clock
        self.snapshot = _Snapshot([])
        self.collector = _Exporter(self)

    def run_once(self) -> _Snapshot:
        until = self.clock()
        rows: list[tuple[str, ScorerAgreement]] = []
        for tenant in self.desk.store.cross_tenant.tenants_with_spans():
            queues = self.desk.queues(tenant)
            rows += [(tenant, a) for a in agreement(self.desk.store, tenant, queues, until - self.window, until)]
        self.snapshot = _Snapshot(rows)
        return self.snapshot
