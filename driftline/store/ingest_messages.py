"""The message and text columns of store/ingest_sql.py's query, rendered from ingest_spec.SLOTS.

Two parts of the query:
- `message_layers(below)`: per message source of each slot (input / output), its messages as an
  array of tuples `(status, plain, role, content, finish_reason)` (status 1: a message, 0: no
  message, 2: a shape the engine does not read, which defers the span), then the slot's chosen
  list (the first source giving a message, as the conventions fill `_in` / `_out`), the
  attribute it came from when the list holds all of it (derive.py leaves that attribute out of
  `attributes`), the slot's raw text, and the deferral reasons of the slot's sources;
- `text_columns(...)`: the stored columns derived from them as collector/conventions/derive.py
  writes them: `input_messages` / `output_messages` (the JSON orjson writes), `input_text_fallback`
  / `output_text_fallback`, `system_prompt`, `tool_calls` and `attributes`.

How it is written: a JSON message list of the common shapes (`_fast`: role and content, or role
and one text part, with a finish reason) is read in one pass with a typed `JSONExtract`, and
accepted when written again it equals the list as the engine writes it. Any other list is read
with one `JSONExtractArrayRaw` and one
`JSONExtractKeysAndValuesRaw` per message (its members' raw JSON, looked up by name with
`arrayLast`, so a duplicate key reads as Python's last one; a message with duplicate keys is
deferred all the same), never with a JSON function per member over the whole list. Indexed
flattened attributes are read with array functions over the attribute keys and values (filter
on the prefix, index and field by `splitByChar`, align the roles and contents by sorting on the
index), not a regex or a map lookup per key: the issue's probe measured 30x between the two.
No lambda reads the attribute map.
"""

from __future__ import annotations

from typing import Final

from driftline.store.ingest_bool import all_of, any_of, let, literal
from driftline.store.ingest_carried import reads
from driftline.store.ingest_keys import has_any, has_key
from driftline.store.ingest_spec import (
    SLOTS,
    SYSTEM_INSTRUCTIONS,
    Indexed,
    MessageList,
    Other,
    RawText,
    SlotSource,
)

__all__ = ["MESSAGE_COLUMNS", "message_layers", "passed_columns", "text_columns"]

# The columns `text_columns` writes, as the Python path names them.
MESSAGE_COLUMNS: Final = (
    "input_messages",
    "output_messages",
    "input_text_fallback",
    "output_text_fallback",
    "system_prompt",
    "tool_calls",
    "attributes",
)
# orjson and the engine's JSON writer escape these differently (store/ingest_sql.py): a message
# holding one is deferred.
_JSON_DIFFERS: Final = (
    "["
    + ", ".join(f"'\\x{c:02X}'" for c in (0x0B, 0x0E, 0x0F, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F))
    + ", '\u2028', '\u2029']"
)
_MSG_TYPE: Final = "Array(Tuple(UInt8, UInt8, String, String, Nullable(String)))"


def _fam(family: str) -> str:
    return f"fam_{family.lower()}"


def _member(kv: str, name: str) -> str:
    """The raw JSON of member `name` of a parsed object (its last occurrence), '' when absent."""
    return f"arrayLast(p -> p.1 = {literal(name)}, {kv}).2"


def _item_steps(message: str) -> str:
    """conventions/messages.py `messages` over one item `m`: `message` with each JSON document
    parsed once, the item's members (`kv`), the members read (`f`: role, parts, content,
    finish_reason raw, member count, duplicate keys, tool call keys), the parts list (`pa`) and
    its one part's members (`pkv`, `pf`) bound by `let` (store/ingest_bool.py), in one
    expression: as five layers of their own they cost ~10-20 ms more planning per query."""
    f = (
        f"({_member('kv', 'role')}, {_member('kv', 'parts')}, {_member('kv', 'content')}, "
        f"{_member('kv', 'finish_reason')}, length(kv), length(arrayDistinct(arrayMap(p -> p.1, kv))) != length(kv), "
        "arrayExists(p -> p.1 IN ('tool_calls', 'tool_call_id'), kv))"
    )
    part = "(length(pa) = 1 AND startsWith(pa[1], '{'))"
    pf = (
        f"({part}, {_member('pkv', 'type')}, {_member('pkv', 'content')}, length(pkv), "
        "length(arrayDistinct(arrayMap(p -> p.1, pkv))) != length(pkv))"
    )
    body = let(["pf"], [pf], message)
    body = let(["pkv"], [f"if({part}, JSONExtractKeysAndValuesRaw(pa[1]), [])"], body)
    body = let(["pa"], ["if(startsWith(f.2, '['), JSONExtractArrayRaw(f.2), [])"], body)
    body = let(["f"], [f], body)
    return let(["kv"], ["JSONExtractKeysAndValuesRaw(m)"], body)


# A message list in one pass: each message's role, content, single part and finish reason as text
# (JSONExtract gives a number, list or object as its JSON text, and the first of duplicate keys).
_FAST_TYPE: Final = (
    "Array(Tuple(role Nullable(String), content Nullable(String), "
    "parts Array(Tuple(type Nullable(String), content Nullable(String))), finish_reason Nullable(String)))"
)


def _fast(n: str) -> str:
    """Whether list `{n}_v` holds only messages of the shapes `{"role": R, "content": C}` and
    `{"role": R, "parts": [{"type": "text", "content": C}]}`, each with an optional
    `"finish_reason": F`, in that key order, R, C and F strings and R not empty: the list written
    again from `{n}_ft` (its one-pass read) equals `{n}_doc`, the list as the engine writes it
    (JSONExtractRaw: same escapes as toJSONString, no spaces). Any other key, a duplicate key,
    another key order, a value that is not a string, another part or part type makes them differ
    (and leaves the list to `_item`, which reads every shape the Python path's fast path
    reads, or defers it)."""
    body = (
        "if(t.2 IS NOT NULL, concat(',\"content\":', toJSONString(assumeNotNull(t.2))), "
        'if(length(t.3) = 1, concat(\',"parts":[{"type":"text","content":\', '
        "toJSONString(ifNull(t.3[1].2, '')), '}]'), '\\x01'))"
    )
    finish = "if(t.4 IS NULL, '', concat(',\"finish_reason\":', toJSONString(assumeNotNull(t.4))))"
    item = f"concat('{{\"role\":', toJSONString(ifNull(t.1, '')), {body}, {finish}, '}}')"
    again = f"concat('[', arrayStringConcat(arrayMap(t -> {item}, {n}_ft), ','), ']')"
    roles = f"arrayAll(t -> ifNull(t.1, '') != '', {n}_ft)"
    return all_of(f"startsWith({n}_v, '[')", roles, f"{n}_doc = {again}")


def _fast_messages(n: str) -> str:
    """The messages of a list `_fast` accepts, as `_item` reads them: each a plain message."""
    return (
        "arrayMap(t -> tuple(toUInt8(1), toUInt8(1), assumeNotNull(t.1), "
        f"if(t.2 IS NOT NULL, assumeNotNull(t.2), ifNull(t.3[1].2, '')), t.4), {n}_ft)"
    )


def _item(n: str, role: str) -> str:
    """One message per item (`m`, its members `f`, its part `pf`): a string is a message of the
    default role; an object of the fast path's shapes (`_text_only`: a string `content` without
    tool calls, or one text part) is read; any other object defers (status 2)."""
    text_case = "(f.2 IN ('', 'null') AND startsWith(f.3, '\"') AND NOT f.7)"
    part_case = "(f.2 != '' AND pf.1 AND pf.2 = '\"text\"' AND startsWith(pf.3, '\"'))"
    is_obj = "startsWith(m, '{')"
    is_str = "startsWith(m, '\"')"
    role_ok = "(startsWith(f.1, '\"') AND f.1 != '\"\"')"
    status = f"multiIf({is_str}, 1, NOT {is_obj}, 0, f.6 OR pf.5 OR NOT ({text_case} OR {part_case}), 2, 1)"
    # messages.plain: exactly {role, content: text} or {role, parts: [{type: text, content}]}, with
    # an optional text finish_reason
    plain = (
        f"({is_obj} AND {role_ok} AND f.5 = 2 + (f.4 != '') AND (f.4 = '' OR startsWith(f.4, '\"')) "
        f"AND (startsWith(f.3, '\"') OR (f.3 = '' AND {part_case} AND pf.4 = 2)))"
    )
    text = f"JSONExtractString(multiIf({is_str}, m, {text_case}, f.3, pf.3))"
    role_v = f"if({is_str} OR NOT {role_ok}, {literal(role)}, JSONExtractString(f.1))"
    reason = f"if({is_obj} AND startsWith(f.4, '\"'), JSONExtractString(f.4), NULL)"
    message = f"tuple(toUInt8({status}), toUInt8({plain}), {role_v}, {text}, {reason})"
    return f"arrayMap(m -> {_item_steps(message)}, {n}_items)"


def _name(slot: str, i: int) -> str:
    return f"_{slot}{i}"


def _is_json(v: str) -> str:
    return f"((startsWith({v}, '[') OR startsWith({v}, '{{')) AND isValidJSON({v}))"


def message_layers(below: str, carried: frozenset[str] | None = None) -> str:
    """Layers over `below` (which has a, a_keys, a_kid, a_vals, event_names and the fam_* flags),
    of the sources a batch carrying `carried` can read (store/ingest_carried.py)."""
    l1: list[str] = []
    l2: list[str] = []
    l3: list[str] = []
    mid: list[list[str]] = [[] for _ in range(4)]  # layers between l2 and l3 (items, indexed messages)
    for slot, sources in SLOTS.items():
        for i, src in enumerate(sources):
            n = _name(slot, i)
            if not reads(src, carried):
                continue
            if isinstance(src, MessageList):
                v = f"if({_fam(src.family)} AND {has_key(src.key)}, a[{literal(src.key)}], '')"
                l1.append(f"{v} AS {n}_v")
                if src.raw:
                    # a JSON list / object here is left to the Python path (older drafts, rare)
                    l2.append(f"{_is_json(f'{n}_v')} AS {n}_json")
                    l3.append(f"CAST([], {literal(_MSG_TYPE)}) AS {n}_t")
                    continue
                # the common shapes read in one pass (_fast_layers); `_item` reads the
                # others, and sees '' for a list read in one pass
                l2 += [f"JSONExtract({n}_v, {literal(_FAST_TYPE)}) AS {n}_ft", f"JSONExtractRaw({n}_v) AS {n}_doc"]
                mid[0].append(f"{_fast(n)} AS {n}_fast")
                slow = f"if({n}_fast, '', {n}_v)"
                # One message object: checked and wrapped as text emptied unless it starts with '{'
                # (every branch is evaluated on every row, so a list is not parsed twice).
                obj = f"if(startsWith({slow}, '{{'), {slow}, '')"
                items = (
                    f"multiIf(startsWith({slow}, '['), JSONExtractArrayRaw({slow}), isValidJSON({obj}), [{obj}], [])"
                )
                mid[1].append(f"{items} AS {n}_items")
                l3.append(f"if({n}_fast, {_fast_messages(n)}, {_item(n, src.role)}) AS {n}_t")
            elif isinstance(src, Indexed):
                pre = literal(src.prefix)
                # (index, field, value) per key under the prefix; index -1 unless canonical decimal
                entries = (
                    f"if({_fam(src.family)}, arrayMap((k, v) -> arrayMap(s -> ("
                    "if(toString(toUInt32OrZero(s[1])) = s[1], toInt64(toUInt32OrZero(s[1])), -1), "
                    "arrayStringConcat(arraySlice(s, 2), '.'), v), "
                    f"[splitByChar('.', substring(k, {len(src.prefix) + 1}))])[1], "
                    f"arrayFilter(k -> startsWith(k, {pre}), a_keys), "
                    f"arrayFilter((v, k) -> startsWith(k, {pre}), a_vals, a_keys)), [])"
                )
                l1.append(f"arrayFilter(e -> e.1 >= 0, {entries}) AS {n}_e")
                fields = _arrliteral((src.role, src.content, *src.deferred))
                ix = f"arraySort(arrayDistinct(arrayMap(e -> e.1, arrayFilter(e -> has({fields}, e.2), {n}_e))))"
                l2.append(f"{ix} AS {n}_ix")
                for k, layer in enumerate(_indexed_layers(n, src)):
                    mid[k] += layer
                l3.append(f"{_indexed_messages(n, src)} AS {n}_t")
            else:
                continue
    sql = below
    for layer in (l1, l2, *mid, l3):
        if layer:
            sql = f"SELECT *, {', '.join(layer)} FROM ({sql})"
    kept = [
        f"arrayFilter(t -> t.1 = 1, {_name(slot, i)}_t) AS {_name(slot, i)}_k"
        for slot, sources in SLOTS.items()
        for i, src in enumerate(sources)
        if isinstance(src, MessageList | Indexed) and reads(src, carried)
    ]
    if kept:
        sql = f"SELECT *, {', '.join(kept)} FROM ({sql})"
    return f"SELECT *, {_slot_columns(carried)} FROM ({sql})"


def _arrliteral(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(literal(i) for i in items) + "]"


def _indexed_layers(n: str, src: Indexed) -> list[list[str]]:
    """Messages of indices 0..L-1, L the first index holding no field the convention reads, in
    the item layers: L, the role and content entries below it, the indices holding each, then
    (index, value, present) for every index below L, sorted by index (roles and contents aligned)."""
    first_gap = f"arrayFirstIndex((x, p) -> x != p - 1, {n}_ix, arrayEnumerate({n}_ix))"
    json_like = "(startsWith(e.3, '[') OR startsWith(e.3, '{'))"
    shape = f"arrayExists(e -> has({_arrliteral(src.deferred)}, e.2), {n}_e)"
    if src.json_content:
        shape += f" OR arrayExists(e -> e.2 = {literal(src.content)} AND {json_like}, {n}_e)"

    def aligned(field: str) -> str:
        return (
            f"arraySort(e -> e.1, arrayConcat(arrayMap(e -> (e.1, e.3, 1), {n}_{field}h), "
            f"arrayMap(i -> (toInt64(i), '', 0), arrayFilter(i -> NOT has({n}_{field}i, i), range({n}_L)))))"
        )

    return [
        [f"toUInt64(if({first_gap} = 0, length({n}_ix), {first_gap} - 1)) AS {n}_L", f"{shape} AS {n}_bad"],
        [
            f"arrayFilter(e -> e.2 = {literal(src.role)} AND e.1 < {n}_L, {n}_e) AS {n}_rh",
            f"arrayFilter(e -> e.2 = {literal(src.content)} AND e.1 < {n}_L, {n}_e) AS {n}_ch",
        ],
        [f"arrayMap(e -> e.1, {n}_rh) AS {n}_ri", f"arrayMap(e -> e.1, {n}_ch) AS {n}_ci"],
        [f"{aligned('r')} AS {n}_r", f"{aligned('c')} AS {n}_c"],
    ]


def _indexed_messages(n: str, src: Indexed) -> str:
    keep_role = "1" if src.role_only_kept else "0"
    status = f"if({n}_bad, 2, if(c.3 = 1 OR {keep_role}, 1, 0))"
    return (
        f"arrayMap((r, c) -> tuple(toUInt8({status}), toUInt8(0), if(r.3 = 1 AND r.2 != '', r.2, "
        f"{literal(src.default_role)}), c.2, CAST(NULL, 'Nullable(String)')), {n}_r, {n}_c)"
    )


def _kept(n: str) -> str:
    return f"{n}_k"


def _multi_if(pairs: list[str], default: str) -> str:
    return f"multiIf({', '.join(pairs)}, {default})" if pairs else default


def _strings(items: list[str]) -> str:
    return f"[{', '.join(items)}]" if items else "CAST([], 'Array(String)')"


def _slot_columns(carried: frozenset[str] | None) -> str:
    out: list[str] = []
    for slot, sources in SLOTS.items():
        chosen: list[str] = []
        src_pos: list[str] = []
        key: list[str] = []
        raw: list[str] = []
        shape: list[str] = []
        for i, src in enumerate(sources):
            n = _name(slot, i)
            if not reads(src, carried):
                continue  # it gives no message, raw text or reason (store/ingest_carried.py)
            if isinstance(src, MessageList | Indexed):
                kept = _kept(n)
                chosen += [f"notEmpty({kept})", kept]
                src_pos += [f"notEmpty({kept})", str(i + 1)]
                plain = (
                    f"(startsWith({n}_v, '[') AND notEmpty({n}_t) AND arrayAll(t -> t.2 = 1, {n}_t))"
                    if isinstance(src, MessageList)
                    else "0"
                )
                key += [f"notEmpty({kept})", f"if({plain}, {literal(getattr(src, 'key', ''))}, '')"]
                label = getattr(src, "key", "") or getattr(src, "prefix", "")
                shape.append(f"if(arrayExists(t -> t.1 = 2, {n}_t), {literal('message_shape:' + label)}, '')")
            if isinstance(src, MessageList) and src.raw:
                earlier = [
                    f"empty({_kept(_name(slot, j))})"
                    for j in range(i)
                    if isinstance(sources[j], MessageList | Indexed) and reads(sources[j], carried)
                ]
                cond = " AND ".join([f"{n}_v != ''", f"NOT {n}_json", *earlier])
                raw.append(f"if({cond}, {n}_v, '')")
                json_first = " AND ".join([f"{n}_json", *earlier])
                shape.append(f"if({json_first}, {literal('source:' + src.key + ' (JSON messages)')}, '')")
            elif isinstance(src, RawText):
                raw.append(f"if({_fam(src.family)}, a[{literal(src.key)}], '')")
        out.append(f"{_multi_if(chosen, f'CAST([], {literal(_MSG_TYPE)})')} AS _{slot}_msgs")
        out.append(f"{_multi_if(src_pos, '0')} AS _{slot}_src")
        out.append(f"{_multi_if(key, literal(''))} AS _{slot}_key")
        raw_sql = "''"
        for r in reversed(raw):
            raw_sql = f"if({r} != '', {r}, {raw_sql})"
        out.append(f"{raw_sql} AS _{slot}_raw")
        out.append(f"{_strings(shape)} AS _{slot}_shape")
        out.append(f"{_strings(_other_reasons(slot, sources, carried))} AS _{slot}_other")
    sysi = SYSTEM_INSTRUCTIONS
    v = f"a[{literal(sysi.key)}]"
    out.append(f"if({_fam(sysi.family)}, {v}, '') AS _sys")
    out.append(
        f"if({_fam(sysi.family)} AND (startsWith({v}, '[') OR startsWith({v}, '{{')), "
        f"{literal('source:' + sysi.key)}, '') AS _sys_deferred"
    )
    return ", ".join(out)


def _other_reasons(slot: str, sources: tuple[SlotSource, ...], carried: frozenset[str] | None) -> list[str]:
    """(position, reason expression) of each deferred source; a `no_text` one is written in
    `text_columns`, where the slot's text is known, as `if(_<slot>_src in 1..pos-1 AND text, '', reason)`."""
    out: list[str] = []
    for i, src in enumerate(sources):
        if not isinstance(src, Other) or not reads(src, carried):
            continue
        if src.event:
            out.append(f"if(has(event_names, {literal(src.event)}), {literal('event:' + src.event)}, '')")
            continue
        present = f"{_fam(src.family)} AND {has_any(src.keys)}"
        reason = literal("source:" + ",".join(src.keys))
        if src.when == "no_text":
            # kept as the position, resolved in text_columns
            out.append(f"if({present}, {literal(f'{i + 1}|')} || {reason}, '')")
        else:
            out.append(f"if({present}, {reason}, '')")
    return out


def passed_columns() -> tuple[str, ...]:
    """What the layers above `message_layers` must pass on to `text_columns`."""
    cols = []
    for slot in SLOTS:
        cols += [f"_{slot}_msgs", f"_{slot}_src", f"_{slot}_key", f"_{slot}_raw", f"_{slot}_shape", f"_{slot}_other"]
    return (*cols, "_sys", "_sys_deferred")


def _json(msgs: str) -> str:
    one = (
        "concat('{\"role\":', toJSONString(t.3), ',\"content\":', toJSONString(t.4), "
        "if(t.5 IS NULL, '', concat(',\"finish_reason\":', toJSONString(assumeNotNull(t.5)))), '}')"
    )
    return f"if(empty({msgs}), '', concat('[', arrayStringConcat(arrayMap(t -> {one}, {msgs}), ','), ']'))"


def text_columns(below: str, limit: int) -> str:
    """The final layer: every column of MESSAGE_COLUMNS and `deferred` (`_deferred0` below, plus
    the message reasons)."""
    embed = all_of("operation = 'embeddings'", "notEmpty(_in_msgs)")
    said = all_of("t.3 = 'user'", "notEmpty(t.4)")
    user = f"arrayLast(t -> {said}, _in_msgs).4"
    joined = "arrayStringConcat(arrayFilter(c -> c != '', arrayMap(t -> t.4, _in_msgs)), '\\n')"
    in_msg_text = f"if({embed}, {joined}, {user})"
    answered = all_of("t.3 IN ('assistant', 'model')", "notEmpty(t.4)")
    out_msg_text = f"arrayLast(t -> {answered}, _out_msgs).4"
    instructed = all_of("t.3 IN ('system', 'developer')", "notEmpty(t.4)")
    system = f"arrayStringConcat(arrayMap(t -> t.4, arrayFilter(t -> {instructed}, _in_msgs)), '\\n')"
    # a layer per step: an alias read twice in one SELECT is analyzed twice
    texts = (
        f"SELECT *, {in_msg_text} AS _in_mtext, {out_msg_text} AS _out_mtext, "
        f"if(_sys != '', _sys, {system}) AS system_prompt, "
        f"{_json('_in_msgs')} AS input_messages, {_json('_out_msgs')} AS output_messages "
        f"FROM ({below})"
    )
    texts = (
        "SELECT *, if(_in_mtext != '', _in_mtext, _in_raw) AS _input_text, "
        f"if(_out_mtext != '', _out_mtext, _out_raw) AS _output_text FROM ({texts})"
    )

    def no_text(slot: str) -> str:
        # a `no_text` source at position p defers unless a source before p gave the slot's text
        gave = all_of(
            f"_{slot}_src > 0", f"_{slot}_src < toUInt32OrZero(splitByChar('|', x)[1])", f"notEmpty(_{slot}_mtext)"
        )
        # the reasons given ('' for a source not on the span: most of them) are few, the lambda's
        # splits and captures cost per element
        given = f"arrayFilter(x -> x != '', _{slot}_other)"
        return f"arrayMap(x -> if(position(x, '|') > 0, if({gave}, '', splitByChar('|', x)[2]), x), {given})"

    # each text searched where it is (a concat of them, or of the two lists, would copy every text)
    differs = " OR ".join(f"multiSearchAny({x}, {_JSON_DIFFERS})" for x in ("t.3", "t.4", "ifNull(t.5, '')"))
    escapes = any_of(f"arrayExists(t -> {differs}, _in_msgs)", f"arrayExists(t -> {differs}, _out_msgs)")
    tool_empty = all_of("operation = 'execute_tool'", any_of("empty(_input_text)", "empty(_output_text)"))
    reasons = (
        f"arrayConcat(_in_shape, _out_shape, {no_text('in')}, {no_text('out')}, [_sys_deferred, "
        f"if({escapes}, 'json_escape', ''), "
        f"if({any_of(f'lengthUTF8(input_messages) > {limit}', f'lengthUTF8(output_messages) > {limit}')}, "
        "'long_messages', ''), "
        f"if({any_of(*(f'length({t}) > {limit}' for t in ('_input_text', '_output_text', 'system_prompt')))}, "
        "'long_text', ''), "
        f"if({tool_empty}, 'tool_text', '')])"
    )
    # derive.py leaves out the attribute a slot's messages came from whole (_<slot>_key, '' if none)
    kept_attr = "if(k = '', 1, if(k = _in_key, 0, k != _out_key))"
    helpers = (*passed_columns(), "_deferred0", "_in_mtext", "_out_mtext", "_input_text", "_output_text")
    return (
        f"SELECT * EXCEPT ({', '.join(helpers)}), "
        f"arrayFilter(x -> x != '', arrayConcat(_deferred0, {reasons})) AS deferred, "
        f"if({all_of('notEmpty(_in_mtext)', f'NOT {embed}')}, '', _input_text) "
        "AS input_text_fallback, "
        "if(_out_mtext != '', '', _output_text) AS output_text_fallback, "
        "'' AS tool_calls, "
        f"mapFilter((k, v) -> {kept_attr}, attributes_all) AS attributes "
        f"FROM ({texts})"
    )
