"""Raw OTLP bodies handed to the engine: parsed and normalized by store/ingest_sql.py's SELECT.

`EngineRows.rows(bodies)` returns one dict per span of the given `ExportTraceServiceRequest`
bodies (protobuf bytes, as the receiver spools them), keyed like the Python normalizer's rows for
the columns the engine renders, plus `invalid`, `deferred` and `attributes_all`
(store/ingest_sql.py). The bodies go to the engine as one `Protobuf` stream (each message after
its varint length), so one query reads any number of requests.

On the embedded store the stream is a temporary file read with the `file` table function, and
the schema a file beside it (ingest_sql.schema_settings).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from driftline.store.ingest_sql import file_source, schema_settings, span_rows_sql
from driftline.store.otlp_schema import PROTO

__all__ = ["EngineRows", "delimited"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def delimited(bodies: Sequence[bytes]) -> bytes:
    """Bodies as one length-delimited protobuf stream (the `Protobuf` format's framing)."""
    return b"".join(_varint(len(b)) + b for b in bodies)


class EngineRows:
    """Span rows computed by the engine (embedded store) from raw export request bodies."""

    def __init__(self, client: Client, *, max_value_bytes: int = 65536, tmp_dir: str | None = None) -> None:
        self._client = client
        self._limit = max_value_bytes
        self._tmp_dir = tmp_dir
        self._sql = span_rows_sql("{source}", max_value_bytes)
        fd, self._schema = tempfile.mkstemp(suffix=".proto", dir=tmp_dir)
        with os.fdopen(fd, "w") as fh:
            fh.write(PROTO)

    def close(self) -> None:
        if os.path.exists(self._schema):
            os.unlink(self._schema)

    def rows(self, bodies: Sequence[bytes]) -> list[dict[str, object]]:
        fd, path = tempfile.mkstemp(suffix=".otlp", dir=self._tmp_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(delimited(bodies))
            sql = self._sql.replace("{source}", file_source(path), 1)
            result = self._client.query(sql, settings=schema_settings(self._schema))
            return list(result.named_results())
        finally:
            os.unlink(path)
