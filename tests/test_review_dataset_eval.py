"""`driftline eval --dataset NAME`: reviewers' labels, accumulated into a named dataset, run against
every scorer; a regression table; exit 1 when a scorer is worse than the stored baseline. Through
the CLI's own entry point, on the embedded store and through a live server's API."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from driftline import cli
from driftline.review.desk import ReviewDesk
from driftline.review.golden import add_to_dataset
from driftline.review.models import QueueDefinition
from driftline.scorers.hallucination import OfflineHallucinationScorer
from driftline.scorers.refusal import RefusalScorer
from driftline.store import Store
from tests import review_data as rd
from tests.conftest import KEY_A, TENANT_A, LiveServer
from tests.review_data import trace_id

T = "tenant-eval"
QUEUE = QueueDefinition.model_validate({
    "rubric": {"fields": [
        {"name": "grounding", "type": "categorical", "options": ["grounded", "hallucinated", "unsure"],
         "scorer": "hallucination", "scorer_labels": {"grounded": "grounded", "hallucinated": "hallucinated"}},
        {"name": "refused", "type": "boolean", "scorer": "refusal",
         "scorer_labels": {"refused": "true", "answered": "false"}},
    ], "corrected_answer": True},
})  # fmt: skip
# Five answers to "where is order i?" against the passage "Order i shipped by Parcel Express.".
ANSWERS = {
    1: ("Order 1 shipped by Parcel Express.", "grounded", False),
    2: ("Order 2 shipped by Parcel Express.", "grounded", False),
    3: ("Order 3 was delivered by drone to a lighthouse in Norway on Sunday.", "hallucinated", False),
    4: ("I'm sorry, but I can't help with that.", "unsure", True),
    5: ("Order 5 shipped by Parcel Express.", "grounded", False),
}


def _build(store: Store, tenant: str) -> None:
    rd.traces(store, tenant, list(ANSWERS))
    from driftline.collector.batch import rows_to_table

    # The answers above replace the generated ones (a later write of the same span wins under FINAL).
    rows = [
        {"trace_id": trace_id(i), "span_id": rd.span_id(i), "parent_span_id": f"{i:014x}00", "name": "chat",
         "operation": "chat", "start_time": int((rd.NOW - timedelta(minutes=30) + timedelta(seconds=i, milliseconds=30))
                                                .timestamp() * 1e9),
         "end_time": int((rd.NOW - timedelta(minutes=29)).timestamp() * 1e9), "duration_ms": 970.0,
         "service": "shop", "release": "1.0", "environment": "prod", "input_text": f"Where is order {i}?",
         "output_text": text}
        for i, (text, _, _) in ANSWERS.items()
    ]  # fmt: skip
    store.insert_arrow("spans", rows_to_table(tenant, rows, ingested_at_ms=int(rd.NOW.timestamp() * 1000) + 10_000))
    desk = ReviewDesk(store, {"grounding": QUEUE})
    desk.add(tenant, "grounding", [trace_id(i) for i in ANSWERS], "alice")
    for i, (_, grounding, refused) in ANSWERS.items():
        desk.claim(tenant, "grounding", trace_id(i), "alice")
        desk.label(tenant, "grounding", trace_id(i), "alice", {"grounding": grounding, "refused": refused}, "", "")
    assert add_to_dataset(store, tenant, "golden", desk.queue(tenant, "grounding")) == 5


def _expected_accuracy(records: list[dict[str, object]]) -> dict[str, float]:
    """What the scorers themselves say on each record, scored here directly."""
    from driftline.review.dataset_eval import _trace

    out = {}
    for s in (OfflineHallucinationScorer(), RefusalScorer()):
        pairs = []
        for rec in records:
            want = rec["expected"].get(s.name)  # type: ignore[attr-defined]
            if want is not None:
                span, trace = _trace(rec, T)
                got = s.score(span, trace)
                pairs.append(want == (got.label if got else None))
        out[s.name] = sum(pairs) / len(pairs)
    return out


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chdb_path: Path, database: str) -> Path:
    data = tmp_path / "data"
    for k, v in {"DRIFTLINE_DATA_DIR": str(data), "DRIFTLINE_CLICKHOUSE_URL": f"chdb://{chdb_path}",
                 "DRIFTLINE_DATABASE": database}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    return data


def test_dataset_eval_prints_the_table_and_catches_a_regression(
    store: Store, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _build(store, T)
    assert cli.main(["eval", "--dataset", "golden", "--tenant", T]) == 0
    out = capsys.readouterr().out
    assert "dataset golden: 5 records" in out and "baseline saved" in out
    baseline = json.loads((env / "eval-baselines" / "golden.json").read_text())
    # The records the store gave back: the labels people gave, in each scorer's label space.
    export = tmp_path / "golden.jsonl"
    from driftline.store.queries.review import dataset_records

    records = [json.loads(r) for r in dataset_records(store, T, "golden")]
    export.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [r["expected"] for r in records] == [
        {"hallucination": "grounded", "refusal": "answered"}, {"hallucination": "grounded", "refusal": "answered"},
        {"hallucination": "hallucinated", "refusal": "answered"}, {"refusal": "refused"},
        {"hallucination": "grounded", "refusal": "answered"},
    ]  # fmt: skip
    want = _expected_accuracy(records)
    assert baseline["scorers"]["hallucination"]["n"] == 4 and baseline["scorers"]["refusal"]["n"] == 5
    assert baseline["scorers"]["hallucination"]["accuracy"] == pytest.approx(want["hallucination"])
    assert baseline["scorers"]["refusal"]["accuracy"] == pytest.approx(want["refusal"]) == 1.0
    for line in out.splitlines():
        if line.startswith(("hallucination ", "refusal ")):
            assert line.rstrip().endswith("new"), line
    assert "no labels for it" in out  # e.g. cost: no rubric field judges it

    # Same data, unchanged scorers: no regression, exit 0.
    assert cli.main(["eval", "--dataset", "golden", "--tenant", T]) == 0
    assert "WORSE" not in capsys.readouterr().out
    # A dataset where the refusal scorer now misses two of five (people disagree with it there):
    # its accuracy falls below the baseline's, the table says WORSE, the exit code is 1.
    for r in records[:2]:
        r["expected"]["refusal"] = "refused"
    export.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli.main(["eval", "--dataset", "golden", "--dataset-file", str(export)]) == 1
    captured = capsys.readouterr()
    refusal = next(x for x in captured.out.splitlines() if x.startswith("refusal "))
    assert "0.600" in refusal and "-0.400" in refusal and "WORSE" in refusal
    assert "worse than the baseline: refusal" in captured.err
    # A tolerance wide enough lets it pass; --update-baseline moves the bar.
    assert cli.main(["eval", "--dataset", "golden", "--dataset-file", str(export), "--tolerance", "0.5"]) == 0
    assert cli.main(["eval", "--dataset", "golden", "--dataset-file", str(export), "--update-baseline"]) == 0
    assert cli.main(["eval", "--dataset", "golden", "--dataset-file", str(export)]) == 0


def test_an_unknown_dataset_is_a_clear_error(store: Store, env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "--dataset", "nope", "--tenant", T]) == 2
    assert "dataset 'nope' is empty or unknown" in capsys.readouterr().err


def test_dataset_eval_through_a_live_server(live: LiveServer, env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _build(live.runtime.store, TENANT_A)
    r = httpx.get(f"{live.url}/api/v1/review/datasets", headers={"Authorization": f"Bearer {KEY_A}"})
    assert [d["name"] for d in r.json()] == ["golden"]
    args = ["eval", "--dataset", "golden", "--endpoint", live.url, "--api-key", KEY_A]
    assert cli.main(args) == 0
    assert "dataset golden: 5 records" in capsys.readouterr().out
    assert cli.main([*args[:-1], "wrong-key"]) == 2
    assert "answered 401" in capsys.readouterr().err
