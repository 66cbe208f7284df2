"""The SLI and drift job's reads: LLM request aggregates from spans, label counts from scores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from driftline.store.queries.select import Reader, Select

__all__ = ["SLIQueries"]

_MODEL = "if(response_model != '', response_model, request_model) AS model"
_LABELS = "service, model, release, environment"
_WINDOW = (
    "start_time > {since:DateTime64(3)}",
    "start_time <= {until:DateTime64(3)}",
    "operation IN {ops:Array(String)}",
)
# The scores that make SLIs; labels that say "could not judge" count in no rate.
_SLI_SCORERS = "scorer IN ('hallucination', 'refusal', 'tool_failure')"
_UNJUDGED = "label NOT IN ('no_context', 'error')"


def _bucket(column: str, bucket_s: int) -> str:
    """The bucket column for a per-interval count ('' without buckets)."""
    if not bucket_s:
        return ""
    return f", toStartOfInterval({column}, toIntervalSecond({{bucket_s:UInt32}})) AS bucket"


class SLIQueries:
    def __init__(self, reader: Reader) -> None:
        self._r = reader

    def traffic(self, tenant: str, since: datetime, ops: Sequence[str]) -> list[dict[str, Any]]:
        """LLM requests since `since` per (service, model, release): what picks the top labels."""
        return self._r.rows(
            tenant,
            Select(
                f"service, {_MODEL}, release, count() AS n",
                "spans",
                ["start_time > {since:DateTime64(3)}", "operation IN {ops:Array(String)}"],
                group_by="service, model, release",
            ),
            {"since": since, "ops": list(ops)},
        )

    def request_stats(self, tenant: str, since: datetime, until: datetime, ops: Sequence[str]) -> list[dict[str, Any]]:
        """Per label set: requests, errors, latency and TTFT quantiles, cost, tokens."""
        return self._r.rows(
            tenant,
            Select(
                f"service, {_MODEL}, release, environment, "
                "count() AS n, countIf(status_code = 'error') AS errors, "
                "quantilesTDigest(0.5, 0.95, 0.99)(duration_ms) AS lat, "
                "quantilesTDigestIf(0.5, 0.95, 0.99)(assumeNotNull(ttft_ms), ttft_ms IS NOT NULL) AS ttft, "
                "countIf(ttft_ms IS NOT NULL) AS n_ttft, sum(ifNull(cost_usd, 0)) AS cost, "
                "countIf(cost_usd IS NOT NULL) AS priced, "
                "sum(ifNull(input_tokens, 0)) AS tin, sum(ifNull(output_tokens, 0)) AS tout",
                "spans",
                _WINDOW,
                group_by=_LABELS,
                final=True,
            ),
            {"since": since, "until": until, "ops": list(ops)},
        )

    def error_counts(
        self, tenant: str, since: datetime, until: datetime, ops: Sequence[str], bucket_s: int = 0
    ) -> list[dict[str, Any]]:
        """Per label set: LLM requests and those with error status; with `bucket_s`, also per
        `bucket` (the start of a `bucket_s`-second interval of start_time)."""
        bucket = _bucket("start_time", bucket_s)
        return self._r.rows(
            tenant,
            Select(
                f"service, {_MODEL}, release, environment{bucket}, count() AS n, countIf(status_code = 'error') AS bad",
                "spans",
                _WINDOW,
                group_by=_LABELS + (", bucket" if bucket_s else ""),
                final=True,
            ),
            {"since": since, "until": until, "ops": list(ops), "bucket_s": bucket_s},
        )

    def samples(
        self, tenant: str, since: datetime, until: datetime, ops: Sequence[str], n: int
    ) -> list[dict[str, Any]]:
        """Per label set: up to `n` latency and cost samples (a fixed seed, so runs agree)."""
        return self._r.rows(
            tenant,
            Select(
                f"service, {_MODEL}, release, environment, "
                "groupArraySample({n:UInt32}, 7)(duration_ms) AS lat, "
                "groupArraySampleIf({n:UInt32}, 7)(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS cost",
                "spans",
                _WINDOW,
                group_by=_LABELS,
                final=True,
            ),
            {"since": since, "until": until, "ops": list(ops), "n": n},
        )

    def score_counts(self, tenant: str, since: datetime, until: datetime, bucket_s: int = 0) -> list[dict[str, Any]]:
        """Per label set, SLI scorer and label: how many spans got that label; with `bucket_s`,
        also per `bucket` (the start of a `bucket_s`-second interval of the span's start)."""
        bucket = _bucket("span_start_time", bucket_s)
        return self._r.rows(
            tenant,
            Select(
                f"service, model, release, environment, scorer, label{bucket}, count() AS n",
                "scores",
                [
                    "span_start_time > {since:DateTime64(3)}",
                    "span_start_time <= {until:DateTime64(3)}",
                    _SLI_SCORERS,
                    _UNJUDGED,
                ],
                group_by="service, model, release, environment, scorer, label" + (", bucket" if bucket_s else ""),
                final=True,
            ),
            {"since": since, "until": until, "bucket_s": bucket_s},
        )

    def drift_firing(self, tenant: str, since: datetime) -> list[dict[str, Any]]:
        """The drift tests detecting a regression in the tenant's latest SLI run, if that run is
        after `since` (an older one is stale: the job stopped), as the job's labels."""
        return self._r.rows(
            tenant,
            Select(
                "sli, service, model, release, environment",
                "drift_state",
                [
                    "detected = 1",
                    "computed_at > {since:DateTime64(3)}",
                    "computed_at = (SELECT max(computed_at) FROM {db}.drift_state WHERE tenant = {tenant:String})",
                ],
                order_by="sli, service, model, release, environment",
                final=True,
            ),
            {"since": since},
        )
