"""The spool log: order, checkpoint, bounds, recovery from a torn tail."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from driftline.collector.wal import SpanLog, SpoolFull


def _table(start: int, n: int) -> pa.Table:
    return pa.table({"i": list(range(start, start + n)), "s": [f"v{i}" * 10 for i in range(start, start + n)]})


def _values(log: SpanLog, pos: int | None = None) -> list[int]:
    out: list[int] = []
    for rec in log.read_from(log.checkpoint if pos is None else pos):
        assert rec.table is not None
        out.extend(rec.table.column("i").to_pylist())
    return out


def test_append_read_in_order_and_checkpoint(tmp_path: Path) -> None:
    log = SpanLog(tmp_path, max_bytes=10_000_000)
    positions = [log.append_table(_table(i * 10, 10)) for i in range(5)]
    assert positions == sorted(positions)
    assert _values(log) == list(range(50))
    recs = list(log.read_from(log.checkpoint))
    log.advance(recs[2].next_position)
    assert _values(log) == list(range(30, 50))
    log.close()
    # a new process sees the same checkpoint and the same pending records
    again = SpanLog(tmp_path, max_bytes=10_000_000)
    assert again.checkpoint == recs[2].next_position
    assert _values(again) == list(range(30, 50))
    again.advance(again.head)
    assert again.pending_bytes == 0 and _values(again) == []
    again.close()


def test_full_spool_refuses_and_frees_on_advance(tmp_path: Path) -> None:
    log = SpanLog(tmp_path / "s", max_bytes=3000)
    first = log.append_table(_table(0, 20))
    with pytest.raises(SpoolFull):
        for i in range(1, 100):
            log.append_table(_table(i * 20, 20))
    pending_before = log.pending_bytes
    assert pending_before <= 3000
    log.advance(log.head)
    assert log.pending_bytes == 0
    log.append_table(_table(5000, 20))  # room again
    assert first == 0
    log.close()


def test_torn_tail_is_cut_and_earlier_records_survive(tmp_path: Path) -> None:
    log = SpanLog(tmp_path, max_bytes=10**9)
    log.append_table(_table(0, 5))
    log.append_table(_table(5, 5))
    log.close()
    seg = next(tmp_path.glob("*.wal"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-7])  # a crash in the middle of the last record
    again = SpanLog(tmp_path, max_bytes=10**9)
    assert _values(again) == list(range(5))
    again.append_table(_table(100, 2))
    assert _values(again) == [0, 1, 2, 3, 4, 100, 101]
    again.close()


def test_old_segments_are_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import driftline.collector.wal as wal

    monkeypatch.setattr(wal, "_SEGMENT_BYTES", 500)  # small segments, same code path
    log = SpanLog(tmp_path, max_bytes=10**9)
    for i in range(20):
        log.append_table(_table(i * 10, 10))
    segments = len(list(tmp_path.glob("*.wal")))
    assert segments > 3
    log.advance(log.head)
    assert len(list(tmp_path.glob("*.wal"))) == 1
    assert _values(log) == []
    log.close()


def test_raw_and_arrow_records_mix_in_order(tmp_path: Path) -> None:
    log = SpanLog(tmp_path, max_bytes=10**9)
    log.append_raw("acme", b"\x0a\x00body")
    log.append_table(_table(0, 3))
    log.append_raw("b\u00e9ta", b"")
    recs = list(log.read_from(0))
    assert [(r.tenant, r.body) for r in recs if r.table is None] == [
        ("acme", b"\x0a\x00body"),
        ("b\u00e9ta", b""),
    ]
    assert recs[1].table is not None and recs[1].table.column("i").to_pylist() == [0, 1, 2]
    log.close()


def test_files_of_an_older_version_become_private(tmp_path: Path) -> None:
    log = SpanLog(tmp_path, max_bytes=10**9)
    log.append_table(_table(0, 3))
    log.advance(log.head)
    log.append_table(_table(3, 3))
    log.close()
    for p in [tmp_path, *tmp_path.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)  # what an older version left
    SpanLog(tmp_path, max_bytes=10**9).close()
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {"0o600"}


def test_oldest_age_runs_on_the_spools_clock(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    log = SpanLog(tmp_path, max_bytes=10**9, clock=lambda: now[0])
    assert log.oldest_age_s() == 0.0  # nothing pending
    first = log.append_table(_table(0, 5))
    now[0] += 30
    second = log.append_table(_table(5, 5))
    now[0] += 15
    assert log.oldest_age_s() == 45.0  # the oldest pending record's age
    log.advance(second)
    assert log.oldest_age_s() == 15.0
    log.advance(log.head)
    assert log.oldest_age_s() == 0.0 and first == 0
    log.close()
