"""alerts/: the rule file is the rendering of the config, promtool checks and unit-tests it (and the
unit tests catch a weakened rule), Alertmanager's example config routes and inhibits as documented
(amtool, then a real Alertmanager on loopback), and the 5-minute page budget adds up.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from driftline.alerting import DRIFT_SLIS, AlertThresholds, duration_seconds, main, render_rules
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
RULES = ALERTS / "rules.yml"
UNIT_TESTS = sorted((ALERTS / "tests").glob("*.test.yml"))
AM_CONFIG = ALERTS / "alertmanager.yml"


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in _rules() if "alert" in r}


# ----------------------------------------------------------------------------- rendering and config


def test_committed_rules_are_the_default_rendering() -> None:
    assert RULES.read_text() == render_rules(AlertThresholds()), (
        "alerts/rules.yml is stale: .venv/bin/python -m driftline.alerting > alerts/rules.yml"
    )


def test_every_alert_has_severity_timing_and_annotations() -> None:
    alerts = _alerts()
    assert len(alerts) == 7 + 4 + 8 + 1  # drift pages, threshold warnings, pipeline warnings, agreement page
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"page", "warning"}, name
        assert duration_seconds(rule["for"]) > 0 and rule["keep_firing_for"] == "5m", name
        assert {"summary", "description", "runbook_url"} <= rule["annotations"].keys(), name
        assert rule["annotations"]["runbook_url"].endswith("#" + name.lower())
    drift = {n: r for n, r in alerts.items() if n.endswith("Drift")}
    assert len(drift) == len(DRIFT_SLIS)
    assert {r["labels"]["severity"] for r in drift.values()} == {"page"}
    thresholds = {n: r for n, r in alerts.items() if n.endswith("High") and "sli" in r["labels"]}
    assert {r["labels"]["sli"] for r in thresholds.values()} <= set(DRIFT_SLIS)
    assert {r["labels"]["severity"] for r in thresholds.values()} == {"warning"}
    for name, rule in {**drift, **thresholds}.items():
        url = rule["annotations"]["review_url"]
        assert url.startswith("http://127.0.0.1:4318/traces?tenant={{ $labels.tenant | urlquery }}"), name
        for label in ("service", "model", "release", "environment"):
            assert f"{label}={{{{ $labels.{label} | urlquery }}}}" in url, name


def test_custom_thresholds_render_into_valid_rules(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    t = AlertThresholds(
        hallucination_rate_max=0.2,
        min_scored=30,
        threshold_for="15m",
        review_base_url="https://review.internal/ui?org=7",
        latency_p95_max_seconds=8.5,
    )
    text = render_rules(t)
    alerts = {r["alert"]: r for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["DriftlineHallucinationRateHigh"]["expr"].endswith("> 0.2")
    assert alerts["DriftlineHallucinationRateHigh"]["for"] == "15m"
    assert alerts["DriftlineLatencyP95High"]["expr"].endswith("> 8.5")
    assert 'scorer="hallucination"} >= 30' in text
    # An existing query string is extended, not replaced.
    assert "https://review.internal/ui?org=7&tenant={{ $labels.tenant | urlquery }}" in text
    path = tmp_path / "rules.yml"
    path.write_text(text)
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hallucination_rate_max", 1.5, "less than or equal to 1"),
        ("drift_for", "45 seconds", "not a Prometheus duration"),
        ("review_base_url", "ftp://x", "http"),
        ("review_base_url", "https://x/{{ .Foo }}", "must not contain"),
        ("hallucination_scorer", 'x"}', "letters, digits"),
        ("threshold_for", "5m", "longer than the 5m SLI window"),
        ("drift_for", "5s", "at least one evaluation_interval"),
        ("min_requests", 0, "greater than or equal to 1"),
        ("no_such_field", 1, "Extra inputs are not permitted"),
    ],
)
def test_bad_thresholds_are_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertThresholds.model_validate({field: value})


def test_cli_renders_from_a_thresholds_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "thresholds.yml"
    good.write_text("cost_per_hour_max_usd: 80\n")
    assert main(["--thresholds", str(good)]) == 0
    out = capsys.readouterr().out
    assert out == render_rules(AlertThresholds(cost_per_hour_max_usd=80))
    assert "driftline:cost_usd_per_hour_5m:guarded > 80" in out

    assert main([]) == 0
    assert capsys.readouterr().out == RULES.read_text()

    bad = tmp_path / "bad.yml"
    bad.write_text("spool_usage_max_ratio: 2\n")
    assert main(["--thresholds", str(bad)]) == 2
    assert "spool_usage_max_ratio" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- promtool


def test_promtool_check_rules() -> None:
    result = _run(require_tool("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = _run(require_tool("promtool"), "test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS)


def test_every_rule_is_unit_tested_firing_quiet_and_resolving() -> None:
    """Each alert has a check where it fires and, later in the same scenario, one where it has
    resolved, plus a check where it is quiet; each recording rule is queried by a promql test."""
    fires: dict[str, list[tuple[str, float]]] = {}
    quiet: dict[str, list[tuple[str, float]]] = {}
    queried = ""
    for path in UNIT_TESTS:
        for scenario in yaml.safe_load(path.read_text())["tests"]:
            for check in scenario.get("alert_rule_test", []):
                bucket = fires if check.get("exp_alerts") else quiet
                at = duration_seconds(check["eval_time"])
                bucket.setdefault(check["alertname"], []).append((scenario["name"], at))
            queried += " ".join(c["expr"] for c in scenario.get("promql_expr_test", []))
    for name in _alerts():
        assert name in fires, f"{name} is never shown firing"
        assert name in quiet, f"{name} is never shown quiet"
        resolves = any(s == s2 and t2 > t for s, t in fires[name] for s2, t2 in quiet[name])
        assert resolves, f"{name} is never shown resolving after it fired"
    for rule in _rules():
        if "record" in rule:
            assert rule["record"] in queried, f"recording rule {rule['record']} is not tested"


@pytest.mark.parametrize(
    ("rule", "field", "old", "new", "unit_test"),
    [
        ("DriftlineHallucinationRateDrift", "for", "45s", "30s", "drift"),
        ("DriftlineRefusalRateDrift", "expr", ">= 150", ">= 50", "drift"),
        ("DriftlineToolFailureRateDrift", "expr", ">= 1000", ">= 100", "drift"),
        ("DriftlineLatencyDrift", "for", "45s", "15s", "drift"),
        ("DriftlineNegativeFeedbackRateDrift", "expr", ">= 150", ">= 50", "drift"),
        ("DriftlineHallucinationRateDrift", "keep_firing_for", "5m", "1m", "drift"),
        ("DriftlineHallucinationRateHigh", "for", "10m", "5m", "thresholds"),
        ("driftline:hallucination_rate_5m:guarded", "expr", ">= 50", ">= 10", "thresholds"),
        ("driftline:latency_p95_seconds_5m:guarded", "expr", ">= 100", ">= 10", "thresholds"),
        ("driftline:tool_failure_rate_5m:guarded", "expr", 'failure_class="any"', 'failure_class=~".+"', "thresholds"),
        ("DriftlineCostBurnHigh", "for", "10m", "4m", "thresholds"),
        ("DriftlineScorerLagHigh", "expr", "max by (scorer)", "min by (scorer)", "pipeline"),
        ("DriftlineScorerLagHigh", "for", "5m", "30s", "pipeline"),
        ("DriftlineJudgeBudgetExhausted", "for", "1m", "0s", "pipeline"),
        ("driftline:collector_refused_spans:rate2m", "expr", "[2m]", "[10m]", "pipeline"),
        ("DriftlineSpoolFilling", "for", "5m", "0s", "pipeline"),
        ("driftline:collector_spool_usage:ratio", "expr", " > 0", " >= 0", "pipeline"),
        ("DriftlineSpoolNotDraining", "expr", "deriv(", "abs(deriv(", "pipeline"),
        ("DriftlineSpansDropped", "expr", "increase(", "delta(", "pipeline"),
        ("DriftlineSpansDropped", "for", "1m", "0s", "pipeline"),
        ("DriftlineScorerAgreementLow", "for", "10m", "5m", "review"),
        ("DriftlineScorerAgreementLow", "expr", ">= 30", ">= 20", "review"),
        ("DriftlineScorerAgreementLow", "expr", "< 0.4", "< 0.2", "review"),
    ],
)
def test_unit_tests_catch_a_weakened_rule(
    rule: str, field: str, old: str, new: str, unit_test: str, tmp_path: Path
) -> None:
    """The unit tests are worth something only if a wrong threshold, guard or duration fails them.
    Each case changes one rule's behaviour (never an annotation's text, which would fail anyway)."""
    promtool = require_tool("promtool")
    doc = yaml.safe_load(RULES.read_text())
    target = next(r for g in doc["groups"] for r in g["rules"] if rule in (r.get("alert"), r.get("record")))
    assert old in target[field]
    target[field] = target[field].replace(old, new)
    if new.startswith("abs("):
        target[field] = target[field].replace("[5m])", "[5m]))")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(ALERTS / "tests", tmp_path / "tests")
    result = _run(promtool, "test", "rules", str(tmp_path / "tests" / f"{unit_test}.test.yml"))
    assert result.returncode != 0, f"{rule}: {field} {old!r} -> {new!r} still passes {unit_test}.test.yml"
    assert "FAILED" in result.stdout + result.stderr


# ---------------------------------------------------------------------------------- the page budget


def test_page_budget_is_at_most_five_minutes() -> None:
    """alerts/README.md's arithmetic, from the rendered rules and the Alertmanager config."""
    scorer_lag, detection_p95, sli_period, scrape = 30, 150, 30, 15  # see README (detection: test_drift)
    group = next(g for g in yaml.safe_load(RULES.read_text())["groups"] if g["name"] == "driftline-quality")
    evaluation = duration_seconds(group["interval"])
    drift_for = max(duration_seconds(r["for"]) for r in group["rules"] if r.get("alert", "").endswith("Drift"))
    routes = yaml.safe_load(AM_CONFIG.read_text())["route"]["routes"]
    page_route = next(r for r in routes if r.get("matchers") == ['severity="page"'])
    group_wait = duration_seconds(page_route["group_wait"])
    total = scorer_lag + detection_p95 + sli_period + scrape + evaluation + drift_for + group_wait
    assert total <= 300
    assert f"**{total:.0f} s**" in (ALERTS / "README.md").read_text()


# -------------------------------------------------------------------------------------- Alertmanager


def test_amtool_check_config() -> None:
    result = _run(require_tool("amtool"), "check-config", str(AM_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout and "3 receivers" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=page", "alertname=DriftlineLatencyDrift", "tenant=acme"], "pagerduty,webhook"),
        (["severity=warning", "alertname=DriftlineCostBurnHigh", "tenant=acme"], "slack,webhook"),
        (["severity=warning", "alertname=DriftlineSpoolFilling", "instance=c1"], "slack,webhook"),
        (["severity=info", "alertname=Something"], "webhook"),
        (["alertname=NoSeverity"], "webhook"),
    ],
)
def test_amtool_routes(labels: list[str], receivers: str) -> None:
    amtool = require_tool("amtool")
    args = ["config", "routes", "test", f"--config.file={AM_CONFIG}", f"--verify.receivers={receivers}"]
    result = _run(amtool, *args, *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_amtool_routes_verify_really_checks() -> None:
    # A wrong expectation must fail, or the test above would prove nothing.
    amtool = require_tool("amtool")
    args = ["config", "routes", "test", f"--config.file={AM_CONFIG}", "--verify.receivers=slack"]
    assert _run(amtool, *args, "severity=page").returncode != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """The example config in a real Alertmanager on loopback. Its receivers point at PagerDuty,
    Slack and a local webhook; nothing is sent during the test (group_wait outlasts it) and no
    network is needed."""
    binary = require_tool("prometheus-alertmanager")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={AM_CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        cwd=ROOT,  # the *_file secret paths are relative to the working directory
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _ready(url), what="Alertmanager readiness")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_for(condition: Any, what: str, timeout: float = 10.0) -> None:
    # Bounded polling on an observable condition, never a fixed sleep.
    tick = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        tick.wait(0.02)
    pytest.fail(f"timed out waiting for {what}")


def test_drift_page_inhibits_the_matching_threshold_warning_only(alertmanager: str) -> None:
    where = {"tenant": "acme", "service": "bot", "model": "gpt-4o", "release": "r1", "environment": "prod"}
    sent = {
        "page": {
            "alertname": "DriftlineHallucinationRateDrift",
            "severity": "page",
            "sli": "hallucination_rate",
        },
        "same": {
            "alertname": "DriftlineHallucinationRateHigh",
            "severity": "warning",
            "sli": "hallucination_rate",
        },
        "other_sli": {"alertname": "DriftlineLatencyP95High", "severity": "warning", "sli": "latency"},
        "other_release": {
            "alertname": "DriftlineHallucinationRateHigh",
            "severity": "warning",
            "sli": "hallucination_rate",
            "release": "r2",
        },
        "other_env": {
            "alertname": "DriftlineHallucinationRateHigh",
            "severity": "warning",
            "sli": "hallucination_rate",
            "environment": "staging",
        },
    }
    full = {key: {**where, "window": "5m", **labels} for key, labels in sent.items()}
    body = [{"labels": labels} for labels in full.values()]
    request = urllib.request.Request(
        alertmanager + "/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    def status() -> dict[str, dict[str, Any]]:
        out = {}
        for alert in _get(alertmanager + "/api/v2/alerts"):
            key = next(k for k, labels in full.items() if labels == alert["labels"])
            out[key] = alert
        return out

    _wait_for(lambda: len(status()) == len(sent), what="all alerts to be stored")
    # The inhibitor learns about the page asynchronously; wait for its verdict, bounded.
    _wait_for(lambda: status()["same"]["status"]["state"] == "suppressed", what="the inhibition")
    got = status()
    assert got["same"]["status"]["inhibitedBy"] == [got["page"]["fingerprint"]]
    for key in ("page", "other_sli", "other_release", "other_env"):
        assert got[key]["status"] == {"inhibitedBy": [], "silencedBy": [], "state": "active"}, key
    receivers = {k: sorted(r["name"] for r in a["receivers"]) for k, a in got.items()}
    assert receivers["page"] == ["pagerduty", "webhook"]
    assert receivers["same"] == receivers["other_sli"] == ["slack", "webhook"]
