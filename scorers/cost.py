"""Cost scorers: what one model call cost, and what a whole trace cost.

`cost_usd` is filled at ingest (collector/normalize.py; precedence override > span > price table,
see docs/columns.md "cost_usd"). These scorers turn it into score rows so cost shows up next to
quality per tenant/service/model/release, and so calls the price table could not price are
counted instead of silently adding nothing.
"""

from __future__ import annotations

import math
from typing import Final

from driftline.scorers.base import Score, SpanRow, TraceContext
from driftline.vocabulary import MODEL_CALL_OPERATIONS

__all__ = ["COSTED_OPERATIONS", "CostScorer", "TraceCostScorer", "is_costed_call"]

# Model calls, the spans whose tokens are billed. Agent / workflow / tool spans are left out on
# purpose: they often carry their children's summed usage, and adding them would bill twice.
# rerank is in because the normalizer prices it too (docs/columns.md, cost step 3).
COSTED_OPERATIONS: Final = MODEL_CALL_OPERATIONS
_TOKEN_COLUMNS: Final = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)


def is_costed_call(span: SpanRow) -> bool:
    """A model call that reported any token count (a call without usage has nothing to price)."""
    return span.get("operation") in COSTED_OPERATIONS and any(span.get(c) is not None for c in _TOKEN_COLUMNS)


def _cost(span: SpanRow) -> float | None:
    v = span.get("cost_usd")
    # NULL is "no price"; NaN would only come from a broken upstream value and means the same.
    if not isinstance(v, int | float) or isinstance(v, bool) or math.isnan(v):
        return None
    return float(v)


def _model(span: SpanRow) -> str:
    return str(span.get("response_model") or span.get("request_model") or "")


class CostScorer:
    """The USD cost of one model call; label `priced`, or `missing_price` (value 0) when the
    provider/model pair is not in the price table and the span carried no cost."""

    name = "cost"
    version = "1"
    needs_trace = False

    def applies(self, span: SpanRow) -> bool:
        return is_costed_call(span)

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        tokens = {c: span[c] for c in ("input_tokens", "output_tokens") if span.get(c) is not None}
        cost = _cost(span)
        if cost is None:
            provider = span.get("provider") or "(no provider)"
            model = _model(span) or "(no model)"
            return Score(
                0.0,
                "missing_price",
                f"no price for provider {provider!r} model {model!r}",
                {"provider": str(provider), "model": model, **tokens},
            )
        source = str(span.get("cost_source") or "")
        return Score(cost, "priced", f"${cost:.6f} ({source or 'unknown source'})", {"cost_source": source, **tokens})


class TraceCostScorer:
    """The summed cost of every model call in a trace, scored on its root span.

    Label `priced` when every call had a price, `partially_priced` when some did not (the value
    is then a lower bound), `missing_price` when none did. Traces without model calls are left
    unscored.
    """

    name = "trace_cost"
    version = "1"
    needs_trace = True

    def applies(self, span: SpanRow) -> bool:
        return span.get("parent_span_id") == ""

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        calls = _calls_of(span, trace)
        if not calls:
            return None
        total = 0.0
        unpriced = 0
        by_model: dict[str, float] = {}
        for call in calls:
            cost = _cost(call)
            if cost is None:
                unpriced += 1
                continue
            total += cost
            model = _model(call) or "(no model)"
            by_model[model] = by_model.get(model, 0.0) + cost
        label = "priced" if unpriced == 0 else ("missing_price" if unpriced == len(calls) else "partially_priced")
        explanation = f"${total:.6f} over {len(calls)} model calls"
        if unpriced:
            explanation += f", {unpriced} without a price (not included)"
        details = {
            "model_calls": len(calls),
            "unpriced_calls": unpriced,
            "input_tokens": sum(_int(c.get("input_tokens")) for c in calls),
            "output_tokens": sum(_int(c.get("output_tokens")) for c in calls),
            "cost_by_model": by_model,
        }
        return Score(total, label, explanation, details)


def _calls_of(root: SpanRow, trace: TraceContext) -> list[SpanRow]:
    # The root itself may or may not be among the trace's spans: count each span id once.
    seen: set[object] = set()
    out: list[SpanRow] = []
    for s in (root, *trace.spans):
        key = s.get("span_id")
        if key in seen:
            continue
        seen.add(key)
        if is_costed_call(s):
            out.append(s)
    return out


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
