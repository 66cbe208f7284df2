"""`driftline.feedback(...)`: record an end user's thumbs, a score, a label or a comment on a trace.

It posts to the collector's API (`POST {endpoint}/api/v1/feedback`) with the endpoint and API key
given to `init()`, or passed here. Standard library only, so the SDK stays light. The item's `id`
makes it idempotent: sending it again (a retry) replaces it, never duplicates it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from driftline.sdk import _state

__all__ = ["FeedbackError", "feedback", "feedback_batch"]

_PATH = "/api/v1/feedback"


class FeedbackError(RuntimeError):
    """The collector refused the feedback (status set) or could not be reached (status None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _hex(value: str | int, width: int) -> str:
    """OpenTelemetry span contexts hold ids as ints; the API takes lowercase hex."""
    return f"{value:0{width}x}" if isinstance(value, int) else value


def feedback(
    trace_id: str | int,
    *,
    span_id: str | int = "",
    id: str | None = None,
    name: str = "feedback",
    value: float | None = None,
    label: str = "",
    comment: str = "",
    source: str = "user",
    author: str = "",
    version: str = "",
    negative: bool | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 5.0,
) -> str:
    """Record one feedback item on a trace (or one of its spans); returns its id.

    value: e.g. 1 for thumbs up and 0 for thumbs down, or any score. negative: whether it says the
    answer was bad (unset: value <= 0, or label thumbs_down/negative/bad/incorrect/wrong); negative
    feedback feeds the negative-feedback SLI. id: pass your own to retry safely (default: a new one).
    """
    item: dict[str, Any] = {
        "id": id or uuid.uuid4().hex,
        "trace_id": _hex(trace_id, 32),
        "span_id": _hex(span_id, 16) if span_id else "",
        "name": name,
        "value": value,
        "label": label,
        "comment": comment,
        "source": source,
        "author": author,
        "version": version,
        "negative": negative,
    }
    _post(_PATH, item, endpoint, api_key, timeout_s)
    return str(item["id"])


def feedback_batch(
    items: Sequence[Mapping[str, Any]],
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 10.0,
) -> list[str]:
    """Record up to 1000 items (dicts with the fields of `feedback`) in one request; returns their ids."""
    body = [
        {**it, "id": it.get("id") or uuid.uuid4().hex, "trace_id": _hex(it["trace_id"], 32)}
        | ({"span_id": _hex(it["span_id"], 16)} if it.get("span_id") else {})
        for it in items
    ]
    _post(_PATH + "/batch", {"items": body}, endpoint, api_key, timeout_s)
    return [str(it["id"]) for it in body]


def _post(path: str, payload: Mapping[str, Any], endpoint: str | None, api_key: str | None, timeout_s: float) -> None:
    base, headers = _state.api_target
    if endpoint is not None:
        base = endpoint.rstrip("/")
    headers = dict(headers)
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    if not base.startswith(("http://", "https://")):
        raise FeedbackError(f"feedback needs an http(s) endpoint, not {base.split(':', 1)[0]}:")
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        base + path,
        data=json.dumps(payload).encode(),
        headers={**headers, "content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - http(s) only, checked above
            resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:500].decode(errors="replace")
        raise FeedbackError(f"feedback refused with HTTP {e.code}: {detail}", e.code) from None
    except (urllib.error.URLError, OSError) as e:
        raise FeedbackError(f"feedback could not reach {base}: {type(e).__name__}") from None
