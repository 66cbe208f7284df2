"""Normalize one span recorded through the real SDK (conventions with no emitter installed here)."""

from __future__ import annotations

from typing import Any

from driftline.collector.normalize import Normalizer
from driftline.pricing import Pricer
from driftline.store.columns import NORMALIZED_COLUMNS
from tests.support.engine_check import normalize_span
from tests.support.otel_capture import record_span

__all__ = ["START_NS", "normalize"]

START_NS = 1_760_000_000_000_000_000  # 2025-10-09T08:53:20Z


def normalize(name: str, attrs: dict[str, Any], **kw: Any) -> dict[str, Any]:
    res, scope, span = record_span(name, attrs, start_ns=START_NS, **kw)
    norm = Normalizer(pricer=Pricer())
    row = normalize_span(norm, res, scope, span)
    assert set(row) <= set(NORMALIZED_COLUMNS)  # no private working keys leak out
    return row
