"""Latency scorers: is one span slow for its kind of operation, and which spans set a trace's
end-to-end time (its critical path)?

The critical path follows the algorithm Jaeger uses (jaegertracing/jaeger-ui, "critical path"):
start at the root's end, repeatedly step into the child that finished last before the current
point in time, and charge the gaps in between to the parent as its own ("self") time. Children
running in parallel with the chosen one are off the path: waiting for them did not delay the
parent. Children reaching outside their parent's window (fire-and-forget work, clock skew) are
cut to it first. The self times on the path add up to the root's duration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from driftline.scorers.base import Score, SpanRow, TraceContext

__all__ = [
    "DEFAULT_LATENCY_THRESHOLDS_MS",
    "CriticalPathScorer",
    "LatencyScorer",
    "PathStep",
    "critical_path",
    "span_time_ns",
]

# Generous defaults: a span above its threshold is worth a look, not a page. Chat covers long
# generations; tools, retrievals and embeddings are usually a network round trip.
DEFAULT_LATENCY_THRESHOLDS_MS: Final[Mapping[str, float]] = {
    "chat": 10_000.0,
    "text_completion": 10_000.0,
    "generate_content": 10_000.0,
    "embeddings": 2_000.0,
    "rerank": 2_000.0,
    "retrieval": 2_000.0,
    "execute_tool": 2_000.0,
    "guardrail": 2_000.0,
    "create_agent": 10_000.0,
    "invoke_agent": 60_000.0,
    "workflow": 60_000.0,
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_PATH_DETAILS: Final = 50  # keep the score row small on very deep traces


def span_time_ns(value: object) -> int | None:
    """A start/end time as unix nanoseconds: the normalizer hands out ints, ClickHouse reads
    DateTime64 back as datetime (microsecond precision in Python)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    return None


def _duration_ms(span: SpanRow) -> float | None:
    d = span.get("duration_ms")
    if isinstance(d, int | float) and not isinstance(d, bool):
        return float(d)
    start, end = span_time_ns(span.get("start_time")), span_time_ns(span.get("end_time"))
    return (end - start) / 1e6 if start is not None and end is not None else None


class LatencyScorer:
    """Value = the span's duration in ms; label `slow` above the threshold for its operation."""

    name = "latency"
    version = "1"
    needs_trace = False

    def __init__(
        self, thresholds_ms: Mapping[str, float] | None = None, default_threshold_ms: float = 30_000.0
    ) -> None:
        """`thresholds_ms` overrides the defaults per operation (keys: the `operation` column);
        operations in neither get `default_threshold_ms`."""
        merged = {**DEFAULT_LATENCY_THRESHOLDS_MS, **(thresholds_ms or {})}
        if any(v <= 0 for v in merged.values()) or default_threshold_ms <= 0:
            raise ValueError("latency thresholds must be positive")
        self.thresholds_ms: Mapping[str, float] = merged
        self.default_threshold_ms = default_threshold_ms

    def threshold_for(self, operation: str) -> float:
        return self.thresholds_ms.get(operation, self.default_threshold_ms)

    def applies(self, span: SpanRow) -> bool:
        # GenAI spans only: HTTP/DB spans (operation '') are other tools' business.
        return bool(span.get("operation"))

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        duration = _duration_ms(span)
        if duration is None:
            return None
        operation = str(span.get("operation"))
        threshold = self.threshold_for(operation)
        details: dict[str, float] = {"threshold_ms": threshold}
        ttft = span.get("ttft_ms")
        if isinstance(ttft, int | float) and not isinstance(ttft, bool):
            details["ttft_ms"] = float(ttft)
        slow = duration > threshold
        text = f"{duration:.0f} ms {'>' if slow else '<='} {threshold:.0f} ms threshold for {operation}"
        if "ttft_ms" in details:
            text += f" (first token after {details['ttft_ms']:.0f} ms)"
        return Score(duration, "slow" if slow else "ok", text, details)


@dataclass(frozen=True)
class PathStep:
    """One span on the critical path and the time it alone accounts for there."""

    span_id: str
    name: str
    operation: str
    self_ns: int


@dataclass
class _Node:
    span_id: str
    name: str
    operation: str
    start: int
    end: int
    children: list[_Node] = field(default_factory=list)


@dataclass
class _Frame:
    node: _Node
    lo: int  # the node's window, cut to its parent's
    cursor: int  # how far back in time the path has been explained so far
    kids: list[tuple[int, int, _Node]]  # (cut start, cut end, child), latest end first
    next_kid: int = 0


def _tree(root: SpanRow, spans: Sequence[SpanRow]) -> _Node | None:
    nodes: dict[str, _Node] = {}
    parents: dict[str, str] = {}
    for s in (root, *spans):
        span_id = str(s.get("span_id") or "")
        start, end = span_time_ns(s.get("start_time")), span_time_ns(s.get("end_time"))
        if not span_id or span_id in nodes or start is None or end is None or end < start:
            continue
        nodes[span_id] = _Node(span_id, str(s.get("name") or ""), str(s.get("operation") or ""), start, end)
        parents[span_id] = str(s.get("parent_span_id") or "")
    root_node = nodes.get(str(root.get("span_id") or ""))
    if root_node is None:
        return None
    for span_id, parent in parents.items():
        # Spans whose parent is missing (late, dropped) cannot be placed and are left out.
        if parent in nodes and span_id != root_node.span_id:
            nodes[parent].children.append(nodes[span_id])
    return root_node


def _kids(node: _Node, lo: int, hi: int) -> list[tuple[int, int, _Node]]:
    cut = [(max(c.start, lo), min(c.end, hi), c) for c in node.children]
    kept = [k for k in cut if k[1] > k[0]]  # outside the window or zero length: never on the path
    kept.sort(key=lambda k: (-k[1], -k[0], k[2].span_id))
    return kept


def critical_path(root: SpanRow, spans: Sequence[SpanRow]) -> list[PathStep]:
    """The spans on the root's critical path, in order of first appearance in time (the root
    first), each with its self time there. Iterative: traces can be deeper than the recursion limit."""
    tree = _tree(root, spans)
    if tree is None:
        return []
    self_ns: dict[str, int] = {}
    first_at: dict[str, tuple[int, int]] = {}
    nodes: dict[str, _Node] = {}

    def charge(node: _Node, start: int, end: int) -> None:
        nodes[node.span_id] = node
        self_ns[node.span_id] = self_ns.get(node.span_id, 0) + max(0, end - start)
        seen = first_at.get(node.span_id)
        if seen is None or start < seen[0]:
            first_at[node.span_id] = (start, seen[1] if seen else len(first_at))

    stack = [_Frame(tree, tree.start, tree.end, _kids(tree, tree.start, tree.end))]
    while stack:
        frame = stack[-1]
        picked: tuple[int, int, _Node] | None = None
        while frame.next_kid < len(frame.kids):
            kid = frame.kids[frame.next_kid]
            frame.next_kid += 1
            if kid[1] <= frame.cursor:  # later-ending kids ran in parallel with one already taken
                picked = kid
                break
        if picked is None:
            charge(frame.node, frame.lo, frame.cursor)
            stack.pop()
            continue
        lo, hi, child = picked
        charge(frame.node, hi, frame.cursor)
        frame.cursor = lo
        stack.append(_Frame(child, lo, hi, _kids(child, lo, hi)))
    order = sorted(first_at, key=lambda k: first_at[k])
    return [PathStep(k, nodes[k].name, nodes[k].operation, self_ns[k]) for k in order]


class CriticalPathScorer:
    """On root spans: value = the trace's end-to-end time (root duration, ms); details list the
    critical path with each span's self time; the explanation names the slowest span on it.

    Label: the `operation` of that slowest span (`execute_tool`, `chat`, ...; `non_genai` for a
    plain HTTP/DB span), or `self` when the root's own time outside its children dominates, so
    "what makes traces slow" can be counted per operation.
    """

    name = "critical_path"
    version = "1"
    needs_trace = True

    def applies(self, span: SpanRow) -> bool:
        return span.get("parent_span_id") == ""

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        path = critical_path(span, trace.spans)
        duration = _duration_ms(span)
        if not path or duration is None:
            return None
        slowest = max(path, key=lambda p: p.self_ns)
        share = slowest.self_ns / 1e6 / duration if duration > 0 else 1.0
        if slowest.span_id == path[0].span_id:
            who, label = f"the root {slowest.name!r} itself (time outside its children)", "self"
        else:
            who, label = f"{slowest.name!r} (span {slowest.span_id})", slowest.operation or "non_genai"
        explanation = (
            f"slowest on the critical path: {who}, {slowest.self_ns / 1e6:.0f} ms of {duration:.0f} ms ({share:.0%})"
        )
        shown = path[:_MAX_PATH_DETAILS]
        details = {
            "path": [{"span_id": p.span_id, "name": p.name, "self_ms": p.self_ns / 1e6} for p in shown],
            "path_length": len(path),
            "slowest_span_id": slowest.span_id,
            "slowest_self_ms": slowest.self_ns / 1e6,
        }
        return Score(duration, label, explanation, details)
