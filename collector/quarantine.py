"""The quarantine: spans the store refused for good, kept on disk instead of blocking the spool.

The writer bisects a batch the store refuses with a permanent error (collector/errors.py
store_error_is_permanent) down to the spans at fault; those land here, and the rest of the batch is
stored. A spool record that can no longer be read back into rows lands here whole. Nothing is
dropped without a trace: each entry is two files in `<data dir>/quarantine/`,

- `<id>.arrow`: the normalized (and, when redaction is on, redacted) rows as an Arrow IPC stream,
  or `<id>.otlp`: the OTLP ExportTraceServiceRequest protobuf as it was spooled, or `<id>.spool`:
  spool bytes that failed their checksum (kept for forensics; reinject skips them);
- `<id>.json`: the sidecar: tenant, reason, error, time, span count and span ids.

`driftline quarantine list|show|reinject` reads them; reinject appends entries back to the spool
(with the collector stopped: the data dir is locked while it runs), so the next start writes them
through the normal path, or quarantines them again if the store still refuses them. Files are
0600 in a 0700 directory: they hold prompts, as the spool does.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftline.collector.metrics import DROP_REASONS
from driftline.collector.wal import SpanLog, decode_table, encode_table, private_dir, write_private

__all__ = ["Entry", "Quarantine", "reinject", "run_command"]

_KINDS: Final = {"rows": ".arrow", "otlp": ".otlp", "spool": ".spool"}


@dataclass(frozen=True)
class Entry:
    id: str
    tenant: str
    reason: str  # one of DROP_REASONS
    error: str  # the store's or the decoder's error, first 500 characters
    time: str  # ISO 8601, UTC
    spans: int
    span_ids: list[str]
    kind: str  # "rows" (Arrow rows) or "otlp" (a raw request body)


class Quarantine:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def put_rows(self, table: pa.Table, reason: str, error: str) -> list[Entry]:
        """Keep rows the store refused: one entry per tenant."""
        out = []
        tenants = table.column("tenant").to_pylist()
        for tenant in sorted(set(tenants)):
            rows = table.filter(pa.array([t == tenant for t in tenants]))
            span_ids = [str(s) for s in rows.column("span_id").to_pylist()]
            out.append(self._put(tenant, "rows", encode_table(rows), reason, error, span_ids))
        return out

    def put_raw(self, tenant: str, body: bytes, reason: str, error: str, kind: str = "otlp") -> Entry:
        """Keep a spooled request that can no longer be turned into rows, as it was spooled
        (`kind` "spool": raw spool bytes that failed their checksum, tenant unknown)."""
        if kind == "spool":
            return self._put(tenant, kind, body, reason, error, [])
        try:
            req = ExportTraceServiceRequest.FromString(body)
            span_ids = [s.span_id.hex() for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
        except DecodeError:
            span_ids = []  # not even protobuf: the bytes are kept, the count is unknown
        return self._put(tenant, "otlp", body, reason, error, span_ids)

    def _put(self, tenant: str, kind: str, data: bytes, reason: str, error: str, span_ids: list[str]) -> Entry:
        if reason not in DROP_REASONS:
            raise ValueError(f"quarantine reason {reason!r} is not one of {DROP_REASONS}")
        private_dir(self.dir)
        now = datetime.now(UTC)
        entry = Entry(
            id=f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
            tenant=tenant,
            reason=reason,
            error=error[:500],
            time=now.isoformat(),
            spans=len(span_ids),
            span_ids=span_ids,
            kind=kind,
        )
        write_private(self.dir / (entry.id + _KINDS[kind]), data)
        # The sidecar last: an entry without one was cut short by a crash and is not listed.
        write_private(self.dir / (entry.id + ".json"), json.dumps(asdict(entry), indent=1).encode())
        return entry

    def entries(self) -> list[Entry]:
        if not self.dir.exists():
            return []
        return [Entry(**json.loads(p.read_text())) for p in sorted(self.dir.glob("*.json"))]

    def get(self, entry_id: str) -> Entry:
        path = self.dir / f"{Path(entry_id).name}.json"
        if not path.exists():
            raise KeyError(f"no quarantine entry {entry_id!r} in {self.dir}")
        return Entry(**json.loads(path.read_text()))

    def rows(self, entry: Entry) -> pa.Table | None:
        """The entry's rows (None for a raw request body)."""
        if entry.kind != "rows":
            return None
        return decode_table((self.dir / (entry.id + ".arrow")).read_bytes())

    def body(self, entry: Entry) -> bytes:
        return (self.dir / (entry.id + _KINDS[entry.kind])).read_bytes()

    def remove(self, entry: Entry) -> None:
        (self.dir / (entry.id + ".json")).unlink(missing_ok=True)
        (self.dir / (entry.id + _KINDS[entry.kind])).unlink(missing_ok=True)


def reinject(quarantine: Quarantine, spool: SpanLog, entries: list[Entry]) -> int:
    """Append entries back to the spool (the caller holds the data dir lock) and remove them;
    the collector's next start writes them. Returns the spans re-injected."""
    spans = 0
    for entry in entries:
        if entry.kind == "spool":
            continue  # bytes the disk changed: nothing to write
        rows = quarantine.rows(entry)
        if rows is not None:
            spool.append_table(rows)
        else:
            spool.append_raw(entry.tenant, quarantine.body(entry))
        quarantine.remove(entry)
        spans += entry.spans
    return spans


def run_command(action: str, data_dir: Path, ids: list[str], every: bool, spool_max_bytes: int) -> int:
    """`driftline quarantine list|show|reinject` (driftline/cli.py wires the arguments)."""
    from driftline.store import DataDirInUse, DataDirLock

    q = Quarantine(data_dir / "quarantine")
    try:
        chosen = q.entries() if every else [q.get(i) for i in ids]
    except KeyError as missing:
        print(f"driftline: error: {missing.args[0]}", file=sys.stderr)
        return 2
    if action == "list":
        for e in q.entries():
            print(f"{e.id}  {e.tenant}  {e.reason}  {e.spans} span(s)  {e.time}  {e.error[:100]}")
        return 0
    if action == "show":
        for e in chosen:
            print(json.dumps(asdict(e), indent=1))
            rows = q.rows(e)
            if rows is not None:
                for row in rows.to_pylist():
                    print(json.dumps(row, default=str))
            elif e.kind == "spool":
                print(f"({len(q.body(e))} bytes of a corrupt spool record)")
            else:
                print(MessageToJson(ExportTraceServiceRequest.FromString(q.body(e))))
        return 0
    # reinject: into the spool, which only the collector that holds the data dir may write.
    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except DataDirInUse as held:
        print(f"driftline: error: {held}; stop the collector first (its next start writes them)", file=sys.stderr)
        return 1
    try:
        spool = SpanLog(data_dir / "spool", spool_max_bytes)
        try:
            spans = reinject(q, spool, chosen)
        finally:
            spool.close()
    finally:
        lock.release()
    print(f"re-injected {spans} span(s) of {len(chosen)} entr{'y' if len(chosen) == 1 else 'ies'} into the spool")
    return 0
