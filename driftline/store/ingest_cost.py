"""`cost_usd` / `cost_source` in store/ingest_sql.py's query: prices as a join on a price table.

The Python path prices a span in collector/normalize.py `Normalizer._cost` with driftline/pricing.py
(genai-prices' bundled snapshot, model names matched by genai-prices' own rules). The engine
reads the same resolution from a table, `PRICE_TABLE` (through a dictionary over it), one row
per (key_provider, key_model), the provider and model exactly as the span names them: `status` 1 (no price), 2 (the five
scaled rates of pricing._direct_cost) or 3 (a price only the Python path computes: date
dependent, tiered, or beyond the direct path).
`EngineRows` (store/ingest.py) fills it from the `Pricer` for each pair a query reports as
`price_unknown` and runs the query again, so a model costs one more query when first seen.

The cost is pricing._direct_cost's: exact integer arithmetic (Int128), then the division by
10^18 correctly rounded as Python's int / int is: the quotient's exact decimal text parsed with
`precise_float_parsing` (60,000 random totals up to 10^37: no difference from Python). A span
the engine cannot price as the Python path would is deferred:
- `price_unknown`: its (provider, model) is not in the table yet,
- `price_shape`: status 3,
- `price_override`: the Pricer has operator overrides.
A span carrying a cost of its own (ingest_spec.SPAN_COST), which wins over the table, is
deferred by store/ingest_sql.py with the spec's other deferred sources.
"""

from __future__ import annotations

from typing import Final

from driftline.store.ingest_bool import all_of, any_of, literal
from driftline.vocabulary import PRICED_OPERATIONS

__all__ = ["PRICE_TABLE", "cost_layer", "price_table_ddl", "reload_sql"]

PRICE_TABLE: Final = "engine_prices"
_RATES: Final = ("r_in", "r_out", "r_read", "r_write", "r_reasoning")


def price_table_ddl(table: str = PRICE_TABLE) -> list[str]:
    """The table, and the dictionary the query reads it through (reloaded after each insert:
    `reload_sql`). A dictionary, not a JOIN: two joins on the query's subquery cost ~3 s of
    planning per query, a dictGet next to nothing."""
    columns = "key_provider String, key_model String, status UInt8, " + ", ".join(
        f"{r} Nullable(Int64)" for r in _RATES
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ({columns}) ENGINE = Memory",
        f"CREATE DICTIONARY IF NOT EXISTS {table}_dict ({columns}) PRIMARY KEY key_provider, key_model "
        f"SOURCE(CLICKHOUSE(TABLE {literal(table)})) LAYOUT(COMPLEX_KEY_HASHED()) LIFETIME(0)",
    ]


def reload_sql(table: str = PRICE_TABLE) -> str:
    return f"SYSTEM RELOAD DICTIONARY {table}_dict"


_COUNTS: Final = (
    ("_n_in", "input_tokens"),
    ("_n_out", "output_tokens"),
    ("_n_read", "cache_read_tokens"),
    ("_n_write", "cache_creation_tokens"),
    ("_n_reasoning", "reasoning_tokens"),
)


def _layers(p: str) -> list[str]:
    """pricing._direct_cost with the rates of lookup `p`, one step per layer (an alias read twice
    in one SELECT is analyzed twice, with all it refers to): the leaf counts, the total (NULL when
    the table gives no rates or the counts are inconsistent, _direct_cost's ValueError), its
    digits, and total / 10^18 as Python's int / int, correctly rounded: the exact decimal text of
    the quotient parsed with precise_float_parsing (ingest_sql.schema_settings)."""
    terms = " + ".join(
        f"toInt128(ifNull(_{p}_{rate}, 0)) * {count}"
        for rate, count in (
            ("r_in", f"_{p}_plain_in"),
            ("r_read", "_n_read"),
            ("r_write", "_n_write"),
            ("r_out", f"_{p}_plain_out"),
            ("r_reasoning", "_n_reasoning"),
        )
    )
    digits = f"toString(abs(_{p}_total))"
    return [
        f"_n_in - if(_{p}_r_read IS NULL, 0, _n_read) - if(_{p}_r_write IS NULL, 0, _n_write) AS _{p}_plain_in, "
        f"_n_out - if(_{p}_r_reasoning IS NULL, 0, _n_reasoning) AS _{p}_plain_out",
        f"if({all_of(f'_{p}_status = 2', f'_{p}_plain_in >= 0', f'_{p}_plain_out >= 0')}, {terms}, NULL) AS _{p}_total",
        f"leftPad({digits}, greatest(length({digits}), 19), '0') AS _{p}_digits",
        f"if(_{p}_total IS NULL, NULL, toFloat64OrNull(concat(if(_{p}_total < 0, '-', ''), "
        f"substring(_{p}_digits, 1, length(_{p}_digits) - 18), '.', "
        f"substring(_{p}_digits, length(_{p}_digits) - 17)))) AS _cost_{p}",
    ]


def cost_layer(below: str, *, priced: bool, overrides: bool, table: str = PRICE_TABLE) -> str:
    """`below` with cost_usd, cost_source and the price deferrals added to `deferred`. Without a
    pricer (`priced` False) no span is priced, as the Python path without one."""
    if not priced:
        return f"SELECT *, CAST(NULL, 'Nullable(Float64)') AS cost_usd, '' AS cost_source FROM ({below})"
    ops = "[" + ", ".join(literal(o) for o in sorted(PRICED_OPERATIONS)) + "]"
    attrs = "(" + ", ".join(literal(c) for c in ("status", *_RATES)) + ")"
    dictionary = literal(table + "_dict")
    counts = ", ".join(f"toInt128(ifNull({col}, 0)) AS {name}" for name, col in _COUNTS)
    sql = (
        f"SELECT *, if(response_model != '', response_model, request_model) AS _model, {counts}, "
        f"{any_of('input_tokens IS NOT NULL', 'output_tokens IS NOT NULL')} AS _has_counts FROM ({below})"
    )
    sql = (
        f"SELECT *, {all_of('_has_counts', f'has({ops}, operation)', 'notEmpty(_model)')} AS _priced, "
        f"dictGet({dictionary}, {attrs}, (provider, _model)) AS _p1, "
        f"dictGet({dictionary}, {attrs}, (provider, request_model)) AS _p2 FROM ({sql})"
    )
    fields = ", ".join(f"_{p}.{i + 1} AS _{p}_{c}" for p in ("p1", "p2") for i, c in enumerate(("status", *_RATES)))
    sql = f"SELECT * EXCEPT (_p1, _p2), {fields} FROM ({sql})"
    for one, two in zip(_layers("p1"), _layers("p2"), strict=True):
        sql = f"SELECT *, {one}, {two} FROM ({sql})"
    second = all_of("_priced", "_cost_p1 IS NULL", "notEmpty(request_model)", "request_model != _model")
    sql = (
        f"SELECT *, {second} AS _second, if(_priced, coalesce(_cost_p1, if(_second, _cost_p2, NULL)), NULL) "
        f"AS cost_usd FROM ({sql})"
    )
    override = "1" if overrides else "0"

    def status(n: int) -> str:
        return all_of("_priced", any_of(f"_p1_status = {n}", all_of("_second", f"_p2_status = {n}")))

    reasons = (
        f"[if({all_of('_priced', override)}, 'price_override', ''), "
        f"if({status(0)}, 'price_unknown', ''), if({status(3)}, 'price_shape', '')]"
    )
    helpers = [
        "deferred",
        "_model",
        "_has_counts",
        "_priced",
        "_second",
        *(name for name, _ in _COUNTS),
        *(f"_{p}_{c}" for p in ("p1", "p2") for c in ("status", *_RATES, "plain_in", "plain_out", "total", "digits")),
        "_cost_p1",
        "_cost_p2",
    ]
    return (
        f"SELECT * EXCEPT ({', '.join(helpers)}), if(cost_usd IS NULL, '', 'price_table') AS cost_source, "
        f"arrayFilter(x -> x != '', arrayConcat(deferred, {reasons})) AS deferred FROM ({sql})"
    )
