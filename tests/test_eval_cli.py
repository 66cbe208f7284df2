"""`driftline eval`: the offline scorer on both labeled sets, and the judge when configured (here a
FAKE OpenAI-compatible judge server stands in for the provider)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_judge import FakeJudge

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
    assert "LLM judge (fake-judge)" in out.stdout
    assert "halueval-qa     6" in out.stdout
    assert len(judge.requests) == 12
    assert all(json.dumps(r["body"]["model"]) == '"fake-judge"' for r in judge.requests)
