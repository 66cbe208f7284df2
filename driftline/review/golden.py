"""Golden sets: a queue's finished items as JSONL records (input, context, output, labels, note,
corrected answer, trace id), and named datasets that accumulate them.

`expected` maps each scorer a rubric field judges to the label that scorer should have given, in
the scorer's own label space (the field's `scorer_labels` read backwards): what
`driftline eval --dataset` compares a scorer with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from driftline.review.desk import Queue, label_row
from driftline.review.models import LabelField, as_text
from driftline.review.workflow import final_fields, fold, utc
from driftline.scorers.base import TraceContext
from driftline.scorers.hallucination import grounding_context
from driftline.store import Store
from driftline.store.queries import review as q
from driftline.store.queries import traces as trace_queries

__all__ = ["add_to_dataset", "expected_label", "golden_records", "scorer_value"]


def scorer_value(f: LabelField, scorer_label: str) -> str | None:
    """The field value a scorer label stands for; None when it is no verdict the field knows."""
    if f.scorer_labels:
        return f.scorer_labels.get(scorer_label)
    allowed = f.values()
    return scorer_label if allowed is None or scorer_label in allowed else None


def expected_label(f: LabelField, human: Any) -> str | None:
    """The scorer label matching a human value (None: no scorer label stands for it, e.g. 'unsure')."""
    text = as_text(human)
    if f.scorer_labels:
        return next((s for s, v in f.scorer_labels.items() if v == text), None)
    return scorer_value(f, text)


def _texts(spans: list[dict[str, Any]], span_id: str) -> tuple[str, str, str]:
    """(input, context, output) of the answer the item is about: its span, else the trace's last answer."""
    answers = [s for s in spans if s.get("output_text")]
    span = next((s for s in spans if s["span_id"] == span_id and s.get("output_text")), None)
    if span is None and answers:
        span = max(answers, key=lambda s: s["end_time"])
    if span is None:
        return "", "", ""
    context = grounding_context(span, TraceContext(spans))
    return str(span.get("input_text") or ""), context, str(span.get("output_text") or "")


def golden_records(store: Store, tenant: str, qu: Queue) -> Iterator[dict[str, Any]]:
    """One record per item of the queue whose final label is known, oldest item first."""
    d = qu.definition
    items = {str(r["trace_id"]): r for r in q.items(store, tenant, qu.name)}
    by_trace: dict[str, list[Any]] = {}
    for r in q.labels(store, tenant, qu.name):
        by_trace.setdefault(str(r["trace_id"]), []).append(label_row(r))
    now = datetime.now(UTC)
    for trace_id, row in items.items():
        st = fold([], by_trace.get(trace_id, []), d.rubric, d.reviewers_per_item, now)
        final = final_fields(st)
        if final is None:
            continue
        fields, note, corrected, who = final
        spans = trace_queries.get_trace(store, tenant, trace_id)
        text_in, context, text_out = _texts(spans, str(row["span_id"]))
        expected = {}
        for f in d.rubric.fields:
            if f.scorer and fields.get(f.name) is not None:
                label = expected_label(f, fields[f.name])
                if label is not None:
                    expected[f.scorer] = label
        labeled = [lb.labeled_at for lb in st.labels] + ([st.adjudication.labeled_at] if st.adjudication else [])
        yield {
            "trace_id": trace_id,
            "span_id": row["span_id"],
            "queue": qu.name,
            "input": text_in,
            "context": context,
            "output": text_out,
            "labels": fields,
            "note": note,
            "corrected_answer": corrected,
            "expected": expected,
            "reviewers": who,
            "labeled_at": max(labeled).isoformat(),
            "trace_start": utc(row["trace_start"]).isoformat(),
        }


def add_to_dataset(store: Store, tenant: str, dataset: str, qu: Queue) -> int:
    """Copy the queue's finished items into `dataset` (a record there already is replaced)."""
    now = datetime.now(UTC)
    rows = [
        {"dataset": dataset, "queue": qu.name, "trace_id": r["trace_id"], "record": json.dumps(r, sort_keys=True),
         "added_at": now}
        for r in golden_records(store, tenant, qu)
    ]  # fmt: skip
    q.insert_dataset_records(store, tenant, rows)
    return len(rows)
