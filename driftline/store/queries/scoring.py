"""The scorer jobs' reads: candidate spans, the traces around them, the watermark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from driftline.store.columns import SPAN_READ_COLUMNS
from driftline.store.queries.select import Reader, Select
from driftline.store.records import SpanRecord

__all__ = ["CANDIDATE_FILTERS", "ScoringQueries"]

# Columns a scorer job may be restricted on (config `scorers.<name>.services` etc.).
CANDIDATE_FILTERS = ("service", "operation", "release", "environment")

# Stratified sampling: a span's stratum is (service, model, release), looked up in two bound arrays
# (keys joined by the unit separator, and their rates); a stratum not listed gets new_ppm.
_SEP = "\x1f"
_STRATUM_MODEL = "if(response_model != '', response_model, request_model)"
_STRATUM_KEY = f"concat(service, char(31), {_STRATUM_MODEL}, char(31), release)"
_STRATUM_PPM = (
    f"if(indexOf({{stratum_keys:Array(String)}}, {_STRATUM_KEY}) = 0, {{new_ppm:UInt32}}, "
    f"{{stratum_ppms:Array(UInt32)}}[indexOf({{stratum_keys:Array(String)}}, {_STRATUM_KEY})])"
)

# What a scorer sees of the other spans of a candidate's trace.
_TRACE_COLUMNS = [
    "trace_id", "span_id", "parent_span_id", "name", "operation", "start_time", "end_time", "duration_ms",
    "status_code", "status_message", "error_type", "tool_name", "tool_call_id", "tool_arguments", "tool_result",
    "tool_error", "tool_calls", "retrieved_documents", "events", "cost_usd", "cost_source", "input_tokens",
    "output_tokens", "request_model", "response_model", "provider", "system_prompt", "attributes",
]  # fmt: skip


class ScoringQueries:
    def __init__(self, reader: Reader) -> None:
        self._r = reader

    def watermark(self, tenant: str, scorer: str, version: str, shard: str) -> datetime | None:
        """How far this scorer version's shard has scored the tenant's spans (by ingested_at)."""
        rows = self._r.rows(
            tenant,
            Select(
                "max(watermark) AS wm, count() AS n",
                "scorer_state",
                ["scorer = {scorer:String}", "scorer_version = {version:String}", "shard = {shard:String}"],
                final=True,
            ),
            {"scorer": scorer, "version": version, "shard": shard},
        )
        if not rows or not rows[0]["n"]:
            return None
        wm: datetime = rows[0]["wm"]
        return wm

    def candidates(
        self,
        tenant: str,
        *,
        scorer: str,
        version: str,
        since: datetime,
        until: datetime,
        shard_index: int,
        shard_count: int,
        sample_ppm: int,
        limit: int,
        by_start: bool = False,
        skip_scored: bool = True,
        error_only: bool = False,
        filters: Mapping[str, Sequence[str]] | None = None,
        models: Sequence[str] = (),
        after: tuple[datetime, str, str] | None = None,
        strata: Mapping[tuple[str, str, str], int] | None = None,
        new_stratum_ppm: int = 1_000_000,
    ) -> list[SpanRecord]:
        """Spans to score, oldest first: in (since, until] by ingested_at (start_time if `by_start`),
        in this shard, sampled by trace (errors always), optionally not yet scored by this version.

        `after` (by_start only): the (start_time, trace_id, span_id) of the last span of the previous
        page; this page starts behind it (keyset paging). Python's datetime holds microseconds, so the
        key and the order use start_time cut to microseconds: a page boundary inside one microsecond
        neither repeats nor skips a span.

        `strata`: a sampling rate (ppm) per (service, model, release) that replaces `sample_ppm` for
        that stratum's spans (model: the response model, else the request model); a stratum not in
        it gets `new_stratum_ppm`. The decision stays a comparison of the same hash of the trace id
        with a rate: a trace sampled at one rate is sampled at any higher one.
        """
        time_col = "start_time" if by_start else "ingested_at"
        order_col = "toStartOfMicrosecond(start_time)" if by_start else time_col
        params: dict[str, Any] = {
            "since": since,
            "until": until,
            "shards": shard_count,
            "shard": shard_index,
            "ppm": sample_ppm,
            "scorer": scorer,
            "version": version,
            "limit": limit,
        }
        where = [
            f"{time_col} > {{since:DateTime64(3)}}",
            f"{time_col} <= {{until:DateTime64(3)}}",
            "cityHash64(trace_id) % {shards:UInt32} = {shard:UInt32}",
            "status_code = 'error' OR cityHash64(trace_id, 'driftline-sample') % 1000000 < "
            + ("{ppm:UInt32}" if strata is None else _STRATUM_PPM),
        ]
        if strata is not None:
            keys = sorted(strata)
            params["stratum_keys"] = [_SEP.join(k) for k in keys]
            params["stratum_ppms"] = [int(strata[k]) for k in keys]
            params["new_ppm"] = new_stratum_ppm
        if after is not None:
            if not by_start:
                raise ValueError("keyset paging is by start_time")
            params["after_time"], params["after_trace"], params["after_span"] = after
            where.append(
                f"({order_col}, trace_id, span_id) > "
                "({after_time:DateTime64(6, 'UTC')}, {after_trace:String}, {after_span:String})"
            )
        if error_only:
            where.append("status_code = 'error'")
        for col, values in (filters or {}).items():
            if col not in CANDIDATE_FILTERS:
                raise ValueError(f"cannot filter scorers on {col!r}")
            params[f"f_{col}"] = list(values)
            where.append(f"{col} IN {{f_{col}:Array(String)}}")
        if models:
            params["models"] = list(models)
            where.append("request_model IN {models:Array(String)} OR response_model IN {models:Array(String)}")
        if skip_scored:
            where.append(
                "(trace_id, span_id) NOT IN (SELECT trace_id, span_id FROM {db}.scores WHERE "
                "tenant = {tenant:String} AND scorer = {scorer:String} AND scorer_version = {version:String} "
                f"AND trace_id IN (SELECT trace_id FROM {{db}}.spans WHERE tenant = {{tenant:String}} "
                f"AND {time_col} > {{since:DateTime64(3)}}))"
            )
        cols = ", ".join(f"`{c}`" for c in [*SPAN_READ_COLUMNS, "tenant"] if c != "ingested_at")
        rows = self._r.rows(
            tenant,
            Select(
                f"{cols}, ingested_at",
                "spans",
                where,
                order_by=f"{order_col}, trace_id, span_id",
                limit="{limit:UInt32}",
                final=True,
            ),
            params,
        )
        return cast(list[SpanRecord], rows)

    def stratum_traffic(self, tenant: str, since: datetime, until: datetime) -> dict[tuple[str, str, str], int]:
        """Spans that started in [since, until) per (service, model, release): what stratified
        sampling sizes each stratum's rate by."""
        rows = self._r.rows(
            tenant,
            Select(
                f"service, {_STRATUM_MODEL} AS model, release, count() AS n",
                "spans",
                ["start_time >= {since:DateTime64(3)}", "start_time < {until:DateTime64(3)}"],
                group_by="service, model, release",
            ),
            {"since": since, "until": until},
        )
        return {(str(r["service"]), str(r["model"]), str(r["release"])): int(r["n"]) for r in rows}

    def trace_spans(self, tenant: str, trace_ids: Sequence[str]) -> dict[str, list[SpanRecord]]:
        """The spans of these traces (the columns a scorer grounds on), by trace id, oldest first."""
        if not trace_ids:
            return {}
        rows = self._r.rows(
            tenant,
            Select(
                ", ".join(f"`{c}`" for c in _TRACE_COLUMNS),
                "spans",
                ["trace_id IN {ids:Array(String)}"],
                order_by="start_time, span_id",
                final=True,
            ),
            {"ids": list(trace_ids)},
        )
        out: dict[str, list[SpanRecord]] = {}
        for r in cast(list[SpanRecord], rows):
            out.setdefault(r["trace_id"], []).append(r)
        return out

    def scorer_names(self, tenant: str) -> list[str]:
        """The scorers that wrote scores for this tenant (built-ins, judges, plugins), sorted. Read
        from the sorting key's second column, so it reads the `scorer` column alone."""
        rows = self._r.rows(tenant, Select("DISTINCT scorer", "scores", order_by="scorer"))
        return [str(r["scorer"]) for r in rows]
