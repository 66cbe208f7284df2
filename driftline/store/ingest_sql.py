"""OTLP export requests parsed and normalized by the engine: the SQL, rendered from the column spec.

`span_rows_sql(source)` is one SELECT over raw `ExportTraceServiceRequest` bodies read with the
`Protobuf` input format (store/otlp_schema.py): one row per span (ARRAY JOIN over resource,
scope and span lists), with
- the span's own columns as collector/normalize.py writes them (ids as lowercase hex, kind and
  status names, service / release / environment from the resource),
- `attributes_all` / `resource_attributes`: every attribute as the text the Python path stores
  (strings as they are, numbers and booleans as JSON, bytes as base64, arrays and kvlists as
  JSON, one level deep),
- `invalid`: the per-span rejection reason of normalize.InvalidSpan ('' for a valid span),
- `deferred`: why the engine cannot write this span's row exactly ([] when it can): a value it
  does not render byte for byte (a double outside 1e-4..1e16, a nested array, a string over the
  truncation limit, a duplicate key, an empty AnyValue, a count text Python's int() / float()
  read otherwise), or a source the spec marks as read by the Python path only
  (store/ingest_spec.py `Other`), or a source of a `spans` column the query does not render
  (ingest_spec.UNRENDERED: `unrendered:<columns>`, so a row not deferred holds those columns at
  their defaults, as the Python path's does); such spans go through the Python path,
- one column per spec column the renderer covers (ingest_spec.rendered), the message and text
  columns (store/ingest_messages.py) and the cost (store/ingest_cost.py).

`source` is a table expression yielding the Protobuf rows: `file(path, 'Protobuf', STRUCTURE)` on
the embedded store, `input(STRUCTURE)` in an `INSERT ... SELECT` sent to a server. The schema
travels inline (`SETTINGS`, `format_schema_source = 'string'`): `schema_settings()`.

How the SQL is written matters (a regex per attribute key costs ~30x array functions over the
map's keys): every lookup here is a map subscript, or `has` on the span's keys as numbers
(store/ingest_keys.py: ~4x cheaper than on the key strings), no regex; no lambda reads the
attribute map (it would copy the map, message texts and all, per element); what a resource holds
is computed once per resource. The query's settings (`schema_settings`) turn off
short-circuit evaluation and the analyzer / planner passes that cost more than they save here;
the top layers write AND / OR as `if`s (store/ingest_bool.py: half the planning time).
bench/engine_bench.py measures CPU per span and the planning time of one query,
bench/engine_planning.py where the planning goes. With `carried` (store/ingest_carried.py) the
query leaves out the sources a batch does not carry: the same rows, planned in ~2/3 of the time
for the benchmark's GenAI chat spans.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from driftline.store.ingest_bool import all_of, literal
from driftline.store.ingest_carried import reads
from driftline.store.ingest_cost import PRICE_TABLE, cost_layer
from driftline.store.ingest_keys import has_any, has_key, key_ids_sql
from driftline.store.ingest_messages import MESSAGE_COLUMNS, message_layers, passed_columns, text_columns
from driftline.store.ingest_spec import (
    COLUMNS,
    FAMILIES,
    FINISH_REASONS,
    OPERATION_TABLES,
    PROVIDERS,
    UNRENDERED,
    Attr,
    Column,
    JsonText,
    Other,
    Present,
    Sets,
    deferred_sources,
    rendered,
)
from driftline.store.otlp_schema import MESSAGE, PROTO, STRUCTURE

__all__ = ["RENDERED_COLUMNS", "SPAN_COLUMNS_SQL", "file_source", "schema_settings", "span_rows_sql"]

# The envelope columns this query writes exactly as normalize.py does.
SPAN_COLUMNS_SQL: Final = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_time",
    "end_time",
    "duration_ms",
    "name",
    "kind",
    "status_code",
    "status_message",
    "service",
    "release",
    "environment",
    "scope_name",
    "resource_attributes",
)
RENDERED_COLUMNS: Final = (*(c.name for c in COLUMNS if rendered(c)), *MESSAGE_COLUMNS, "cost_usd", "cost_source")


def _arr(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(literal(i) for i in items) + "]"


def schema_settings(schema_file: str | None = None) -> dict[str, str]:
    """Settings of the query: the `Protobuf` format reads OTLP with store/otlp_schema.py's schema.

    On a server the schema travels inline (`format_schema_source = 'string'`; the server caches it
    under its own format_schema_path). The embedded engine would write that cache under the
    process's working directory, so there it reads `schema_file` (PROTO written once, an absolute
    path, which the embedded engine allows).
    """
    # Short-circuit evaluation would run each `if` branch on a filtered copy of its inputs, the
    # attribute map with its message texts among them: with it on, the query costs 2-3x the CPU.
    # (Every branch here is safe to evaluate on every row: nothing in it throws.)
    # The analyzer's AND-comparison-chain pass walks every `x AND a['k'] != ''` of the chains
    # against the whole query below it: it is most of the query's analysis time (~300 of ~400 ms);
    # it only infers extra comparisons, which this query has no use for.
    common = {
        "output_format_json_escape_forward_slashes": "0",
        "short_circuit_function_evaluation": "disable",
        "optimize_and_compare_chain": "0",
        # Merging the layers' expression steps into one costs more planning (~40%) than it saves
        # (bench/engine_bench.py: per span it was no faster, on 50,000-span batches slower).
        "query_plan_merge_expressions": "0",
        # The plan's other optimizations (filter push-down, reading in order, ...) find nothing
        # to do in a projection over a file and cost ~30 ms of planning per query
        # (bench/engine_planning.py: PlanOptimize 26-35 -> 1 ms; CPU per span no higher).
        "query_plan_enable_optimizations": "0",
        # Compiling the expressions to machine code made no span cheaper (24.7 / 25.0 us per span),
        # but costs ~200 ms the first time a query shape is seen (each batch's key set,
        # store/ingest_carried.py, can be a new one) and ~30 ms of each query's planning after.
        "compile_expressions": "0",
        # the cost's division: its exact decimal text parsed to the correctly rounded double
        "precise_float_parsing": "1",
    }
    if schema_file is not None:
        return {**common, "format_schema": f"{schema_file}:{MESSAGE}"}
    return {**common, "format_schema": PROTO, "format_schema_source": "string", "format_schema_message_name": MESSAGE}


def file_source(path: str) -> str:
    return f"file({literal(path)}, 'Protobuf', {literal(STRUCTURE)})"


# -- attribute values as text --------------------------------------------------------------
# Python's repr / orjson of a finite double inside this range is the engine's shortest
# round-trip text, with ".0" added when it has no point; outside it they use exponents.
def _double_ok(d: str) -> str:
    return f"(isFinite({d}) AND abs({d}) < 1e16 AND ({d} = 0 OR abs({d}) >= 1e-4))"


def _double_text(d: str) -> str:
    return f"if(position(toString({d}), '.') = 0, concat(toString({d}), '.0'), toString({d}))"


# orjson and the engine's JSON writer escape these differently (lowercase / uppercase \\u00xx hex,
# U+2028 / U+2029 raw / escaped): a string holding one, inside an array or kvlist, is deferred.
_JSON_DIFFERS: Final = (
    "["
    + ", ".join(f"'\\x{c:02X}'" for c in (0x0B, 0x0E, 0x0F, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F))
    + ", '\u2028', '\u2029']"
)


def _json_string(s: str) -> str:
    return f"toJSONString({s})"


def _inner_json(i: str) -> str:
    """One item of an array / kvlist as orjson writes it (a nested array or kvlist: deferred)."""
    return (
        f"multiIf({i}.string_value IS NOT NULL, {_json_string(f'assumeNotNull({i}.string_value)')}, "
        f"{i}.int_value IS NOT NULL, toString({i}.int_value), "
        f"{i}.double_value IS NOT NULL, {_double_text(f'assumeNotNull({i}.double_value)')}, "
        f"{i}.bool_value IS NOT NULL, if({i}.bool_value, 'true', 'false'), "
        f"{i}.bytes_value IS NOT NULL, concat('\"', base64Encode(assumeNotNull({i}.bytes_value)), '\"'), 'null')"
    )


def _inner_deferred(i: str) -> str:
    return (
        f"({i}.array_value IS NOT NULL OR {i}.kvlist_value IS NOT NULL "
        f"OR ({i}.double_value IS NOT NULL AND NOT {_double_ok(f'assumeNotNull({i}.double_value)')}) "
        f"OR multiSearchAny(ifNull({i}.string_value, ''), {_JSON_DIFFERS}))"
    )


def _value_text(v: str) -> str:
    """read_attributes' text of one AnyValue tuple `v`."""
    arr = f"{v}.array_value.values"
    kvl = f"{v}.kvlist_value.values"
    return (
        f"ifNull(multiIf({v}.string_value IS NOT NULL, assumeNotNull({v}.string_value), "
        f"{v}.int_value IS NOT NULL, toString({v}.int_value), "
        f"{v}.double_value IS NOT NULL, if(isFinite(assumeNotNull({v}.double_value)), "
        f"{_double_text(f'assumeNotNull({v}.double_value)')}, 'null'), "
        f"{v}.bool_value IS NOT NULL, if({v}.bool_value, 'true', 'false'), "
        f"{v}.bytes_value IS NOT NULL, base64Encode(assumeNotNull({v}.bytes_value)), "
        f"notEmpty({arr}), concat('[', arrayStringConcat(arrayMap(i -> {_inner_json('i')}, {arr}), ','), ']'), "
        f"notEmpty({kvl}), concat('{{', arrayStringConcat(arrayMap(kv -> concat({_json_string('kv.key')}, ':', "
        f"{_inner_json('kv.value')}), {kvl}), ','), '}}'), ''), '')"
    )


def _value_deferred(v: str, limit: int) -> str:
    """Why the engine cannot write this value's text exactly ('' when it can)."""
    arr = f"{v}.array_value.values"
    kvl = f"{v}.kvlist_value.values"
    d = f"assumeNotNull({v}.double_value)"
    return (
        f"multiIf({v}.string_value IS NOT NULL AND length({v}.string_value) > {limit}, 'long_value', "
        f"{v}.double_value IS NOT NULL AND isFinite({d}) AND NOT {_double_ok(d)}, 'double_format', "
        f"arrayExists(i -> {_inner_deferred('i')}, {arr}) "
        f"OR arrayExists(kv -> {_inner_deferred('kv.value')} OR multiSearchAny(kv.key, {_JSON_DIFFERS}), {kvl}), "
        f"'nested_value', "
        f"length(arrayDistinct(arrayMap(kv -> kv.key, {kvl}))) != length({kvl}), 'duplicate_key', "
        f"{v}.string_value IS NULL AND {v}.int_value IS NULL AND {v}.double_value IS NULL "
        f"AND {v}.bool_value IS NULL AND {v}.bytes_value IS NULL AND empty({arr}) AND empty({kvl}), 'empty_value', '')"
    )


# -- the spec's sources -----------------------------------------------------------------------
def _present(keys: tuple[str, ...]) -> str:
    return has_any(keys)


def _family(family: str) -> str:
    return f"fam_{family.lower()}"


def _to_int(s: str) -> str:
    """conventions._common.to_int on attribute text: an integer, else a finite float truncated."""
    # Python's int() / float() skip surrounding whitespace.
    s = f"trim(BOTH ' \\t\\n\\r\\x0B\\x0C' FROM {s})"
    f = f"toFloat64OrZero({s})"
    # Both branches run on every row (short_circuit_function_evaluation off): toInt64 of inf/nan
    # throws, so it converts 0 there.
    return (
        f"coalesce(toInt64OrNull({s}), "
        f"if(isFinite({f}) AND toFloat64OrNull({s}) IS NOT NULL, toInt64(if(isFinite({f}), {f}, 0)), NULL))"
    )


# Every attribute the chains read as a count.
_COUNT_KEYS: Final = tuple(
    dict.fromkeys(s.key for c in COLUMNS for s in c.sources if isinstance(s, Attr) and s.read == "int")
)


# Every attribute the finish reason's chain reads as text.
_FINISH_KEYS: Final = tuple(
    s.key for c in COLUMNS for s in c.sources if isinstance(s, Attr) and s.read in ("finish", "finish_list")
)


def _tuple(items: tuple[str, ...]) -> str:
    return "(" + ", ".join(literal(i) for i in items) + ")"


def _odd_count(s: str) -> str:
    """A count text Python reads differently from `_to_int` (its span is deferred): one with an
    underscore (int('1_000')), a byte outside printable ASCII and ASCII whitespace (Unicode digits
    and spaces, which int() accepts), or a finite number beyond Int64."""
    f = f"toFloat64OrZero(trim(BOTH ' \\t\\n\\r\\x0B\\x0C' FROM {s}))"
    return (
        f"(position({s}, '_') > 0 OR NOT match({s}, '^[\\x09-\\x0D\\x20-\\x7E]*$') "
        f"OR (toInt64OrNull(trim(BOTH ' \\t\\n\\r\\x0B\\x0C' FROM {s})) IS NULL AND isFinite({f}) "
        f"AND abs({f}) >= 9.2e18))"
    )


def _fold_operation(table: str, s: str) -> str:
    mapping, clean, unknown = OPERATION_TABLES[table]
    cleaned = {"strip_lower": f"lowerUTF8(trimBoth({s}))", "upper": f"upperUTF8({s})", "lower": f"lowerUTF8({s})"}.get(
        clean, s
    )
    keys = tuple(mapping)
    return f"transform({cleaned}, {_arr(keys)}, {_arr(tuple(mapping[k] for k in keys))}, {literal(unknown)})"


def _fold_provider(s: str) -> str:
    """providers.normalize_provider: the table, else a dotted name's first segment, else lowercased."""
    keys = tuple(PROVIDERS)
    vals = tuple(PROVIDERS[k] for k in keys)
    head = "splitByChar('.', low)[1]"
    fallback = (
        "multiIf(startsWith(low, 'google.vertex') OR startsWith(low, 'vertex.'), 'gcp.vertex_ai', "
        "position(low, '.') > 0 AND position(low, '.') < length(low), "
        f"transform({head}, {_arr(keys)}, {_arr(vals)}, {head}), low)"
    )
    # arrayMap over one item binds `low` once (the engine has no let-binding).
    return f"arrayMap(low -> transform(low, {_arr(keys)}, {_arr(vals)}, {fallback}), [lowerUTF8(trimBoth({s}))])[1]"


def _fold_finish(s: str) -> str:
    """conventions._common.finish_reason: stripped, lowercased, folded by its table. A text that
    is not printable ASCII is deferred (`_finish_deferred`): Python's strip() and lower() reach
    further than trimBoth and lower."""
    keys = tuple(FINISH_REASONS)
    vals = tuple(FINISH_REASONS[k] for k in keys)
    return f"arrayMap(low -> transform(low, {_arr(keys)}, {_arr(vals)}, low), [lower(trimBoth({s}))])[1]"


def _finish_list(v: str) -> str:
    """genai.extract's `gen_ai.response.finish_reasons`: a JSON list's first item when it is a
    string, a JSON object nothing, any other non-empty text (invalid JSON too) itself; folded."""
    json = f"((startsWith({v}, '[') OR startsWith({v}, '{{')) AND isValidJSON({v}))"
    first = f"JSONExtractString({v}, 1)"
    return (
        f"multiIf({json} AND startsWith({v}, '[') AND JSONType({v}, 1) = 'String', {_fold_finish(first)}, "
        f"{json}, NULL, "
        f"{v} != '', {_fold_finish(v)}, NULL)"
    )


# The last output message's `finish_reason` members as (key, raw JSON) pairs: one parse of the
# messages per span, read by the fallback and its deferral (a layer below the chains).
_FINISH_MEMBERS: Final = (
    "arrayFilter(kv -> kv.1 = 'finish_reason', JSONExtractKeysAndValuesRaw(a['gen_ai.output.messages'], -1)) AS _fin"
)


def _finish_fallback() -> str:
    """The last `gen_ai.output.messages` item's non-empty `finish_reason` text (genai._content:
    the text parses as a JSON list, `maybe_json` reads only text starting with '[')."""
    ok = "startsWith(a['gen_ai.output.messages'], '[') AND length(_fin) = 1 AND startsWith(_fin[1].2, '\"')"
    reason = "JSONExtractString(_fin[1].2)"
    return f"if({_family('GenAI')} AND {ok} AND {reason} != '', {_fold_finish(reason)}, NULL)"


def _finish_deferred() -> str:
    """Why the finish reason's sources cannot be folded exactly ('' when they can): a text that is
    not printable ASCII (an attribute, a JSON list's first string, the fallback's value: Python's
    strip() and lower() reach further), or a last output message naming `finish_reason` twice
    (orjson keeps the last, the engine's JSON functions the first)."""
    ascii_only = "'^[\\x20-\\x7E]*$'"
    texts = [
        *(f"a[{literal(k)}]" for k in _FINISH_KEYS),
        "JSONExtractString(a['gen_ai.response.finish_reasons'], 1)",
        "JSONExtractString(if(empty(_fin), '', _fin[1].2))",
    ]
    odd = " OR ".join(f"NOT match({t}, {ascii_only})" for t in texts)
    return f"if({odd} OR length(_fin) > 1, 'finish_text', '')"


def _vercel_operation(s: str) -> str:
    return (
        f"multiIf(endsWith({s}, '.doGenerate') OR endsWith({s}, '.doStream'), 'chat', "
        f"startsWith({s}, 'ai.embed'), 'embeddings', {s} = 'ai.toolCall', 'execute_tool', "
        f"startsWith({s}, 'ai.generate') OR startsWith({s}, 'ai.stream'), 'workflow', 'other')"
    )


def _source_sql(src: Attr | Present | JsonText) -> str:
    """One source: NULL when it gives nothing (the next source is tried)."""
    gate = _family(src.family)
    if isinstance(src, Present):
        unless = f" AND a[{literal(src.unless)}] = ''" if src.unless else ""
        return f"if({gate} AND {_present(src.keys)}{unless}, {literal(src.value)}, NULL)"
    if isinstance(src, JsonText):
        # OpenInference: the first key holding a JSON object with a non-empty string member.
        out = "NULL"
        for key in reversed(src.keys):
            v = f"a[{literal(key)}]"
            member = f"JSONExtractString({v}, {literal(src.member)})"
            ok = f"(startsWith({v}, '{{') AND isValidJSON({v}) AND JSONType({v}, {literal(src.member)}) = 'String')"
            out = f"if({ok} AND {member} != '', {member}, {out})"
        return f"if({gate}, {out}, NULL)"
    v = f"a[{literal(src.key)}]"
    has_text = f"{v} != ''"
    if src.read in ("text", "provider", "model_name"):
        value = f"if({has_text}, {v}, NULL)"
    elif src.read == "int":
        value = _to_int(v)
    elif src.read == "provider_present":
        value = f"if({has_key(src.key)}, {v}, NULL)"
    elif src.read == "op:vercel":
        value = f"if({has_text}, {_vercel_operation(v)}, NULL)"
    elif src.read.startswith("op:"):
        value = f"if({has_text}, {_fold_operation(src.read[3:], v)}, NULL)"
    elif src.read == "finish":
        value = f"if({has_text}, {_fold_finish(v)}, NULL)"
    elif src.read == "finish_list":
        value = _finish_list(v)
    else:
        raise ValueError(f"unknown read {src.read!r} for {src.key}")
    return f"if({gate}, {value}, NULL)"


def _same_read(src: Attr | Present | JsonText, read: str) -> bool:
    return isinstance(src, Attr) and src.read == read


def _runs(read: list[Attr | Present | JsonText]) -> list[str]:
    """SQL per source, but a run of plain text / count attributes is one `multiIf` / `coalesce`
    over constant map subscripts. (A lambda over the run's keys reading `a[k]` would copy the
    whole attribute map, message texts and all, once per key and span: several times slower.)"""
    out: list[str] = []
    i = 0
    while i < len(read):
        src = read[i]
        if isinstance(src, Attr) and src.read in ("text", "int", "provider"):
            j = i
            while j < len(read) and _same_read(read[j], src.read):
                j += 1
            run = [x for x in read[i:j] if isinstance(x, Attr)]
            if src.read == "int":
                parts = [f"if({_family(x.family)}, ai[{literal(x.key)}], NULL)" for x in run]
                out.append(parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})")
            else:
                conds = ", ".join(
                    f"{_family(x.family)} AND a[{literal(x.key)}] != '', a[{literal(x.key)}]" for x in run
                )
                out.append(f"multiIf({conds}, NULL)")
            i = j
        else:
            out.append(_source_sql(src))
            i += 1
    return out


def _chain_sql(column: Column, carried: frozenset[str] | None) -> str:
    """The column's chain of the sources a batch carrying `carried` can read (ingest_carried)."""
    sources = [s for s in column.sources if not isinstance(s, Other)]
    read = [s for s in sources if reads(s, carried)]
    if read:
        parts = _runs(read)
        chain = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
    else:
        counts = any(isinstance(s, Attr) and s.read == "int" for s in sources)
        chain = "CAST(NULL, 'Nullable(Int64)')" if counts else "CAST(NULL, 'Nullable(String)')"
    if read and all(isinstance(s, Attr) and s.read in ("provider", "provider_present") for s in sources):
        # One fold of the first value found: the same as folding each source, at a tenth of the SQL.
        chain = f"if({chain} IS NULL, NULL, {_fold_provider(f'assumeNotNull({chain})')})"
    if column.then == "other_if_recognised":
        return f"coalesce({chain}, if(fam_any, 'other', ''))"
    if column.then == "finish_fallback":
        return f"coalesce({chain}, {_finish_fallback()}, '')"
    if column.name in (
        "operation",
        "provider",
        "request_model",
        "response_model",
        "conversation_id",
        "user_id",
        "session_id",
    ):
        return f"coalesce({chain}, '')"
    return chain


def _deferred_sources(carried: frozenset[str] | None) -> list[str]:
    """A reason per deferred spec source (ingest_spec.Other with keys or an event) on the span."""
    out = []
    for s in (s for s in deferred_sources() if reads(s, carried)):
        if s.event:
            out.append(f"if(has(event_names, {literal(s.event)}), {literal('event:' + s.event)}, '')")
        elif s.contains:
            reason = f"source:{','.join(s.keys)} holding {s.contains}"
            holds = " OR ".join(f"position(a[{literal(k)}], {literal(s.contains)}) > 0" for k in s.keys)
            out.append(f"if({_family(s.family)} AND ({holds}), {literal(reason)}, '')")
        else:
            reason = "source:" + ",".join(s.keys)
            out.append(f"if({_family(s.family)} AND {_present(s.keys)}, {literal(reason)}, '')")
    return out


def _like_escaped(text: str) -> str:
    """`text` matched literally inside a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _unrendered(carried: frozenset[str] | None, *, operation: bool) -> list[str]:
    """A reason per source of a column the query does not render (ingest_spec.UNRENDERED) on the
    span: those read from the attributes and events, or (`operation`) the rendered operation's."""
    groups: dict[Sets, list[str]] = {}
    for u in UNRENDERED:
        if bool(u.operation) == operation and reads(u, carried):
            groups.setdefault(replace(u, column="", what=""), []).append(u.column)
    out = []
    for u, columns in groups.items():
        if u.operation:
            cond = f"operation = {literal(u.operation)}"
        elif u.event:
            cond = "notEmpty(event_names)"
        elif u.prefix:
            cond = f"arrayExists(k -> startsWith(k, {literal(u.prefix)}) AND endsWith(k, {literal(u.suffix)}), a_keys)"
        elif u.contains:
            # ILIKE, not positionCaseInsensitive: the same test, ~110 ms less planning per query
            pattern = literal(f"%{_like_escaped(u.contains)}%")
            cond = " OR ".join(f"a[{literal(k)}] ILIKE {pattern}" for k in u.keys)
        else:
            cond = _present(u.keys)
        if u.family:
            cond = f"{_family(u.family)} AND ({cond})"
        out.append(f"if({cond}, {literal('unrendered:' + ','.join(columns))}, '')")
    return out


def span_rows_sql(
    source: str,
    limit: int = 65536,
    *,
    priced: bool = False,
    overrides: bool = False,
    price_table: str = PRICE_TABLE,
    carried: frozenset[str] | None = None,
    request: str = "",
) -> str:
    """The SELECT described in the module docstring; `limit` is max_value_bytes. `request`: an
    expression over the source's rows (one per export request) kept on each span's row as column
    `request` (store/ingest.py: the number of the file the request came in). With `priced`
    (the Python path has a Pricer) spans are priced from `price_table` (store/ingest_cost.py);
    `overrides`: the Pricer has operator overrides (priced spans are then deferred). With
    `carried` (store/ingest_carried.py), the query for a batch whose spans carry only those of
    the spec's keys: the same rows for such a batch, at a fraction of the planning."""
    texts = f"arrayMap(kv -> {_value_text('kv.value')}, sp.attributes)"
    value_deferred = (
        f"arrayConcat(arrayFilter(x -> x != '', arrayMap(kv -> {_value_deferred('kv.value', limit)}, sp.attributes)), "
        "_r_deferred)"
    )
    zero16 = "unhex('00000000000000000000000000000000')"
    zero8 = "unhex('0000000000000000')"
    invalid = (
        f"multiIf(length(sp.trace_id) != 16 OR sp.trace_id = {zero16}, 'missing_trace_id', "
        f"length(sp.span_id) != 8 OR sp.span_id = {zero8}, 'missing_span_id', "
        f"sp.parent_span_id != '' AND (length(sp.parent_span_id) != 8 OR sp.parent_span_id = {zero8}), "
        "'bad_parent_span_id', "
        "sp.start_time_unix_nano < 946684800000000000 OR sp.end_time_unix_nano < sp.start_time_unix_nano "
        "OR sp.end_time_unix_nano >= 4102444800000000000, 'bad_timestamp', '')"
    )
    inner = (
        "SELECT "
        "lower(hex(sp.trace_id)) AS trace_id, lower(hex(sp.span_id)) AS span_id, "
        "lower(hex(sp.parent_span_id)) AS parent_span_id, "
        "sp.start_time_unix_nano AS start_time, sp.end_time_unix_nano AS end_time, "
        "sp.name AS name, "
        "if(sp.kind BETWEEN 0 AND 5, "
        "['internal', 'internal', 'server', 'client', 'producer', 'consumer'][sp.kind + 1], "
        "'internal') AS kind, "
        "if(sp.status.code BETWEEN 0 AND 2, ['unset', 'ok', 'error'][sp.status.code + 1], 'unset') AS status_code, "
        "sp.status.message AS status_message, scope_name, "
        f"{'request, ' if request else ''}r, {texts} AS a_vals, "
        "arrayMap(kv -> kv.key, sp.attributes) AS a_keys, "
        f"{invalid} AS invalid, "
        f"{value_deferred} AS _value_deferred, "
        "arrayMap(e -> e.name, sp.events) AS event_names, "
        "length(arrayDistinct(a_keys)) != length(a_keys) OR _r_dup_keys AS _dup_keys, "
        f"length(sp.status.message) > {limit} AS _long_status "
        f"FROM ({_unnest(source, limit, request)})"
    )
    families = [f"{_present(markers)} AS {_family(name)}" for name, markers in FAMILIES.items()]
    any_family = " OR ".join(_family(name) for name in FAMILIES) + " AS fam_any, toUInt8(1) AS fam_all"
    spec_cols = [f"{_chain_sql(c, carried)} AS {_raw(c)}" for c in COLUMNS if rendered(c)]
    reasons = [
        "if(_dup_keys, 'duplicate_key', '')",
        "if(_long_status, 'long_value', '')",
        "if(_odd_count, 'count_format', '')",
        _finish_deferred(),
        *_deferred_sources(carried),
        *_unrendered(carried, operation=False),
    ]
    deferred = f"arrayFilter(x -> x != '', arrayConcat(_value_deferred, [{', '.join(reasons)}])) AS _deferred0"
    # Layers, each reading the one below as columns: an alias used twice in one SELECT is analyzed
    # twice (with everything it refers to), a column of a subquery once.
    # The attributes the chains read as counts (their keys and texts, in the span's order), so
    # that the conversions and the count map see those few values, not every attribute's text.
    counted = (
        f"SELECT *, {key_ids_sql('a_keys')} AS a_kid, "
        f"arrayFilter(k -> k IN {_tuple(_COUNT_KEYS)}, a_keys) AS _c_keys, "
        f"arrayFilter((t, k) -> k IN {_tuple(_COUNT_KEYS)}, a_vals, a_keys) AS _c_vals FROM ({inner})"
    )
    maps = (
        "SELECT * EXCEPT (_c_keys, _c_vals), mapFromArrays(a_keys, a_vals) AS a, "
        # every attribute read as a count once: one conversion in the SQL, not one per count key
        f"mapFromArrays(_c_keys, arrayMap(t -> {_to_int('t')}, _c_vals)) AS ai, "
        f"arrayExists(t -> {_odd_count('t')}, _c_vals) AS _odd_count FROM ({counted})"
    )
    fams = (
        "arrayFilter(x -> x != '', ["
        + ", ".join(f"if({_family(n)}, {literal(n)}, '')" for n in FAMILIES)
        + "]) AS fams"
    )
    facts = message_layers(
        f"SELECT *, {', '.join(families)}, {any_family}, {fams}, {_FINISH_MEMBERS} FROM ({maps})", carried
    )
    chains = (
        f"SELECT {'request, ' if request else ''}trace_id, span_id, parent_span_id, start_time, end_time, "
        "(end_time - start_time) / 1e6 AS duration_ms, name, kind, status_code, status_message, "
        "r['service.name'] AS service, "
        "if(r['service.version'] != '', r['service.version'], a['langfuse.release']) AS release, "
        "multiIf(r['deployment.environment.name'] != '', r['deployment.environment.name'], "
        "r['deployment.environment'] != '', r['deployment.environment'], a['langfuse.environment']) AS environment, "
        f"scope_name, r AS resource_attributes, a AS attributes_all, invalid, {deferred}, "
        + ", ".join((*spec_cols, *passed_columns()))
        + f" FROM ({facts})"
    )
    texts = text_columns(_tokens_sql(chains), limit)
    by_op = _unrendered(carried, operation=True)
    if by_op:
        texts = (
            f"SELECT * EXCEPT (deferred), arrayFilter(x -> x != '', arrayConcat(deferred, [{', '.join(by_op)}])) "
            f"AS deferred FROM ({texts})"
        )
    return cost_layer(texts, priced=priced, overrides=overrides, table=price_table)


def _unnest(source: str, limit: int, request: str = "") -> str:
    """One row per span: (r, _r_deferred, _r_dup_keys, scope_name, sp). Each level is its own
    subquery so that an ARRAY JOIN replicates only what the next level reads: joining the spans
    while the whole resource (holding every span) is still in scope would copy it once per span.
    The resource's attribute map and what it defers are computed once per resource, not per span."""
    attrs = "rs.resource.attributes"
    keys = f"arrayMap(kv -> kv.key, {attrs})"
    req = "request, " if request else ""
    first = f"{request} AS request, " if request else ""
    resources = (
        f"SELECT {first}mapFromArrays({keys}, arrayMap(kv -> {_value_text('kv.value')}, {attrs})) AS r, "
        f"arrayFilter(x -> x != '', arrayMap(kv -> {_value_deferred('kv.value', limit)}, {attrs})) AS _r_deferred, "
        f"length(arrayDistinct({keys})) != length({attrs}) AS _r_dup_keys, "
        f"rs.scope_spans AS _sss FROM {source} ARRAY JOIN resource_spans AS rs"
    )
    scopes = (
        f"SELECT {req}r, _r_deferred, _r_dup_keys, _ss.scope.name AS scope_name, _ss.spans AS _sps "
        f"FROM ({resources}) ARRAY JOIN _sss AS _ss"
    )
    return f"SELECT {req}r, _r_deferred, _r_dup_keys, scope_name, sp FROM ({scopes}) ARRAY JOIN _sps AS sp"


def _raw(c: Column) -> str:
    return f"_raw_{c.name}" if c.then == "tokens" else c.name


def _tokens_sql(chains: str) -> str:
    """The token accounting rule (collector/conventions/derive.py fix_tokens, store/columns.py),
    over the chains' raw counts, in one layer: the total reads the corrected counts' aliases (the
    same expressions, computed once)."""
    inp = "_raw_input_tokens"
    out = "_raw_output_tokens"
    cached = "(ifNull(cache_read_tokens, 0) + ifNull(cache_creation_tokens, 0))"
    # AND written as `if`s (ingest_bool.all_of; each operand is a condition): ~15 ms less planning
    fixed_in = f"if({all_of(f'{inp} IS NOT NULL', f'{cached} > {inp}')}, {inp} + {cached}, {inp})"
    more = "reasoning_tokens"
    grew = all_of(f"{out} IS NOT NULL", f"{more} IS NOT NULL", f"{more} > {out}")
    fixed_out = f"if({grew}, {out} + {more}, {out})"
    both = all_of("input_tokens IS NOT NULL", "output_tokens IS NOT NULL")
    embedded = all_of("input_tokens IS NOT NULL", "operation = 'embeddings'")
    total = (
        "multiIf(_raw_total_tokens IS NOT NULL, _raw_total_tokens, "
        f"{both}, input_tokens + output_tokens, {embedded}, input_tokens, NULL)"
    )
    return (
        f"SELECT *, {fixed_in} AS input_tokens, {fixed_out} AS output_tokens, {total} AS total_tokens FROM ({chains})"
    )
