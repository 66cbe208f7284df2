"""Raw OTLP bodies handed to the engine: parsed and normalized by store/ingest_sql.py's SELECT.

`EngineRows.rows(bodies)` returns one dict per span of the given `ExportTraceServiceRequest`
bodies (protobuf bytes, as the receiver spools them), keyed like the Python normalizer's rows for
the columns the engine renders, plus `invalid`, `deferred` and `attributes_all`
(store/ingest_sql.py). The bodies go to the engine as one `Protobuf` stream (each message after
its varint length), so one query reads any number of requests.

On the embedded store the stream is a temporary file read with the `file` table function, and
the schema a file beside it (ingest_sql.schema_settings).

Each batch gets the query rendered for the attribute keys its spans carry (store/ingest_carried.py:
one small query asks the engine for them first), the same rows at a fraction of the whole query's
planning (rendering it costs ~1 ms). `carried_keys=False` runs the whole query for every batch.

With a `Pricer`, spans are priced from the store's price table (store/ingest_cost.py): a
(provider, model) pair the table does not hold yet is resolved by the Pricer, added, and the
query run once more, so each model costs one extra query when first seen.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from driftline.pricing import Pricer
from driftline.store.ingest_carried import carried, keys_sql
from driftline.store.ingest_cost import PRICE_TABLE, price_table_ddl, reload_sql
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

    def __init__(
        self,
        client: Client,
        *,
        max_value_bytes: int = 65536,
        tmp_dir: str | None = None,
        pricer: Pricer | None = None,
        price_table: str = PRICE_TABLE,
        carried_keys: bool = True,
    ) -> None:
        self._client = client
        self._limit = max_value_bytes
        self._tmp_dir = tmp_dir
        self._pricer = pricer
        self._price_table = price_table
        self._priced: set[tuple[str, str]] = set()
        self._carried_keys = carried_keys
        if pricer is not None:
            for ddl in price_table_ddl(price_table):
                client.command(ddl)
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
            settings = schema_settings(self._schema)
            keys: frozenset[str] | None = None
            if self._carried_keys:
                keys = carried(self._client.query(keys_sql(path), settings=settings).result_rows[0][0])
            sql = self._sql(keys).replace("{source}", file_source(path), 1)
            rows = list(self._client.query(sql, settings=settings).named_results())
            if self._learn_prices(rows):
                rows = list(self._client.query(sql, settings=settings).named_results())
            return rows
        finally:
            os.unlink(path)

    def _sql(self, keys: frozenset[str] | None) -> str:
        """The query for a batch carrying `keys` (None: the whole query)."""
        pricer = self._pricer
        return span_rows_sql(
            "{source}",
            self._limit,
            priced=pricer is not None,
            overrides=pricer is not None and bool(pricer.overrides),
            price_table=self._price_table,
            carried=keys,
        )

    def _learn_prices(self, rows: list[dict[str, object]]) -> bool:
        """Add the Pricer's resolution of every (provider, model) a row could not find in the price
        table; True when something was added."""
        pricer = self._pricer
        if pricer is None:
            return False
        wanted: set[tuple[str, str]] = set()
        for row in rows:
            deferred = row["deferred"]
            if isinstance(deferred, list) and "price_unknown" in deferred:
                provider, response, request = (
                    str(row["provider"]),
                    str(row["response_model"]),
                    str(row["request_model"]),
                )
                wanted.update((provider, m) for m in (response or request, request) if m)
        new = [pair for pair in wanted if pair not in self._priced]
        if not new:
            return False
        data = []
        for provider, model in new:
            status, rates = pricer.engine_rates(provider, model)
            padded = (*rates, None, None, None, None, None)[:5]
            data.append([provider, model, status, *padded])
        self._client.insert(
            self._price_table,
            data,
            column_names=["key_provider", "key_model", "status", "r_in", "r_out", "r_read", "r_write", "r_reasoning"],
        )
        self._client.command(reload_sql(self._price_table))
        self._priced.update(new)
        return True
