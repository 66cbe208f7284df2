"""Shapes the JSON API's answers for the templates: the span tree as waterfall rows, messages and
documents parsed from their stored JSON. Presentation only: no data the API did not return."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["TRACE_FILTERS", "documents", "messages", "pretty_json", "trace_view", "waterfall"]

# The trace list's filters, in the order the form shows them (names are the API's parameters).
TRACE_FILTERS = (
    "since", "until", "service", "release", "environment", "model", "operation", "status",
    "session_id", "user_id", "scorer", "label", "min_score", "max_score", "feedback", "q",
    "sort", "order", "limit",
)  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms_since_epoch(v: Any) -> float:
    """Milliseconds by datetime arithmetic (exact to the microsecond, unlike float timestamps)."""
    try:
        t = datetime.fromisoformat(str(v))
    except ValueError:
        return 0.0
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH) / timedelta(milliseconds=1)


def waterfall(spans: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Spans in tree order (children after their parent, by start time) with depth and their
    offset and width as a share of the trace's span; and the trace's duration in ms."""
    if not spans:
        return [], 0.0
    ids = {s.get("span_id") for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    roots: list[dict[str, Any]] = []
    for s in sorted(spans, key=lambda s: (_ms_since_epoch(s.get("start_time")), str(s.get("span_id")))):
        parent = s.get("parent_span_id") or ""
        # A parent that never arrived (or a cycle) leaves its children at the top, not lost.
        if parent and parent in ids and parent != s.get("span_id"):
            children.setdefault(parent, []).append(s)
        else:
            roots.append(s)
    t0 = min(_ms_since_epoch(s.get("start_time")) for s in spans)
    t1 = max(_ms_since_epoch(s.get("end_time")) or _ms_since_epoch(s.get("start_time")) for s in spans)
    total_ms = max(t1 - t0, 0.001)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    def walk(s: dict[str, Any], depth: int) -> None:
        sid = str(s.get("span_id"))
        if sid in seen:
            return
        seen.add(sid)
        offset = _ms_since_epoch(s.get("start_time")) - t0
        dur = float(s.get("duration_ms") or 0)
        rows.append(
            {
                "span": s,
                "depth": min(depth, 12),
                "offset_ms": offset,
                "left_pct": min(100.0, 100 * offset / total_ms),
                "width_pct": max(0.4, min(100.0, 100 * dur / total_ms)),
            }
        )
        for c in children.get(sid, []):
            walk(c, depth + 1)

    for r in roots:
        walk(r, 0)
    for s in spans:  # anything a cycle kept out of the walk
        if str(s.get("span_id")) not in seen:
            walk(s, 0)
    return rows, total_ms


def _parse(raw: Any) -> Any:
    if isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def messages(raw: Any) -> list[dict[str, Any]]:
    """GenAI messages (`[{role, parts: [{type, content}]}]`, or OpenAI's `{role, content}`) as
    role + text blocks + other parts (tool calls and results) as JSON."""
    value = _parse(raw)
    if value is None:
        return []
    if not isinstance(value, list):
        return [{"role": "", "texts": [str(value)], "others": []}]
    out = []
    for m in value:
        if not isinstance(m, dict):
            out.append({"role": "", "texts": [str(m)], "others": []})
            continue
        texts: list[str] = []
        others: list[str] = []
        parts = m.get("parts")
        if isinstance(parts, list):
            for p in parts:
                if isinstance(p, dict) and p.get("type", "text") == "text" and "content" in p:
                    texts.append(str(p["content"]))
                else:
                    others.append(pretty_json(p))
        elif "content" in m:
            c = m["content"]
            texts.append(c if isinstance(c, str) else pretty_json(c))
        for extra in ("tool_calls", "tool_call_id"):
            if m.get(extra):
                others.append(pretty_json({extra: m[extra]}))
        out.append({"role": str(m.get("role", "")), "texts": texts, "others": others})
    return out


def documents(raw: Any) -> list[dict[str, Any]]:
    """Retrieved documents as id, score and content."""
    value = _parse(raw)
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    out = []
    for i, d in enumerate(value):
        if isinstance(d, dict):
            content = d.get("content", d.get("text", d.get("page_content", "")))
            out.append(
                {
                    "id": str(d.get("id", d.get("document_id", i))),
                    "score": d.get("score"),
                    "content": content if isinstance(content, str) else pretty_json(content),
                }
            )
        else:
            out.append({"id": str(i), "score": None, "content": str(d)})
    return out


def pretty_json(raw: Any) -> str:
    """JSON (or a JSON string) indented for reading; anything else as it is."""
    value = _parse(raw) if isinstance(raw, str) else raw
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return str(value)


def _summary_of(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals from the spans, for an API answer without a summary."""
    costs = [s["cost_usd"] for s in spans if s.get("cost_usd") is not None]
    return {
        "cost_usd": sum(costs) if costs else None,
        "input_tokens": sum(s.get("input_tokens") or 0 for s in spans),
        "output_tokens": sum(s.get("output_tokens") or 0 for s in spans),
    }


def trace_view(body: dict[str, Any], span: str = "") -> dict[str, Any]:
    """A trace's API answer (`GET /api/v1/traces/{id}`) as the trace templates take it: the
    waterfall rows, scores by span, the flagged scores, the span to show first (`span`, else the
    first flagged one, else the first LLM call) and the retrieved documents."""
    spans: list[dict[str, Any]] = body.get("spans", [])
    scores: list[dict[str, Any]] = body.get("scores", [])
    rows, total_ms = waterfall(spans)
    by_span: dict[str, list[dict[str, Any]]] = {}
    for a in scores:
        by_span.setdefault(a.get("span_id", ""), []).append(a)
    flagged = [a for a in scores if a.get("negative")]
    if span not in {r["span"].get("span_id") for r in rows}:  # not this trace's: the default
        span = ""
    chosen = span or (flagged[0].get("span_id") if flagged and flagged[0].get("span_id") else "")
    if not chosen:
        llm = [r["span"] for r in rows if r["span"].get("operation") in ("chat", "text_completion")]
        chosen = (llm or [r["span"] for r in rows] or [{}])[0].get("span_id", "")
    row = next((r for r in rows if r["span"].get("span_id") == chosen), None)
    selected = row["span"] if row else None
    return {
        "summary": body.get("summary") or _summary_of(spans),
        "rows": rows,
        "total_ms": total_ms,
        "selected": selected,
        "selected_offset_ms": row["offset_ms"] if row else 0.0,
        "selected_scores": by_span.get(chosen, []) if selected else [],
        "scores_by_span": by_span,
        "trace_scores": by_span.get("", []),
        "flagged": flagged,
        "spans_by_id": {sp.get("span_id"): sp for sp in spans},
        "feedback": body.get("feedback", []),
        "docs": [(sp, documents(sp.get("retrieved_documents"))) for sp in spans if sp.get("retrieved_documents")],
        "messages": messages,
        "documents": documents,
    }
