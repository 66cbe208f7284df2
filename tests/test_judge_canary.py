"""Judges that are watched: the canary job re-asks a judge about its canary set and counts the
verdicts that differ from the pinned baseline. The judge is a FAKE OpenAI-compatible server (the
provider, nothing else) whose answers are switched mid-test; the exported numbers then go through
the real alert rule in a promtool unit test."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from driftline.config import ConfigError, ScorerSettings, load_settings
from driftline.scorers.service import ScorerService
from driftline.store import Store
from driftline.store.queries import review as review_queries
from tests.conftest import require_tool
from tests.support.fake_judge import FakeJudge, fake_judge
from tests.support.sql import admin_rows

ROOT = Path(__file__).resolve().parent.parent
TENANT = "canary-tenant"
ITEMS = [
    {"id": "polite-1", "input": "Where is my order?", "output": "It ships tomorrow. Thank you for waiting!"},
    {"id": "polite-2", "input": "Refund?", "output": "Of course, the refund is on its way."},
    {"id": "rude-1", "input": "Where is my order?", "output": "Stop asking, idiot."},
    {"id": "rude-2", "input": "Refund?", "output": "No. Read the policy, idiot.", "expected": "A polite no."},
]


def _verdict(label: str) -> str:
    return json.dumps({"score": 0.9 if label == "polite" else 0.1, "label": label, "reasoning": f"looks {label}"})


def honest(body: dict[str, Any]) -> str:
    return _verdict("rude" if "idiot" in body["messages"][-1]["content"] else "polite")


def drifted(body: dict[str, Any]) -> str:
    """The same judge after its provider changed the model behind the name: lenient on insults."""
    return _verdict("polite")


@pytest.fixture
def judge_server() -> Iterator[FakeJudge]:
    with fake_judge() as f:
        f.answer = honest
        yield f


def _settings(tmp_path: Path, url: str, canary: dict[str, Any], prompt: str = "Polite?\n{{ input }}\n{{ output }}",
              ) -> ScorerSettings:  # fmt: skip
    path = tmp_path / "driftline.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "judge_base_url": url,
                "judges": {
                    "politeness": {
                        "prompt": prompt,
                        "output": {"labels": ["polite", "rude"]},
                        "canary": {"tenant": TENANT, "interval_s": 600, **canary},
                    }
                },
            }
        )
    )
    return load_settings(ScorerSettings, config_file=path, environ={})


def _canary_file(tmp_path: Path, items: list[dict[str, Any]] = ITEMS) -> Path:
    path = tmp_path / "canary.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return path


def _service(settings: ScorerSettings, store: Store) -> tuple[ScorerService, CollectorRegistry]:
    reg = CollectorRegistry()
    return ScorerService(settings, store, reg), reg


def _gauges(reg: CollectorRegistry) -> tuple[float | None, float | None]:
    labels = {"judge": "politeness", "tenant": TENANT}
    return (
        reg.get_sample_value("driftline_judge_canary_changed", labels),
        reg.get_sample_value("driftline_judge_canary_items", labels),
    )


def test_a_judge_whose_answers_change_is_caught_and_the_alert_fires(
    store: Store, judge_server: FakeJudge, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, judge_server.url, {"file": str(_canary_file(tmp_path))})
    service, reg = _service(settings, store)
    [canary] = service.canaries
    assert canary.name in {name for name, _, _ in service.scoring._periodic}  # scheduled with the others

    first = canary.run_once()  # pins the baseline
    assert (first.pinned, first.items, first.changed) == (4, 0, 0)
    second = canary.run_once()  # same judge: same verdicts
    assert (second.pinned, second.items, second.changed) == (0, 4, 0)
    assert len(judge_server.requests) == 8  # the cache is bypassed: the judge itself is asked each run
    assert _gauges(reg) == (0, 4)

    judge_server.answer = drifted  # the provider changed the model behind the name
    third = canary.run_once()
    assert (third.items, third.changed, sorted(third.changed_ids)) == (4, 2, ["rude-1", "rude-2"])
    assert _gauges(reg) == (2, 4)
    rows = admin_rows(
        store,
        "SELECT kind, item_id, label FROM {db}.judge_canary FINAL WHERE tenant = {t:String} ORDER BY kind, item_id",
        {"t": TENANT},
    )
    baseline = {r["item_id"]: r["label"] for r in rows if r["kind"] == "baseline"}
    latest = {r["item_id"]: r["label"] for r in rows if r["kind"] == "latest"}
    assert baseline == {"polite-1": "polite", "polite-2": "polite", "rude-1": "rude", "rude-2": "rude"}
    assert set(latest.values()) == {"polite"}  # the baseline stays pinned, the latest run is kept beside it

    # A restart (a new service on the same store) compares against the same pinned baseline.
    again, reg2 = _service(settings, store)
    assert again.canaries[0].run_once().changed == 2 and _gauges(reg2) == (2, 4)

    # The exported numbers, scraped over time, fire the shipped alert rule (promtool unit test).
    changed, items = _gauges(reg2)
    _promtool_fires(tmp_path, changed, items, expect=True)
    _promtool_fires(tmp_path, 0, items, expect=False)  # before the switch: quiet


def _promtool_fires(tmp_path: Path, changed: float | None, items: float | None, expect: bool) -> None:
    """Hold these values for 3 minutes and run the shipped rule on them in promtool. The rule is
    taken from alerts/rules.yml as it is (expr, for, labels) without its annotations, which
    alerts/tests/judges.test.yml checks: here only whether it fires matters."""
    promtool = require_tool("promtool")
    assert changed is not None and items is not None
    shipped = yaml.safe_load((ROOT / "alerts" / "rules.yml").read_text())
    [rule] = [r for g in shipped["groups"] for r in g["rules"] if r.get("alert") == "DriftlineJudgeCanaryChanged"]
    rule = {k: v for k, v in rule.items() if k != "annotations"}
    rules = tmp_path / "canary-rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "canary", "interval": "15s", "rules": [rule]}]}))
    labels = {"judge": "politeness", "tenant": TENANT, "instance": "scorer-0", "job": "driftline-scorer"}
    series = ",".join(f'{k}="{v}"' for k, v in labels.items())
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": f"driftline_judge_canary_changed{{{series}}}", "values": f"{changed:g}x12"},
                    {"series": f"driftline_judge_canary_items{{{series}}}", "values": f"{items:g}x12"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "2m",
                        "alertname": "DriftlineJudgeCanaryChanged",
                        "exp_alerts": [{"exp_labels": {"severity": "warning", **labels}}] if expect else [],
                    }
                ],
            }
        ],
    }
    path = tmp_path / f"canary-{expect}.test.yml"
    path.write_text(yaml.safe_dump(test))
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_new_judge_version_pins_a_new_baseline(store: Store, judge_server: FakeJudge, tmp_path: Path) -> None:
    canary = {"file": str(_canary_file(tmp_path))}
    old, _ = _service(_settings(tmp_path, judge_server.url, canary), store)
    old.canaries[0].run_once()
    judge_server.answer = drifted
    assert old.canaries[0].run_once().changed == 2
    # Accepting the new behaviour: an edited definition is a new version with its own baseline.
    new, reg = _service(_settings(tmp_path, judge_server.url, canary, prompt="Polite? {{ output }}"), store)
    assert new.canaries[0].judge.version != old.canaries[0].judge.version
    r = new.canaries[0].run_once()
    assert (r.pinned, r.changed) == (4, 0) and _gauges(reg) == (0, 0)
    assert new.canaries[0].run_once().changed == 0


def test_canary_items_from_reviewed_items(store: Store, judge_server: FakeJudge, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    records: list[dict[str, Any]] = [
        {"trace_id": f"t{i}", "span_id": f"s{i}", "queue": "support", "input": "Refund?", "context": "Policy: 30 days.",
         "output": out, "corrected_answer": "Yes, within 30 days." if i == 1 else "", "labels": {}, "expected": {}}
        for i, out in enumerate(["Sure, refunded.", "No, idiot."])
    ]  # fmt: skip
    review_queries.insert_dataset_records(
        store,
        TENANT,
        [
            {
                "dataset": "golden",
                "queue": "support",
                "trace_id": r["trace_id"],
                "record": json.dumps(r),
                "added_at": now,
            }
            for r in records
        ],
    )
    service, _ = _service(_settings(tmp_path, judge_server.url, {"dataset": "golden"}), store)
    canary = service.canaries[0]
    assert canary.run_once().pinned == 2
    sent = [r["body"]["messages"][-1]["content"] for r in judge_server.requests]
    assert any("No, idiot." in m for m in sent) and any("Sure, refunded." in m for m in sent)
    judge_server.answer = drifted
    r = canary.run_once()
    assert (r.items, r.changed, r.changed_ids) == (2, 1, ["review:t1:s1"])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "output": "x"}', "not json"], "canary.jsonl:2: not JSON"),
        (['{"id": "a"}'], "needs an 'output'"),
        (['{"id": "a", "output": "x"}', '{"id": "a", "output": "y"}'], "canary id 'a' appears twice"),
    ],
)
def test_a_bad_canary_file_stops_start_up(
    store: Store, judge_server: FakeJudge, tmp_path: Path, lines: list[str], message: str
) -> None:
    path = tmp_path / "canary.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(ConfigError, match=r"judges\.politeness\.canary") as e:
        _service(_settings(tmp_path, judge_server.url, {"file": str(path)}), store)
    assert message in str(e.value)


def test_a_canary_needs_items(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a canary needs a file, a dataset, or both"):
        _settings(tmp_path, "http://127.0.0.1:9/v1", {})
