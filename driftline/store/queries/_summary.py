"""What the trace list and the sessions read of `trace_summaries` (schema.py, migration 7): the
exact figures of a trace aggregated from its rows, and the rows of a time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from driftline.store.queries._where import Where

__all__ = ["COST", "FINAL", "TRACE_SPAN", "aggregates", "hours", "latest"]

# How far from its root's start a trace's spans may start and still count for it.
TRACE_SPAN: Final = timedelta(hours=1)
# A trace's rows never span two partitions (days), so FINAL merges within each only.
FINAL: Final = " SETTINGS do_not_merge_across_partitions_select_final = 1"


def latest(scores: str) -> str:
    """The (key, scored_at, scorer, value, label) tuples of `scores` that no later score of the
    same key replaced: what `scores FINAL` reads."""
    return f"arrayFilter(e -> NOT arrayExists(f -> f.1 = e.1 AND f.2 > e.2, {scores}), {scores})"


# The exact figures of each trace from all its rows (a subquery over trace_summaries, GROUP BY
# trace_id): every name is prefixed with a_ so it never shadows a column.
_AGGREGATES: Final = {
    "a_root": "min(root)",
    "a_spans": "maxMap(spans)",
    "a_errors": "length(groupUniqArrayArray(error_keys))",
    "a_error": "max(error)",
    "a_first_span": "min(first_span)",
    "a_ended": "max(ended)",
    "a_models": "arraySort(groupUniqArrayArray(models))",
    "a_services": "groupUniqArrayArray(services)",
    "a_releases": "groupUniqArrayArray(releases)",
    "a_environments": "groupUniqArrayArray(environments)",
    "a_operations": "groupUniqArrayArray(operations)",
    "a_session_ids": "groupUniqArrayArray(session_ids)",
    "a_user_ids": "groupUniqArrayArray(user_ids)",
    "a_session": "min(session)",
    "a_user": "min(user)",
    "a_session_last": "max(session_last)",
    "a_input_preview": "min(input_preview)",
    "a_output_preview": "max(output_preview)",
    "a_scores": "groupUniqArrayArray(scores)",
}


def aggregates(*uses: str) -> str:
    """The aggregates that the SQL texts `uses` name (a column not named is not read); all of
    them without `uses`."""
    return ", ".join(
        f"{expr} AS {name}" for name, expr in _AGGREGATES.items() if not uses or any(name in u for u in uses)
    )


COST: Final = "if(arraySum(a_spans.3) = 0, NULL, arraySum(a_spans.2))"


def hours(w: Where, lo: datetime, hi: datetime, *, pad: timedelta = TRACE_SPAN) -> str:
    """Rows of spans started in [lo - pad, hi + pad)."""
    return f"hour >= toStartOfHour({w.bind(lo - pad, 'DateTime64(9)')}) AND hour < {w.bind(hi + pad, 'DateTime64(9)')}"
