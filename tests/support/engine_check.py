"""Every golden normalization test checks the engine's row too (store/ingest_sql.py).

`normalize_span` runs the Python normalizer, as the tests always did, and then hands the same
span, inside a real `ExportTraceServiceRequest` body, to the engine (the embedded chDB store of
the test session), asserting that each column the engine renders holds the same value:
- a span the Python path rejects is rejected by the engine with the same reason,
- a span the engine defers (ingest_sql `deferred`) is counted and left to the Python path,
- otherwise the Python row is the engine's field by field in every stored column: each envelope
  column and each spec column the engine renders equals the engine's, each column it does not
  render (ingest_spec.UNRENDERED) holds its default, and `attributes` equals the engine's full
  attribute map but for a message attribute the Python path leaves out (docs/columns.md),
- a span deferred only because the Python path may set a column the engine does not render
  (`unrendered:<column>`) still has every column the engine renders compared.
So any divergence between the two paths fails the golden test that shows it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final

from clickhouse_connect.driver.client import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from driftline.collector.normalize import InvalidSpan, Normalizer
from driftline.pricing import Pricer
from driftline.store.columns import SPAN_COLUMNS, column_defaults
from driftline.store.connection import StoreConfig, open_client
from driftline.store.ingest import EngineRows
from driftline.store.ingest_sql import RENDERED_COLUMNS, SPAN_COLUMNS_SQL

__all__ = ["DEFERRED", "MESSAGE_KEYS", "close", "engine_row", "normalize_span", "set_path"]

# Attributes the Python path may leave out of `attributes` (derive.py: held whole by the messages).
MESSAGE_KEYS = frozenset({"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion"})
# The spans columns an engine row does not hold (but tenant and ingested_at, the writer's).
UNRENDERED: Final = tuple(
    name
    for name, _, typ in SPAN_COLUMNS
    if typ is not None and name not in (*SPAN_COLUMNS_SQL, *RENDERED_COLUMNS, "tenant", "ingested_at")
)
DEFERRED: Counter[str] = Counter()  # deferral reasons seen, for the report of test_engine_ingest
CHECKED: Counter[str] = Counter()  # spans compared: "spans" in every column, "rendered" in those rendered


class _State:
    path: Path | None = None
    client: Client | None = None
    engines: dict[tuple[int, bool, bool], EngineRows] = {}


_STATE = _State()


def set_path(path: Path | None) -> None:
    """The test session's chDB data path (conftest): one engine per process."""
    _STATE.path = path


def close() -> None:
    for engine in _STATE.engines.values():
        engine.close()
    _STATE.engines.clear()
    if _STATE.client is not None:
        _STATE.client.close()
        _STATE.client = None


def _engine(limit: int, pricer: Pricer | None = None) -> EngineRows:
    """The engine for `limit` and the Python path's pricer (every Pricer without overrides
    prices alike: the bundled snapshot)."""
    if _STATE.client is None:
        if _STATE.path is None:
            raise RuntimeError("engine_check.set_path was not called (tests/conftest.py)")
        _STATE.client = open_client(StoreConfig(f"chdb://{_STATE.path}", "default"))
    key = (limit, pricer is not None, pricer is not None and bool(pricer.overrides))
    if key not in _STATE.engines:
        _STATE.engines[key] = EngineRows(_STATE.client, max_value_bytes=limit, pricer=pricer)
    return _STATE.engines[key]


def body_of(res: Resource, scope: InstrumentationScope, span: Span) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.CopyFrom(res)
    ss = rs.scope_spans.add()
    ss.scope.CopyFrom(scope)
    ss.spans.add().CopyFrom(span)
    body: bytes = req.SerializeToString()
    return body


def engine_row(
    res: Resource, scope: InstrumentationScope, span: Span, limit: int = 65536, pricer: Pricer | None = None
) -> dict[str, object]:
    (row,) = _engine(limit, pricer).rows([body_of(res, scope, span)])
    return row


def normalize_span(norm: Normalizer, res: Resource, scope: InstrumentationScope, span: Span) -> dict[str, object]:
    """`norm.span(...)`, checked against the engine's row of the same span."""
    eng = engine_row(res, scope, span, norm.max_value_bytes, norm.pricer)
    try:
        row = norm.span(span, norm.resource(res), scope)
    except InvalidSpan as e:
        assert eng["invalid"] == e.reason, (eng["invalid"], e.reason)
        raise
    assert eng["invalid"] == "", eng["invalid"]
    deferred = eng["deferred"]
    assert isinstance(deferred, list)
    if deferred:
        DEFERRED.update(deferred)
    if any(not str(r).startswith("unrendered:") for r in deferred):
        return row
    # Deferred only for a column it does not render: the columns it renders still equal Python's.
    CHECKED["spans" if not deferred else "rendered"] += 1
    defaults = column_defaults()
    diffs = {
        col: (eng[col], row.get(col, defaults[col]))
        for col in (*SPAN_COLUMNS_SQL, *RENDERED_COLUMNS)
        if eng[col] != row.get(col, defaults[col])
    }
    assert not diffs, f"engine != python (engine, python): {diffs}"
    # An engine row holds the columns it does not render at their defaults (what an INSERT of its
    # rows stores): a span it does not defer must have them so in the Python row too.
    unset = {col: row[col] for col in UNRENDERED if col in row and row[col] != defaults[col]}
    assert deferred or not unset, f"the Python path sets columns the engine does not render: {unset}"
    full = eng["attributes_all"]
    stored = row["attributes"]
    assert isinstance(full, dict) and isinstance(stored, dict)
    left_out = set(full) - set(stored)
    assert left_out <= MESSAGE_KEYS and set(stored) <= set(full), (left_out, set(stored) - set(full))
    assert {k: full[k] for k in stored} == stored
    return row
