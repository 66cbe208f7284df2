"""AND / OR for the engine's ingest query (store/ingest_sql.py), written as nested `if`s; the
string literal every layer of it writes (`literal`); and values bound to names (`let`).

The query is a stack of layers, each a subquery of the one above. An AND / OR in its top layers
costs planning time that grows with the layers below it: with the cost's (store/ingest_cost.py)
and the text columns' (store/ingest_messages.py) written as `if`s, a one-request query plans in
~500 ms of CPU instead of ~1,000 ms (the cost layer ~400 ms of that, the text columns ~100 ms),
and computes the same rows. The likely reason is the analyzer's logical-expression pass comparing
the operands by tree hash (a column read from a subquery hashes that subquery); the settings of
its chain rewrites do not change the time, and to that pass `if` is not a logical operator. The
token accounting's ANDs written so plan ~15 ms faster (bench/engine_planning.py, once the cost
layers above them were fewer); the spec chains' showed no gain (0-6 ms) and stay as written.

`if(a, b, 0)` differs from `a AND b`, and `if(a, 1, b)` from `a OR b`, only where one is NULL and
the other 0. Each use here has operands that are never NULL or reads the result only as a
condition (`if`, a lambda's filter), where the two are alike.
"""

from __future__ import annotations

__all__ = ["all_of", "any_of", "let", "literal"]


def all_of(*conds: str) -> str:
    """`c1 AND c2 AND ...` as nested `if`s."""
    out = conds[-1]
    for c in reversed(conds[:-1]):
        out = f"if({c}, {out}, 0)"
    return out


def any_of(*conds: str) -> str:
    """`c1 OR c2 OR ...` as nested `if`s."""
    out = conds[-1]
    for c in reversed(conds[:-1]):
        out = f"if({c}, 1, {out})"
    return out


def literal(text: str) -> str:
    """`text` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def let(names: list[str], values: list[str], body: str) -> str:
    """`body` with each of `names` bound to its value, computed once: a lambda over one-item
    arrays (the engine has no let-binding). Each value is analyzed once, where an alias read twice
    in one SELECT is analyzed twice; and it needs no layer of its own: a subquery layer carrying
    every column of the row costs ~5-13 ms of planning (bench/engine_planning.py)."""
    return f"arrayMap(({', '.join(names)}) -> {body}, {', '.join(f'[{v}]' for v in values)})[1]"
