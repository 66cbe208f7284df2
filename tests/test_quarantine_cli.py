"""`driftline quarantine list|show|reinject`: spans the store refused for good are listed, shown and,
once the cause is fixed, re-injected through the spool and stored by the collector's next start."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from driftline.cli import main
from driftline.collector.consume import PROTOBUF
from driftline.collector.service import CollectorService
from tests.conftest import TENANT_A, make_settings
from tests.support.spans import chat_request, ids_of
from tests.write_path import stored_ids


def test_list_show_and_reinject(
    tmp_path: Path, chdb_path: Path, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s = make_settings(tmp_path / "data", f"chdb://{chdb_path}", database)
    req = chat_request(12, 21)
    poison = sorted(ids_of(req))[:3]

    rt = CollectorService(s)

    def refusing(table: pa.Table) -> None:  # the store refuses three spans for good (TYPE_MISMATCH)
        if set(poison) & set(table.column("span_id").to_pylist()):
            raise DatabaseError("Code: 53. DB::Exception: Type mismatch (test)", code=53)
        rt.store.insert_arrow("spans", table)

    rt._insert = refusing
    rt.start()
    try:
        assert rt.ingest(TENANT_A, req.SerializeToString(), "", PROTOBUF, "http").accepted == 12
        assert rt.flush(20)
        assert sorted(stored_ids(rt.store, TENANT_A)) == sorted(ids_of(req) - set(poison))
        capsys.readouterr()
        # While the collector holds the data dir, reinject refuses and says why.
        assert main(["quarantine", "reinject", "--all", "--data-dir", str(s.data_dir)]) == 1
        assert "stop the collector first" in capsys.readouterr().err
    finally:
        rt.stop()

    assert main(["quarantine", "list", "--data-dir", str(s.data_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].split()[1:4] == [TENANT_A, "store_rejected", "3"]  # one per batch
    ids = [line.split()[0] for line in lines]
    assert main(["quarantine", "show", *ids, "--data-dir", str(s.data_dir)]) == 0
    out = capsys.readouterr().out
    shown = {json.loads(line)["span_id"] for line in out.splitlines() if line.startswith('{"')}
    assert sorted(shown) == poison and "DatabaseError" in out

    assert main(["quarantine", "reinject", "--data-dir", str(s.data_dir)]) == 2  # names nothing
    assert main(["quarantine", "reinject", "--all", "--data-dir", str(s.data_dir)]) == 0
    assert "re-injected 3 span(s)" in capsys.readouterr().out
    assert main(["quarantine", "list", "--data-dir", str(s.data_dir)]) == 0
    assert capsys.readouterr().out == ""

    fixed = CollectorService(s)  # the cause is fixed: the next start writes them
    fixed.start()
    try:
        assert fixed.flush(20)
        assert sorted(stored_ids(fixed.store, TENANT_A)) == sorted(ids_of(req))
    finally:
        fixed.stop()
