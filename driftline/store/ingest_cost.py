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

from driftline.store.ingest_bool import all_of, any_of, let, literal
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


# The counts the cost reads, in the order of _cost_of's ni, no, nr, nw, nz.
_COUNTS: Final = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens")


def _cost_of(p: str) -> str:
    """pricing._direct_cost with the rates of lookup `p` (status, r_in, r_out, r_read, r_write,
    r_reasoning) over the counts ni, no, nr, nw, nz: the plain input and output counts, the total
    (NULL when the table gives no rates or the counts are inconsistent, _direct_cost's
    ValueError), its digits, and total / 10^18 as Python's int / int, correctly rounded: the
    exact decimal text of the quotient parsed with precise_float_parsing (ingest_sql.schema_settings)."""
    terms = " + ".join(
        f"toInt128(ifNull({p}.{i}, 0)) * {n}" for i, n in ((2, "pin"), (4, "nr"), (5, "nw"), (3, "pout"), (6, "nz"))
    )
    digits = "toString(abs(tot))"
    value = (
        "if(tot IS NULL, NULL, toFloat64OrNull(concat(if(tot < 0, '-', ''), "
        "substring(dg, 1, length(dg) - 18), '.', substring(dg, length(dg) - 17))))"
    )
    quotient = let(["dg"], [f"leftPad({digits}, greatest(length({digits}), 19), '0')"], value)
    total = let(["tot"], [f"if({all_of(f'{p}.1 = 2', 'pin >= 0', 'pout >= 0')}, {terms}, NULL)"], quotient)
    plain = [f"ni - if({p}.4 IS NULL, 0, nr) - if({p}.5 IS NULL, 0, nw)", f"no - if({p}.6 IS NULL, 0, nz)"]
    return let(["pin", "pout"], plain, total)


def cost_layer(below: str, *, priced: bool, overrides: bool, table: str = PRICE_TABLE) -> str:
    """`below` with cost_usd, cost_source and the price deferrals added to `deferred`. Without a
    pricer (`priced` False) no span is priced, as the Python path without one.

    Priced, it is two layers: one computing (cost, deferral reasons) as a single expression whose
    intermediate values are bound by `let` (store/ingest_bool.py), and one spreading it into the columns."""
    if not priced:
        return f"SELECT *, CAST(NULL, 'Nullable(Float64)') AS cost_usd, '' AS cost_source FROM ({below})"
    ops = "[" + ", ".join(literal(o) for o in sorted(PRICED_OPERATIONS)) + "]"
    attrs = "(" + ", ".join(literal(c) for c in ("status", *_RATES)) + ")"
    dictionary = literal(table + "_dict")
    override = "1" if overrides else "0"

    def status(n: int) -> str:
        return all_of("priced", any_of(f"p1.1 = {n}", all_of("second", f"p2.1 = {n}")))

    reasons = (
        f"[if({all_of('priced', override)}, 'price_override', ''), "
        f"if({status(0)}, 'price_unknown', ''), if({status(3)}, 'price_shape', '')]"
    )
    # m: the model priced first (the response model, else the request model); the request model
    # (rm) is tried second when the first gives no cost and differs from it. The row's columns are
    # read once, as the outermost lambda's arguments: read inside the nested lambdas' bodies they
    # cost the analyzer ~40 ms more (over the query's subqueries; 6 ms over a trivial SELECT). The
    # indexed messages' lambdas that read a column in their body showed no such cost when bound
    # the same way (store/ingest_messages.py), so this is not a rule for every lambda.
    out = f"(if(priced, coalesce(c1, if(second, c2, NULL)), NULL), {reasons})"
    sql = let(["second"], [all_of("priced", "c1 IS NULL", "notEmpty(rm)", "rm != m")], out)
    sql = let(["c1", "c2"], [_cost_of("p1"), _cost_of("p2")], sql)
    has_counts = any_of("input_tokens IS NOT NULL", "output_tokens IS NOT NULL")
    sql = let(
        ["priced", "p1", "p2"],
        [
            all_of("hc", f"has({ops}, op)", "notEmpty(m)"),
            f"dictGet({dictionary}, {attrs}, (pv, m))",
            f"dictGet({dictionary}, {attrs}, (pv, rm))",
        ],
        sql,
    )
    counts = [f"toInt128(ifNull({col}, 0))" for col in _COUNTS]
    sql = let(
        ["m", "rm", "pv", "op", "hc", "ni", "no", "nr", "nw", "nz"],
        [
            "if(response_model != '', response_model, request_model)",
            "request_model",
            "provider",
            "operation",
            has_counts,
            *counts,
        ],
        sql,
    )
    return (
        "SELECT * EXCEPT (deferred, _cost), _cost.1 AS cost_usd, "
        "if(_cost.1 IS NULL, '', 'price_table') AS cost_source, "
        "arrayFilter(x -> x != '', arrayConcat(deferred, _cost.2)) AS deferred "
        f"FROM (SELECT *, {sql} AS _cost FROM ({below}))"
    )
