"""Driftline's Grafana dashboards, built as code with grafana-foundation-sdk (Grafana 11.6 schema).

Three dashboards read the metrics Driftline exports on /metrics: "Driftline / Quality" (the SLIs of
driftline/sli.py, current drift and firing alerts), "Driftline / Drift" (each drift test's two sides)
and "Driftline / Pipeline" (the collector's, scorers' and judge's own metrics). `main()` writes them as
JSON (sorted keys, fixed uids and panel ids) to deploy/grafana/dashboards/, where Grafana's file
provisioning (deploy/grafana/provisioning/) loads them; tests/test_dashboards.py checks the files
match a fresh build and that every expression parses and names only metrics Driftline exports.

    .venv/bin/python -m tools.dashboards                      # regenerate deploy/grafana/dashboards
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common as gc
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus as gp
from grafana_foundation_sdk.builders import table as gtable
from grafana_foundation_sdk.builders import timeseries as gts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from driftline.vocabulary import SLI_LABELS

__all__ = ["DASHBOARDS", "build_all", "main", "render"]

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
LABELS = SLI_LABELS
# Every quality panel filters on every label variable (multi-value: a regex match).
SEL = ", ".join(f'{label}=~"${label}"' for label in LABELS)
WIN = f'{SEL}, window="$window"'
SERIES = "{{service}} / {{model}} @ {{release}} ({{environment}})"
RATE = "$__rate_interval"
DRIFT_KEYS = "sli, tenant, service, model, release, environment"
# The drift SLIs (driftline/sli.py `_drift`) and the unit Grafana shows each in.
DRIFT_SLIS = {
    "hallucination_rate": "percentunit",
    "tool_failure_rate": "percentunit",
    "refusal_rate": "percentunit",
    "error_rate": "percentunit",
    "latency": "s",
    "cost_per_request": "currencyUSD",
}
P_VALUE_DESC = "One-sided; log scale. Drift needs p below alpha (1e-5 by default), enough samples and a large effect."
ALERTS_EXPR = 'ALERTS{alertname=~"Driftline.*", alertstate="firing"}'


# -- building blocks ---------------------------------------------------------------------
def _q(expr: str, legend: str = "__auto", ref: str = "A") -> gp.Dataquery:
    return gp.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def _ts(title: str, unit: str, queries: Sequence[gp.Dataquery], *, w: int = 12, desc: str = "") -> gts.Panel:
    panel = gts.Panel().title(title).unit(unit).datasource(DATASOURCE).span(w).height(8).targets(list(queries))
    return panel.description(desc) if desc else panel


def _table(title: str, queries: Sequence[gp.Dataquery], rename: dict[str, str], *, w: int = 24) -> gtable.Panel:
    """An instant table: one row per label set, one column per query (merged on the labels)."""
    for q in queries:
        q.instant().format(pm.PromQueryFormat.TABLE)
    organize = {"excludeByName": {"Time": True, "__name__": True}, "renameByName": rename}
    return (
        gtable.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .span(w)
        .height(8)
        .targets(list(queries))
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))
    )


def _datasource_var() -> gd.DatasourceVariable:
    return gd.DatasourceVariable("datasource").label("Data source").type("prometheus")


def _label_var(label: str, metric: str, before: Sequence[str]) -> gd.QueryVariable:
    """A multi-value variable over one label, narrowed by the variables before it."""
    sel = ", ".join(f'{b}=~"${b}"' for b in before)
    query = f"label_values({metric}{{{sel}}}, {label})" if sel else f"label_values({metric}, {label})"
    return (
        gd.QueryVariable(label)
        .label(label.capitalize())
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _variables(labels: Sequence[str], metric: str = "driftline_sli_requests") -> list[gd.QueryVariable]:
    return [_label_var(label, metric, labels[:i]) for i, label in enumerate(labels)]


def _window_var() -> gd.CustomVariable:
    return (
        gd.CustomVariable("window")
        .label("SLI window")
        .values("5m,1h")
        .current(dm.VariableOption(selected=True, text="5m", value="5m"))
    )


def _dashboard(uid: str, title: str, desc: str) -> gd.Dashboard:
    return (
        gd.Dashboard(title)
        .uid(uid)
        .description(desc)
        .tags(["driftline"])
        .editable()
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(_datasource_var())
    )


# -- Driftline / Quality -----------------------------------------------------------------
def quality() -> gd.Dashboard:
    d = _dashboard("driftline-quality", "Driftline / Quality", "Quality SLIs, current drift and firing alerts.")
    for v in _variables(LABELS):
        d.with_variable(v)
    d.with_variable(_window_var())
    d.annotation(
        gd.AnnotationQuery()
        .name("Driftline alerts")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr(ALERTS_EXPR)
    )

    def sli(title: str, metric: str, unit: str, extra: str = "", legend: str = SERIES) -> gts.Panel:
        return _ts(title, unit, [_q(f"{metric}{{{WIN}{extra}}}", legend)], w=6)

    d.with_row(gd.Row("Quality"))
    d.with_panel(sli("Hallucination rate", "driftline_sli_hallucination_rate", "percentunit"))
    d.with_panel(
        sli(
            "Tool failure rate by class",
            "driftline_sli_tool_failure_rate",
            "percentunit",
            legend="{{failure_class}}: " + SERIES,
        )
    )
    d.with_panel(sli("Refusal rate", "driftline_sli_refusal_rate", "percentunit"))
    d.with_panel(sli("Error rate", "driftline_sli_error_rate", "percentunit"))

    d.with_row(gd.Row("Latency"))
    for title, metric in (
        ("Latency", "driftline_sli_latency_seconds"),
        ("Time to first token", "driftline_sli_ttft_seconds"),
    ):
        d.with_panel(_ts(f"{title} p50 / p95 / p99", "s", [_q(f"{metric}{{{WIN}}}", "p{{quantile}} " + SERIES)]))

    d.with_row(gd.Row("Cost and traffic"))
    d.with_panel(sli("Cost per request", "driftline_sli_cost_usd_per_request", "currencyUSD"))
    d.with_panel(sli("Cost per hour", "driftline_sli_cost_usd_per_hour", "currencyUSD"))
    d.with_panel(sli("Tokens per second", "driftline_sli_tokens_per_second", "short", legend="{{direction}} " + SERIES))
    d.with_panel(
        _ts(
            "Requests and scored spans",
            "short",
            [
                _q(f"driftline_sli_requests{{{WIN}}}", "requests " + SERIES, "A"),
                _q(f"driftline_sli_scored{{{WIN}}}", "scored ({{scorer}}) " + SERIES, "B"),
            ],
            w=6,
            desc="Counts in the SLI window.",
        )
    )

    d.with_row(gd.Row("Drift and alerts"))
    detected = f"(driftline_drift_detected{{{SEL}}} == 1)"
    d.with_panel(
        _table(
            "Current drift",
            [
                _q(f"driftline_drift_current{{{SEL}}} and on ({DRIFT_KEYS}) {detected}", ref="A"),
                _q(f"driftline_drift_baseline{{{SEL}}} and on ({DRIFT_KEYS}) {detected}", ref="B"),
                _q(f"driftline_drift_p_value{{{SEL}}} and on ({DRIFT_KEYS}) {detected}", ref="C"),
            ],
            {"Value #A": "current", "Value #B": "baseline", "Value #C": "p-value"},
            w=14,
        )
    )
    d.with_panel(_table("Firing Driftline alerts", [_q(ALERTS_EXPR)], {"Value": "firing"}, w=10))
    return d


# -- Driftline / Drift -------------------------------------------------------------------
def drift() -> gd.Dashboard:
    d = _dashboard("driftline-drift", "Driftline / Drift", "Each drift test: current vs baseline, p-value, samples.")
    for v in _variables(LABELS):
        d.with_variable(v)
    for name, unit in DRIFT_SLIS.items():
        s = f'sli="{name}", {SEL}'
        d.with_row(gd.Row(name.replace("_", " ").capitalize()))
        d.with_panel(
            _ts(
                "Current vs baseline",
                unit,
                [
                    _q(f"driftline_drift_current{{{s}}}", "current " + SERIES, "A"),
                    _q(f"driftline_drift_baseline{{{s}}}", "baseline " + SERIES, "B"),
                ],
                w=10,
                desc="Rate, or the median for latency and cost.",
            )
        )
        p_value = _ts("p-value", "short", [_q(f"driftline_drift_p_value{{{s}}}", SERIES)], w=7, desc=P_VALUE_DESC)
        d.with_panel(p_value.scale_distribution(gc.ScaleDistributionConfig().type(cm.ScaleDistribution.LOG).log(10)))
        d.with_panel(_ts("Samples", "short", [_q(f"driftline_drift_samples{{{s}}}", "{{side}} " + SERIES)], w=7))
    return d


# -- Driftline / Pipeline ----------------------------------------------------------------
def pipeline() -> gd.Dashboard:
    d = _dashboard("driftline-pipeline", "Driftline / Pipeline", "Collector, scorers, judge and the SLI job.")
    # The collector and scorer metrics carry no tenant label; only the judge's do.
    d.with_variable(_label_var("tenant", "driftline_sli_requests", ()))
    c = "driftline_collector_"

    def rate(metric: str, by: str = "") -> str:
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping} (rate({metric}[{RATE}]))"

    d.with_row(gd.Row("Collector"))
    d.with_panel(
        _ts(
            "Spans received / accepted",
            "short",
            [
                _q(rate(c + "spans_received_total"), "received", "A"),
                _q(rate(c + "spans_accepted_total"), "accepted", "B"),
            ],
            w=8,
        )
    )
    d.with_panel(_ts("Spans refused by reason", "short", [_q(rate(c + "refused_spans_total", "reason"))], w=8))
    d.with_panel(_ts("Spans rejected by reason", "short", [_q(rate(c + "rejected_spans_total", "reason"))], w=8))
    d.with_panel(
        _ts(
            "Write queue",
            "short",
            [_q(f"sum({c}queue_spans)", "queued", "A"), _q(f"sum({c}queue_capacity_spans)", "capacity", "B")],
            w=8,
        )
    )
    d.with_panel(
        _ts(
            "Spool",
            "bytes",
            [_q(f"sum({c}spool_bytes)", "bytes", "A"), _q(f"sum({c}spool_capacity_bytes)", "capacity", "B")],
            w=8,
        )
    )
    d.with_panel(_ts("Oldest spooled batch", "s", [_q(f"max({c}spool_oldest_age_seconds)", "age")], w=8))
    d.with_panel(_ts("Write batches by outcome", "short", [_q(rate(c + "write_batches_total", "outcome"))], w=8))
    d.with_panel(
        _ts(
            "Write latency",
            "s",
            [
                _q(f"histogram_quantile({q}, {rate(c + 'write_duration_seconds_bucket', 'le')})", f"p{q}", ref)
                for q, ref in (("0.5", "A"), ("0.95", "B"), ("0.99", "C"))
            ],
            w=8,
        )
    )
    d.with_panel(
        _ts(
            "Spooled / replayed spans",
            "short",
            [
                _q(rate(c + "spooled_spans_total"), "spooled", "A"),
                _q(rate(c + "replayed_spans_total"), "replayed", "B"),
            ],
            w=8,
        )
    )
    d.with_panel(
        _ts(
            "Model calls without a price",
            "short",
            [_q(rate(c + "unpriced_spans_total"), "unpriced")],
            w=8,
            desc="Stored with cost NULL: add the model to price_overrides.",
        )
    )
    d.with_panel(
        _ts(
            "Decode worker restarts",
            "short",
            [_q(f"sum(increase({c}decode_worker_restarts_total[{RATE}]))", "restarts")],
            w=8,
            desc="A decode worker process died (OOM kill, crash); its requests were answered retry-later.",
        )
    )

    d.with_row(gd.Row("Scorers and judge"))
    d.with_panel(
        _ts("Scorer runs by outcome", "short", [_q(rate("driftline_scorer_runs_total", "scorer, outcome"))], w=8)
    )
    d.with_panel(_ts("Scorer lag", "s", [_q("max by (scorer) (driftline_scorer_lag_seconds)", "{{scorer}}")], w=8))
    d.with_panel(
        _ts(
            "Scored / failed spans",
            "short",
            [
                _q(rate("driftline_scorer_scored_spans_total", "scorer"), "scored {{scorer}}", "A"),
                _q(rate("driftline_scorer_failed_spans_total", "scorer"), "failed {{scorer}}", "B"),
            ],
            w=8,
        )
    )
    t = 'tenant=~"$tenant"'
    d.with_panel(
        _ts("Judge calls by outcome", "short", [_q(rate(f"driftline_judge_calls_total{{{t}}}", "outcome"))], w=8)
    )
    d.with_panel(
        _ts(
            "Judge tokens",
            "short",
            [_q(rate(f"driftline_judge_tokens_total{{{t}}}", "tenant, direction"), "{{tenant}} {{direction}}")],
            w=8,
        )
    )
    d.with_panel(
        _ts(
            "Judge spend (last hour)",
            "currencyUSD",
            [_q(f"sum by (tenant) (increase(driftline_judge_spend_usd_total{{{t}}}[1h]))", "{{tenant}}")],
            w=8,
        )
    )
    d.with_panel(
        _ts(
            "SLI computed age",
            "s",
            [_q("time() - max(driftline_sli_computed_timestamp_seconds)", "age")],
            w=8,
            desc="Seconds since the SLI job last published; it recomputes every 15-30 s.",
        )
    )
    return d


# -- output ------------------------------------------------------------------------------
DASHBOARDS = {"quality": quality, "drift": drift, "pipeline": pipeline}


def render(builder: gd.Dashboard) -> str:
    """Stable JSON: sorted keys, panel ids in order, two-space indent, trailing newline."""
    model = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for i, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = i
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def build_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"driftline-{name}.json": render(make()) for name, make in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("deploy/grafana/dashboards"), help="output directory")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, text in build_all().items():
        (out / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
