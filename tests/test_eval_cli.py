"""`driftline eval`: the offline scorer on both labeled sets, and the judge when configured (here a
FAKE OpenAI-compatible judge server stands in for the provider)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_judge import FakeJudge

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _tiny(tmp: Path, name: str, n: int) -> Path:
    src = DATA / name / "dev.jsonl"
    out = tmp / f"{name}.jsonl"
    out.write_text("".join(src.read_text().splitlines(keepends=True)[:n]))
    return out


def test_eval_reports_offline_and_judge(tmp_path: Path) -> None:
    from tests.conftest import require_data

    require_data(DATA)
    judge = FakeJudge()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        env.update(DRIFTLINE_JUDGE_BASE_URL=judge.url, DRIFTLINE_JUDGE_MODEL="fake-judge")
        out = subprocess.run(
            [sys.executable, "-m", "driftline.cli", "eval", "--judge-limit", "6",
             "--halueval", str(_tiny(tmp_path, "halueval-qa", 20)), "--summedits", str(_tiny(tmp_path, "summedits", 20))],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    finally:
        judge.close()
    assert out.returncode == 0, out.stderr
    assert "halueval-qa    20" in out.stdout and "summedits      20" in out.stdout
    # Grouped cross-validation first: one row per set with its fold scheme and spread, then each fold.
    assert "grouped cross-validation, balanced accuracy" in out.stdout
    cv = {line.split()[0]: line for line in out.stdout.splitlines() if "grouped by question" in line
          or "leave-one-domain-out" in line}  # fmt: skip
    assert cv["halueval-qa"].split()[1:3] == ["5-fold", "grouped"]  # 10 questions: 5 folds of 2
    assert "leave-one-domain-out" in cv["summedits"] and "summedits by held-out fold" in out.stdout
    assert "halueval-qa by held-out fold" in out.stdout and "  fold5 " in out.stdout
    assert "LLM judge (fake-judge)" in out.stdout
    assert "halueval-qa     6" in out.stdout
    assert len(judge.requests) == 12
    assert all(json.dumps(r["body"]["model"]) == '"fake-judge"' for r in judge.requests)


def test_eval_table_explains_what_a_set_cannot_measure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The faithful set has no hallucinated answer: its recall, F1 and AUROC are undefined and print
    as n/a (never nan or a made-up 0.000), with a note in the set's own numbers."""
    from driftline.scorers import evaluate
    from driftline.scorers.grounding import GroundednessScorer
    from driftline.scorers.grounding.dataset import load_examples

    passage = "The Eiffel Tower was completed in March 1889 for the World's Fair in Paris."
    pairs = [("right", "In March 1889."), ("wrong", "In 1925, in Berlin.")]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"q{i}-{tag}",
                    "knowledge": passage,
                    "question": "When?",
                    "answer": answer,
                    "hallucinated": tag == "wrong",
                }
            )
            + "\n"
            for i, (tag, answer) in enumerate(pairs)
        )
    )
    assert evaluate.main(["--halueval", str(mixed), "--summedits", str(mixed)]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower()
    cells = [line.split() for line in out.splitlines()]
    rows = {c[0]: c[1:] for c in cells if len(c) == 9 and c[0] in ("halueval-qa", "summedits", "faithful")}
    n, acc, _bal_acc, prec, recall, f1, auroc, _speed = rows["faithful"]
    examples = load_examples(evaluate.FAITHFUL_PATH)
    assert int(n) == len(examples) and not any(e.hallucinated for e in examples)
    assert (recall, f1, auroc) == ("n/a", "n/a", "n/a")
    scorer = GroundednessScorer()
    flagged = sum(scorer.score(e.answer, e.context, e.question).label == "hallucinated" for e in examples)
    grounded = len(examples) - flagged
    assert float(acc) == pytest.approx(grounded / len(examples), abs=5e-4)
    assert prec == ("n/a" if flagged == 0 else "0.000")  # a flag on a faithful answer is always wrong
    assert f"faithful: all answers faithful: acc = share labelled grounded ({grounded} of {len(examples)})" in out
    assert "recall, F1, AUROC need hallucinated answers (n/a)" in out
    assert "n/a" not in rows["halueval-qa"]  # a set with both classes defines every metric
