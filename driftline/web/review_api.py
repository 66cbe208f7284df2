"""The review API's addresses, as the review pages call them, and the rubric form's values typed
for it. Presentation only: the workflow and its checks are the API's (driftline/api/review.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

__all__ = [
    "BASE",
    "FIELD_PREFIX",
    "TYPE_PREFIX",
    "agreement_path",
    "datasets_path",
    "export_path",
    "form_values",
    "item_path",
    "label_values",
    "queue_path",
    "queues_path",
]

BASE = "/api/v1/review"


def _seg(v: str) -> str:
    return quote(v, safe="")


def queues_path() -> str:
    return f"{BASE}/queues"


def queue_path(queue: str) -> str:
    return f"{BASE}/queues/{_seg(queue)}"


def item_path(queue: str, trace_id: str) -> str:
    return f"{queue_path(queue)}/items/{_seg(trace_id)}"


def datasets_path() -> str:
    return f"{BASE}/datasets"


def export_path(dataset: str) -> str:
    return f"{datasets_path()}/{_seg(dataset)}/export"


def agreement_path() -> str:
    return f"{BASE}/agreement"


FIELD_PREFIX = "field."
TYPE_PREFIX = "type."


def label_values(fields: Iterable[Mapping[str, Any]], form: Mapping[str, str]) -> dict[str, Any]:
    """The rubric form's answers (`field.<name>` inputs) in the API's types: booleans as true/false,
    numbers as numbers; a blank answer is left out, so the API names a required field as missing.
    A value that does not parse is passed on as typed, for the API to name what is wrong with it."""
    out: dict[str, Any] = {}
    for f in fields:
        name = str(f.get("name", ""))
        raw = form.get(FIELD_PREFIX + name)
        if raw is None or raw.strip() == "":
            continue
        kind = f.get("type")
        if kind == "boolean":
            out[name] = {"true": True, "false": False}.get(raw, raw)
        elif kind == "numeric":
            try:
                out[name] = float(raw)
            except ValueError:
                out[name] = raw
        else:
            out[name] = raw
    return out


def form_values(label: Mapping[str, Any] | None) -> dict[str, str]:
    """A stored label as the form's raw values (to show a reviewer's own label again)."""
    if not label:
        return {}
    values: dict[str, str] = {}
    for name, v in (label.get("fields") or {}).items():
        values[FIELD_PREFIX + name] = ("true" if v else "false") if isinstance(v, bool) else _num_text(v)
    values["note"] = str(label.get("note") or "")
    values["corrected_answer"] = str(label.get("corrected_answer") or "")
    return values


def _num_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
