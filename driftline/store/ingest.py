"""Raw OTLP bodies handed to the engine: parsed and normalized by store/ingest_sql.py's SELECT.

`EngineRows.rows(bodies)` returns one dict per span of the given `ExportTraceServiceRequest`
bodies (protobuf bytes, as the receiver spools them), keyed like the Python normalizer's rows for
the columns the engine renders, plus `invalid`, `deferred` and `attributes_all`
(store/ingest_sql.py). The bodies go to the engine as one `Protobuf` stream (each message after
its varint length), so one query reads any number of requests.

On the embedded store the stream is a temporary file read with the `file` table function, and
the schema a file beside it (ingest_sql.schema_settings).

`EngineRows.store(table, requests, ingested_at_ms)` stores requests with one `INSERT ... SELECT`
of the engine's rows: each body numbered in the stream (its row's `request`, which gives its
tenant: otlp_schema.REQUEST_FIELD), the rows of requests with no deferred span written
whole, the others named for the Python path (tests/test_engine_store.py: the stored rows equal the
Python path's, field by field). It is not wired into the collector's writer yet.

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
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from clickhouse_connect.driver.client import Client

from driftline.pricing import Pricer
from driftline.store.columns import SPAN_COLUMNS
from driftline.store.ingest_bool import literal
from driftline.store.ingest_carried import carried, keys_sql
from driftline.store.ingest_cost import PRICE_TABLE, price_table_ddl, reload_sql
from driftline.store.ingest_sql import RENDERED_COLUMNS, SPAN_COLUMNS_SQL, file_source, schema_settings, span_rows_sql
from driftline.store.otlp_schema import PROTO, REQUEST_FIELD
from driftline.store.partitions import MAX_DAYS_PER_INSERT

__all__ = ["EngineRows", "Stored", "delimited", "numbered"]

# The spans columns an INSERT writes (not the ALIAS ones), and those an engine row holds as they
# are stored; the others an INSERT ... SELECT of the rows leaves to their defaults, which is what
# the Python path stores for every span the engine does not defer (ingest_spec.UNRENDERED).
_STORED: Final = tuple(name for name, _, typ in SPAN_COLUMNS if typ is not None)
_ROW_COLUMNS: Final = frozenset((*SPAN_COLUMNS_SQL, *RENDERED_COLUMNS))
_NS_PER_DAY: Final = 86_400 * 10**9


@dataclass(frozen=True)
class Stored:
    """What `EngineRows.store` did: spans stored, and the requests (their indices) it left."""

    spans: int
    python: list[int]


def _ints(items: Sequence[int]) -> str:
    return "CAST([" + ", ".join(str(i) for i in items) + "], 'Array(UInt32)')"


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


def numbered(bodies: Sequence[bytes]) -> bytes:
    """`delimited`, each body with its index appended as field `driftline_request` (a varint)."""
    tag = _varint(REQUEST_FIELD << 3)
    return delimited([b + tag + _varint(i) for i, b in enumerate(bodies)])


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

    def _sql(self, keys: frozenset[str] | None, request: str = "") -> str:
        """The query for a batch carrying `keys` (None: the whole query)."""
        pricer = self._pricer
        return span_rows_sql(
            "{source}",
            self._limit,
            priced=pricer is not None,
            overrides=pricer is not None and bool(pricer.overrides),
            price_table=self._price_table,
            carried=keys,
            request=request,
        )

    def store(self, table: str, requests: Sequence[tuple[str, bytes]], ingested_at_ms: int) -> Stored:
        """Store the spans of `requests` ((tenant, body) pairs) the engine can write whole into
        `table` (the `spans` layout) with one INSERT ... SELECT, and name the requests left to the
        Python path: those with a span the engine defers (a request goes whole to one path, so the
        Python path's rules across a request's spans, fill_arguments, see all of them), or every
        request when the spans stored would touch more than MAX_DAYS_PER_INSERT days (the Python
        path splits by day). Invalid spans are left out (their rejection was counted when the
        request was received). Raises what the engine raises; a failure leaves nothing half
        stored but what ReplacingMergeTree collapses when the same requests are stored again.

        The rows pass through a Memory table of this call's own, so the engine computes them once
        for both the INSERT and the list of requests left over. The requests go in one stream
        (`numbered`: each row knows its request): a file per request costs the engine ~2.5x the
        CPU per span (a block per request through the query's expressions)."""
        if not requests:
            return Stored(0, [])
        fd, path = tempfile.mkstemp(suffix=".otlp", dir=self._tmp_dir)
        stage = f"_ingest_stage_{uuid.uuid4().hex}"
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(numbered([body for _, body in requests]))
            settings = schema_settings(self._schema)
            keys: frozenset[str] | None = None
            if self._carried_keys:
                keys = carried(self._client.query(keys_sql(path), settings=settings).result_rows[0][0])
            sql = self._sql(keys, request="driftline_request").replace("{source}", file_source(path), 1)
            make = f"CREATE TABLE {stage} ENGINE = Memory AS {sql}"
            self._client.command(make, settings=settings)
            unknown = self._client.query(
                f"SELECT DISTINCT provider, response_model, request_model FROM {stage} "
                "WHERE has(deferred, 'price_unknown')"
            ).result_rows
            if self._learn((str(p), str(r), str(q)) for p, r, q in unknown):
                self._client.command(f"DROP TABLE {stage}")
                self._client.command(make, settings=settings)
            (left,) = self._client.query(
                f"SELECT arraySort(groupUniqArrayIf(request, invalid = '' AND notEmpty(deferred))) FROM {stage}"
            ).result_rows[0]
            python = [int(i) for i in left]
            kept = f"invalid = '' AND NOT has({_ints(python)}, request)"
            n, days = self._client.query(
                f"SELECT count(), uniqExact(intDiv(start_time, {_NS_PER_DAY})) FROM {stage} WHERE {kept}"
            ).result_rows[0]
            if days > MAX_DAYS_PER_INSERT:
                return Stored(0, list(range(len(requests))))
            if n:
                tenants = "[" + ", ".join(literal(t) for t, _ in requests) + "]"
                exprs = {
                    "tenant": f"{tenants}[request + 1]",
                    "start_time": "fromUnixTimestamp64Nano(toInt64(start_time), 'UTC')",
                    "end_time": "fromUnixTimestamp64Nano(toInt64(end_time), 'UTC')",
                    "ingested_at": f"fromUnixTimestamp64Milli(toInt64({int(ingested_at_ms)}), 'UTC')",
                }
                cols = [c for c in _STORED if c in exprs or c in _ROW_COLUMNS]
                select = ", ".join(exprs.get(c, f"`{c}`") for c in cols)
                names = ", ".join(f"`{c}`" for c in cols)
                self._client.command(f"INSERT INTO {table} ({names}) SELECT {select} FROM {stage} WHERE {kept}")
            return Stored(int(n), python)
        finally:
            try:
                self._client.command(f"DROP TABLE IF EXISTS {stage}")
            finally:
                os.unlink(path)

    def _learn_prices(self, rows: list[dict[str, object]]) -> bool:
        """Add the Pricer's resolution of every (provider, model) a row could not find in the price
        table; True when something was added."""
        unknown = []
        for row in rows:
            deferred = row["deferred"]
            if isinstance(deferred, list) and "price_unknown" in deferred:
                unknown.append((str(row["provider"]), str(row["response_model"]), str(row["request_model"])))
        return self._learn(unknown)

    def _learn(self, unknown: Iterable[tuple[str, str, str]]) -> bool:
        """`_learn_prices` of (provider, response model, request model) triples."""
        if self._pricer is None:
            return False
        wanted: set[tuple[str, str]] = set()
        for provider, response, request in unknown:
            wanted.update((provider, m) for m in (response or request, request) if m)
        new = [pair for pair in wanted if pair not in self._priced]
        if not new:
            return False
        pricer = self._pricer
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
