"""What a scorer is: a small class that turns one stored span (with its trace around it) into a
score value, a label and a short explanation.

The scheduler (scorers/runner.py) samples, shards, deduplicates and writes; a scorer only scores.
A score is keyed by (tenant, trace, span, scorer name, scorer version): bump `version` whenever
the scoring logic changes, so old and new scores never mix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from driftline.vocabulary import LLM_OPERATIONS

__all__ = ["LLM_OPERATIONS", "Score", "Scorer", "SpanRow", "TraceContext"]

SpanRow = Mapping[str, Any]  # a `spans` row: column name -> value (see driftline/store/columns.py)


@dataclass(frozen=True)
class Score:
    value: float
    label: str
    explanation: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TraceContext:
    """The other spans of the same trace that a scorer may ground against (retrievals, tool
    calls, their results), oldest first. Only filled for scorers that ask for it."""

    spans: Sequence[SpanRow] = ()

    def of_operation(self, *operations: str) -> list[SpanRow]:
        return [s for s in self.spans if s.get("operation") in operations]


@runtime_checkable
class Scorer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def needs_trace(self) -> bool:
        """True: the runner loads each candidate's trace into a TraceContext before scoring."""
        ...

    def applies(self, span: SpanRow) -> bool:
        """Whether this scorer scores this span at all (cheap: runs on every candidate)."""
        ...

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        """The score, or None to leave the span unscored (e.g. nothing to judge)."""
        ...
