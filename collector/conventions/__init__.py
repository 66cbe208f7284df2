"""Every LLM tracing convention mapped onto the `spans` columns, one module per family.

`extract` runs the families in priority order; each fills only the columns still missing, so
the order *is* the fallback chain documented in docs/columns.md:
  1. OpenTelemetry GenAI semconv attributes (current names, then older ones)   genai.py
  2. OpenInference                                                              openinference.py
  3. OpenLLMetry / Traceloop (legacy indexed content, traceloop.*)              traceloop.py
  4. Vercel AI SDK (ai.*)                                                       vercel.py
  5. Langfuse (langfuse.*)                                                      langfuse.py
  6. Logfire / pydantic-ai                                                      logfire.py
  7. OpenLIT                                                                    openlit.py
  8. span events (GenAI event forms, exceptions, first-chunk timing)            events.py
  9. generic ids (user.id, enduser.id, session.id)
then `derive.finish` computes the convention-independent columns.
A family runs only when one of its marker attributes is present: a handful of dict lookups
instead of scanning every key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from driftline.collector.conventions import (
    events,
    genai,
    langfuse,
    logfire,
    openinference,
    openlit,
    traceloop,
    vercel,
)
from driftline.collector.conventions._common import (
    Attrs,
    Fields,
    first_text,
    put,
)
from driftline.collector.conventions.derive import finish

__all__ = ["FAMILIES", "extract"]

FAMILIES: Final[tuple[tuple[str, tuple[str, ...], Callable[[Attrs, Fields], None]], ...]] = (
    ("genai", genai.MARKERS, genai.extract),
    ("openinference", openinference.MARKERS, openinference.extract),
    ("traceloop", traceloop.MARKERS, traceloop.extract),
    ("vercel", vercel.MARKERS, vercel.extract),
    ("langfuse", langfuse.MARKERS, langfuse.extract),
    ("logfire", logfire.MARKERS, logfire.extract),
    ("openlit", openlit.MARKERS, openlit.extract),
)
# marker attribute -> family position; one C-level set intersection finds the families present.
_MARKER_RANK: Final[dict[str, int]] = {m: i for i, (_, markers, _) in enumerate(FAMILIES) for m in markers}
_ALL_MARKERS: Final = frozenset(_MARKER_RANK)
# markers present -> the family extractors to run, in priority order
_PLANS: dict[frozenset[str], tuple[Callable[[Attrs, Fields], None], ...]] = {}


def extract(a: Attrs, evs: list[events.Event], f: Fields, start_ns: int, limit: int, small: bool) -> None:
    """Fill `f` (already holding the span's own fields) from attributes `a` and events `evs`.

    `small` says every source string together is under `limit` bytes, so no derived text
    needs a truncation check.
    """
    present = _ALL_MARKERS.intersection(a)
    if present:
        plan = _PLANS.get(present)
        if plan is None:
            plan = tuple(FAMILIES[rank][2] for rank in sorted({_MARKER_RANK[m] for m in present}))
            if len(_PLANS) < 1024:  # bounded: a handful of marker combinations occur in practice
                _PLANS[present] = plan
        for fn in plan:
            fn(a, f)
    if evs:
        events.apply(evs, f, start_ns)
    if "user.id" in a or "enduser.id" in a:
        put(f, "user_id", first_text(a, ("user.id", "enduser.id")))
    if "session.id" in a:
        put(f, "session_id", first_text(a, ("session.id",)))
    if present and "operation" not in f:
        f["operation"] = "other"
    finish(f, limit, small)
