"""Scorer plugins: the example package under examples/ is built and installed (into a directory of
its own, put on the path of the processes that use it), its own tests pass, and its scorer runs
inside `driftline up` like a built-in one. Broken plugins stop start-up naming their entry point.
The per-scorer hourly budget holds for any scorer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from prometheus_client import CollectorRegistry

from driftline.config import ScorerSettings, load_settings
from driftline.scorers.base import Score, SpanRow, TraceContext
from driftline.scorers.metrics import ScorerMetrics
from driftline.scorers.plugins import PluginError, load_plugin_scorers
from driftline.scorers.registry import build_jobs
from driftline.scorers.runner import JobOptions, ScorerJob
from driftline.scorers.scheduler import ScheduledJob, ScoringService
from tests.conftest import KEY_A, LiveServer
from tests.otlp_helpers import http_exporter, provider_for, send_rag_trace
from tests.test_cli_up import running

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "driftline-example-scorer"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed as pip installs any plugin, into a directory of its own (the
    test environment stays as it was), offline, with the build backend the dev extra brings."""
    site = tmp_path_factory.mktemp("plugin-site")
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--target", str(site), str(EXAMPLE)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(site.glob("driftline_example_scorer-*.dist-info/entry_points.txt"))
    return site


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def test_the_example_package_passes_its_own_tests(plugin_site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)],
        cwd=EXAMPLE, env=_env(plugin_site), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_the_example_scorer_runs_inside_driftline_up(
    plugin_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", _env(plugin_site)["PYTHONPATH"])
    monkeypatch.setenv("DRIFTLINE_SCORER_INTERVAL_S", "1")
    with running(tmp_path) as (_proc, url, lines):
        key = (tmp_path / "data" / "dev-api-key").read_text().strip()
        tp = provider_for(http_exporter(url, key))
        ids = send_rag_trace(tp, "Canberra is the capital.", "Capital?",
                             "As an AI language model, I know this. The capital is Canberra.")  # fmt: skip
        tp.shutdown()
        deadline = time.monotonic() + 120
        scores: list[dict[str, Any]] = []
        while time.monotonic() < deadline:  # the scorer runs every second in the child process
            r = httpx.get(f"{url}/api/v1/traces/{ids['trace_id']}", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                scores = [a for a in r.json()["scores"] if a["name"] == "boilerplate"]
                if scores:
                    break
            time.sleep(0.5)
        assert scores, "".join(lines)[-3000:]
        [s] = scores
        assert s["label"] == "boilerplate" and s["value"] == pytest.approx(0.5)
        assert s["span_id"] == ids["span_id"] and s["version"] == "1"
        assert s["comment"] == "1 of 2 sentences are stock phrases"
    assert any("scorer plugin boilerplate" in line for line in lines)


# -- in-process: errors and the budget ----------------------------------------------------------


class _NotAScorer:
    name = "nope"


class _Probe:
    name: ClassVar[str] = "probe"
    version: ClassVar[str] = "3"
    needs_trace: ClassVar[bool] = False

    def applies(self, span: SpanRow) -> bool:
        return bool(span.get("output_text"))

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        return Score(1.0, "seen")


class _Probe2(_Probe):
    name: ClassVar[str] = "probe2"


class _Clashing(_Probe):
    name: ClassVar[str] = "refusal"


def _ep(name: str, obj: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.test_scorer_plugins:{obj}", group="driftline.scorers")


@pytest.mark.parametrize(
    ("ep", "message"),
    [
        (EntryPoint(name="gone", value="no_such_module:X", group="driftline.scorers"), "failed to load"),
        (_ep("nope", "_NotAScorer"), "not a Scorer"),
        (_ep("clash", "_Clashing"), "the name 'refusal' is already in use"),
    ],
)
def test_a_broken_plugin_is_named(ep: EntryPoint, message: str) -> None:
    with pytest.raises(PluginError, match=message) as e:
        load_plugin_scorers(taken=["refusal"], eps=[ep])
    assert repr(ep.name) in str(e.value)


def test_plugins_load_in_entry_point_order_and_never_share_a_name() -> None:
    scorers = load_plugin_scorers(taken=[], eps=[_ep("z", "_Probe"), _ep("a", "_Probe2")])
    assert [s.name for s in scorers] == ["probe2", "probe"]
    with pytest.raises(PluginError, match="'probe' is already in use"):
        load_plugin_scorers(taken=[], eps=[_ep("a", "_Probe"), _ep("b", "_Probe")])


@pytest.fixture
def scorer_settings() -> Iterator[ScorerSettings]:
    yield load_settings(ScorerSettings, environ={}, scorers={"hallucination": {"max_spans_per_hour": 2}})


def test_max_spans_per_hour_holds_for_any_scorer(live: LiveServer, scorer_settings: ScorerSettings) -> None:
    tp = provider_for(http_exporter(live.url, KEY_A))
    for i in range(5):
        send_rag_trace(tp, "Canberra is the capital.", "Capital?", f"It is Canberra ({i}).")
    tp.shutdown()
    assert live.runtime.flush(20)
    reg = CollectorRegistry()
    m = ScorerMetrics(reg)
    [sj] = [j for j in build_jobs(scorer_settings, live.runtime.store, m) if j.job.scorer.name == "hallucination"]
    assert sj.job.opt.max_spans_per_hour == 2
    clock = [datetime.now(UTC)]
    job = ScorerJob(sj.job.scorer, live.runtime.store, JobOptions(settle=timedelta(0), max_spans_per_hour=2),
                    clock=lambda: clock[0])  # fmt: skip
    service = ScoringService([ScheduledJob(job, 1)], m)
    r = service.run(job)
    assert r is not None and r.scored == 2 and r.over_budget == 3
    assert reg.get_sample_value("driftline_scorer_over_budget_spans_total", {"scorer": "hallucination"}) == 3
    r = service.run(job)  # the same hour: nothing more
    assert r is not None and r.scored == 0
    clock[0] += timedelta(hours=1)  # the next hour: the rest (the sweep re-reads them)
    r = service.run(job)
    assert r is not None and r.scored == 2
