"""The release comparison's reads: per release of one service, score labels and request samples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from driftline.store.queries.select import Reader, Select

__all__ = ["ReleaseQueries"]


class ReleaseQueries:
    def __init__(self, reader: Reader) -> None:
        self._r = reader

    def score_counts(self, tenant: str, service: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Per release and SLI scorer: spans judged, the bad ones by the scorer's own label
        (`raw_bad`), and those not `ok` (tool failures of any class)."""
        return self._r.rows(
            tenant,
            Select(
                "release, scorer, countIf(label = multiIf(scorer = 'hallucination', 'hallucinated', "
                "scorer = 'refusal', 'refused', label)) AS raw_bad, countIf(label != 'ok') AS not_ok, count() AS n",
                "scores",
                [
                    "service = {service:String}",
                    "span_start_time > {since:DateTime64(3)}",
                    "span_start_time <= {until:DateTime64(3)}",
                    "scorer IN ('hallucination', 'refusal', 'tool_failure')",
                    "label NOT IN ('no_context', 'error')",
                ],
                group_by="release, scorer",
                final=True,
            ),
            {"service": service, "since": since, "until": until},
        )

    def request_samples(
        self, tenant: str, service: str, since: datetime, until: datetime, ops: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Per release: LLM requests, errors, and up to 5000 latency and cost samples."""
        return self._r.rows(
            tenant,
            Select(
                "release, count() AS n, countIf(status_code = 'error') AS bad, "
                "groupArraySample(5000, 7)(duration_ms) AS lat, "
                "groupArraySampleIf(5000, 7)(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS cost",
                "spans",
                [
                    "service = {service:String}",
                    "start_time > {since:DateTime64(3)}",
                    "start_time <= {until:DateTime64(3)}",
                    "operation IN {ops:Array(String)}",
                ],
                group_by="release",
                final=True,
            ),
            {"service": service, "since": since, "until": until, "ops": list(ops)},
        )
