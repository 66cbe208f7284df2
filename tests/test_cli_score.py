"""`driftline score backfill` re-scores a window on demand, through the same jobs as the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftline.cli import main
from tests.conftest import TENANT_A, LiveServer
from tests.support.sql import admin_rows
from tests.test_scoring import _ingest


def test_backfill_scores_a_window_once(
    live: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _ingest(live, 4)
    s = live.runtime.settings
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    args = ["score", "backfill", "--scorer", "cost", "--since", since,
            "--data-dir", str(tmp_path / "cli"), "--clickhouse-url", s.effective_clickhouse_url]  # fmt: skip
    monkeypatch.setenv("DRIFTLINE_DATABASE", s.database)
    assert main(args) == 0
    assert main(args) == 0  # again: replaces, never duplicates
    assert "cost: 4 spans scored" in capsys.readouterr().out
    bad = ["score", "backfill", "--scorer", "nope", "--since", since, "--data-dir", str(tmp_path / "cli"),
           "--clickhouse-url", s.effective_clickhouse_url]  # fmt: skip
    assert main(bad) == 2
    assert "unknown scorer 'nope'" in capsys.readouterr().err
    rows = admin_rows(
        live.runtime.store,
        "SELECT span_id, count() AS n FROM {db}.scores FINAL WHERE tenant = {tenant:String} AND scorer = 'cost' "
        "GROUP BY span_id",
        {"tenant": TENANT_A},
    )
    assert len(rows) == 4 and all(r["n"] == 1 for r in rows)
