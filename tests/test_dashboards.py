"""deploy/grafana/: the committed dashboards are the rendering of tools/dashboards.py, every
PromQL expression parses (the real promtool), names only metrics Driftline exports, reads through
the `datasource` variable, and uses only template variables the dashboard defines."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from driftline.collector.metrics import CollectorMetrics
from driftline.scorers.metrics import ScorerMetrics
from driftline.sli import _HELP
from tests.conftest import require_tool
from tools.dashboards import build_all, main

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
BUILT = build_all()
# Prometheus's own series, which Driftline's rules make it write.
PROMETHEUS_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}
# Grafana's global variables stand for a duration inside a range selector: promtool needs one.
GRAFANA_DURATIONS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def exported_metrics() -> set[str]:
    """Every series name Driftline's /metrics can carry, from the real metric definitions."""
    registry = CollectorRegistry()
    CollectorMetrics(registry)
    ScorerMetrics(registry)
    names = set(_HELP)
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def expressions(model: dict[str, Any]) -> Iterator[str]:
    for panel in panels(model):
        for target in panel.get("targets", []):
            yield target["expr"]
    for annotation in model.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield annotation["expr"]


def metric_names(expr: str) -> set[str]:
    """Series names in an expression: driftline_* identifiers and anything before a `{` selector
    (string literals removed first, so label values and variables do not count)."""
    bare = STRING.sub('""', expr)
    names = set(re.findall(r"\bdriftline_\w+", bare))
    names.update(re.findall(r"\b([A-Za-z_:][\w:]*)\s*\{", bare))
    return names


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in BUILT.items()}


def test_committed_json_is_a_fresh_build() -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in DASHBOARDS.glob("*.json")}
    assert committed == BUILT, "regenerate: .venv/bin/python -m tools.dashboards"


def test_main_writes_the_same_files(tmp_path: Path) -> None:
    main(["--out", str(tmp_path)])
    assert {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()} == BUILT


def test_build_is_stable_and_identities_fixed(models: dict[str, dict[str, Any]]) -> None:
    assert build_all() == BUILT
    assert {m["uid"]: m["title"] for m in models.values()} == {
        "driftline-quality": "Driftline / Quality",
        "driftline-drift": "Driftline / Drift",
        "driftline-pipeline": "Driftline / Pipeline",
    }
    for model in models.values():
        ids = [p["id"] for p in panels(model)]
        assert len(ids) == len(set(ids)), model["uid"]


def test_every_expression_parses_with_promtool(models: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:{name.removesuffix('.json').replace('-', '_')}:{i}", "expr": expr}
        for name, model in models.items()
        for i, expr in enumerate(GRAFANA_DURATIONS.sub("5m", e) for e in expressions(model))
    ]
    assert len(rules) > 50
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_catches_a_bad_expression(tmp_path: Path) -> None:
    """The check above would notice a broken panel: promtool rejects what does not parse."""
    promtool = require_tool("promtool")
    path = tmp_path / "bad.yml"
    rule = {"record": "dashboard:bad", "expr": "sum by (reason (rate(driftline_collector_refused_spans_total[5m]))"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [rule]}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0


def test_every_metric_is_exported(models: dict[str, dict[str, Any]]) -> None:
    known = exported_metrics() | PROMETHEUS_SERIES
    assert "driftline_collector_write_duration_seconds_bucket" in known
    assert "driftline_judge_spend_usd_total" in known
    for name, model in models.items():
        for expr in expressions(model):
            used = metric_names(expr)
            assert used, (name, expr)
            assert used <= known, (name, expr, used - known)
        for var in model["templating"]["list"]:
            if var["type"] == "query":
                match = re.fullmatch(r"label_values\((\w+)(\{.*\})?, (\w+)\)", var["query"])
                assert match, var["query"]
                assert match.group(1) in known, var["query"]


def test_metric_name_check_sees_unknown_names() -> None:
    assert metric_names('sum(rate(driftline_nope_total{tenant=~"$tenant"}[5m]))') == {"driftline_nope_total"}
    assert metric_names('up{job="driftline_x"}') == {"up"}


def test_every_panel_has_the_datasource_variable(models: dict[str, dict[str, Any]]) -> None:
    ref = {"type": "prometheus", "uid": "${datasource}"}
    for name, model in models.items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for panel in panels(model):
            if panel["type"] == "row":
                continue
            assert panel.get("datasource") == ref, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target.get("datasource") == ref, (name, panel["title"])
        for annotation in model.get("annotations", {}).get("list", []):
            assert annotation["datasource"] == ref, name
        for var in variables.values():
            if var["type"] == "query":
                assert var["datasource"] == ref, (name, var["name"])


def test_every_variable_used_is_defined(models: dict[str, dict[str, Any]]) -> None:
    for name, model in models.items():
        variables = [v["name"] for v in model["templating"]["list"]]
        defined = set(variables)
        used: set[str] = set()
        for expr in expressions(model):
            used.update(next(g for g in m.groups() if g) for m in VARIABLE.finditer(expr))
        used = {u for u in used if not u.startswith("__")}
        assert used <= defined, (name, used - defined)
        for i, var in enumerate(variables):  # a chained variable reads only the ones before it
            query = next(v for v in model["templating"]["list"] if v["name"] == var).get("query", "")
            if isinstance(query, str):
                refs = {next(g for g in m.groups() if g) for m in VARIABLE.finditer(query)}
                assert refs <= set(variables[:i]), (name, var, refs)


def test_quality_filters_on_every_label(models: dict[str, dict[str, Any]]) -> None:
    model = models["driftline-quality.json"]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    for label in ("tenant", "service", "model", "release", "environment"):
        assert variables[label]["multi"] is True
        assert variables[label]["query"].startswith("label_values(driftline_sli_requests")
    for expr in expressions(model):
        if expr.startswith("ALERTS"):
            continue
        for label in ("tenant", "service", "model", "release", "environment"):
            assert f'{label}=~"${label}"' in expr, expr


def test_provisioning_points_at_the_dashboards() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["isDefault"] is True
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "driftline.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")
