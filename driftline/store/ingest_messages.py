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

How it is written: a JSON message list is read with one `JSONExtractArrayRaw` and one
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

from driftline.store.ingest_spec import (
    SLOTS,
    SYSTEM_INSTRUCTIONS,
    Indexed,
    MessageList,
    Other,
    RawText,
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


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fam(family: str) -> str:
    return f"fam_{family.lower()}"


def _member(kv: str, name: str) -> str:
    """The raw JSON of member `name` of a parsed object (its last occurrence), '' when absent."""
    return f"arrayLast(p -> p.1 = {_lit(name)}, {kv}).2"


def _item(m: str, kv: str, role: str) -> str:
    """conventions/messages.py `messages` on one item `m` (raw JSON) with members `kv`: a string is a
    message of the default role; an object of the fast path's shapes (`_text_only`: a string
    `content` without tool calls, or one text part) is read; any other object defers (status 2)."""
    keys = f"arrayMap(p -> p.1, {kv})"
    role_raw = _member(kv, "role")
    role_ok = f"(startsWith({role_raw}, '\"') AND {role_raw} != '\"\"')"
    parts = _member(kv, "parts")
    content = _member(kv, "content")
    fr = _member(kv, "finish_reason")
    parr = f"JSONExtractArrayRaw({parts})"
    pkv = f"JSONExtractKeysAndValuesRaw({parr}[1])"
    ptype = _member(pkv, "type")
    pcontent = _member(pkv, "content")
    text_case = (
        f"({parts} IN ('', 'null') AND startsWith({content}, '\"') "
        f"AND NOT has({keys}, 'tool_calls') AND NOT has({keys}, 'tool_call_id'))"
    )
    part_case = (
        f"(startsWith({parts}, '[') AND length({parr}) = 1 AND startsWith({parr}[1], '{{') "
        f"AND {ptype} = '\"text\"' AND startsWith({pcontent}, '\"'))"
    )
    dups = (
        f"(length(arrayDistinct({keys})) != length({kv}) "
        f"OR length(arrayDistinct(arrayMap(p -> p.1, {pkv}))) != length({pkv}))"
    )
    is_obj = f"startsWith({m}, '{{')"
    is_str = f"startsWith({m}, '\"')"
    status = f"multiIf({is_str}, 1, NOT {is_obj}, 0, {dups} OR NOT ({text_case} OR {part_case}), 2, 1)"
    # messages.plain: exactly {role, content: text} or {role, parts: [{type: text, content}]}, with
    # an optional text finish_reason
    plain = (
        f"({is_obj} AND {role_ok} AND length({kv}) = 2 + ({fr} != '') AND ({fr} = '' OR startsWith({fr}, '\"')) "
        f"AND (startsWith({content}, '\"') OR ({content} = '' AND {part_case} AND length({pkv}) = 2)))"
    )
    text = f"JSONExtractString(multiIf({is_str}, {m}, {text_case}, {content}, {pcontent}))"
    role_v = f"if({is_str} OR NOT {role_ok}, {_lit(role)}, JSONExtractString({role_raw}))"
    reason = f"if({is_obj} AND startsWith({fr}, '\"'), JSONExtractString({fr}), NULL)"
    return f"tuple(toUInt8({status}), toUInt8({plain}), {role_v}, {text}, {reason})"


def _name(slot: str, i: int) -> str:
    return f"_{slot}{i}"


def _is_json(v: str) -> str:
    return f"((startsWith({v}, '[') OR startsWith({v}, '{{')) AND isValidJSON({v}))"


def message_layers(below: str) -> str:
    """Layers over `below` (which has a, a_keys, a_vals, event_names and the fam_* flags)."""
    l1: list[str] = []
    l2: list[str] = []
    l3: list[str] = []
    for slot, sources in SLOTS.items():
        for i, src in enumerate(sources):
            n = _name(slot, i)
            if isinstance(src, MessageList):
                v = f"if({_fam(src.family)} AND has(a_keys, {_lit(src.key)}), a[{_lit(src.key)}], '')"
                l1.append(f"{v} AS {n}_v")
                items = (
                    f"multiIf(startsWith({n}_v, '['), JSONExtractArrayRaw({n}_v), "
                    f"startsWith({n}_v, '{{') AND isValidJSON({n}_v), [{n}_v], [])"
                )
                l2.append(f"{items} AS {n}_items")
                l2.append(f"{_is_json(f'{n}_v')} AS {n}_json" if src.raw else f"0 AS {n}_json")
                l3.append(
                    f"arrayMap((m, kv) -> {_item('m', 'kv', src.role)}, {n}_items, "
                    f"arrayMap(m -> JSONExtractKeysAndValuesRaw(m), {n}_items)) AS {n}_t"
                )
            elif isinstance(src, Indexed):
                pre = _lit(src.prefix)
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
                fields = _arr_lit((src.role, src.content, *src.deferred))
                ix = f"arraySort(arrayDistinct(arrayMap(e -> e.1, arrayFilter(e -> has({fields}, e.2), {n}_e))))"
                l2.append(f"{ix} AS {n}_ix")
                l3.append(f"{_indexed_messages(n, src)} AS {n}_t")
            else:
                continue
    return (
        f"SELECT *, {_slot_columns()} FROM (SELECT *, {', '.join(l3)} FROM "
        f"(SELECT *, {', '.join(l2)} FROM (SELECT *, {', '.join(l1)} FROM ({below}))))"
    )


def _arr_lit(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_lit(i) for i in items) + "]"


def _indexed_messages(n: str, src: Indexed) -> str:
    """Messages of indices 0..L-1, L the first index holding no field the convention reads."""
    length = f"if(arrayFirstIndex((x, p) -> x != p - 1, {n}_ix, arrayEnumerate({n}_ix)) = 0, length({n}_ix), "
    length += f"arrayFirstIndex((x, p) -> x != p - 1, {n}_ix, arrayEnumerate({n}_ix)) - 1)"
    rng = f"range(toUInt64({length}))"

    def aligned(field: str) -> str:
        # (index, value, present) for every index below L, sorted by index
        have = f"arrayFilter(e -> e.2 = {_lit(field)} AND e.1 < {length}, {n}_e)"
        missing = f"arrayFilter(i -> NOT has(arrayMap(e -> e.1, {have}), i), {rng})"
        return (
            f"arraySort(e -> e.1, arrayConcat(arrayMap(e -> (e.1, e.3, 1), {have}), "
            f"arrayMap(i -> (toInt64(i), '', 0), {missing})))"
        )

    keep_role = "1" if src.role_only_kept else "0"
    shape = f"arrayExists(e -> has({_arr_lit(src.deferred)}, e.2), {n}_e)"
    if src.json_content:
        json_like = "(startsWith(e.3, '[') OR startsWith(e.3, '{'))"
        shape += f" OR arrayExists(e -> e.2 = {_lit(src.content)} AND {json_like}, {n}_e)"
    status = f"if({shape}, 2, if(c.3 = 1 OR {keep_role}, 1, 0))"
    return (
        f"arrayMap((r, c) -> tuple(toUInt8({status}), toUInt8(0), if(r.3 = 1 AND r.2 != '', r.2, "
        f"{_lit(src.default_role)}), c.2, CAST(NULL, 'Nullable(String)')), {aligned(src.role)}, {aligned(src.content)})"
    )


def _kept(n: str) -> str:
    return f"arrayFilter(t -> t.1 = 1, {n}_t)"


def _slot_columns() -> str:
    out: list[str] = []
    for slot, sources in SLOTS.items():
        chosen: list[str] = []
        src_pos: list[str] = []
        key: list[str] = []
        raw: list[str] = []
        shape: list[str] = []
        for i, src in enumerate(sources):
            n = _name(slot, i)
            if isinstance(src, MessageList | Indexed):
                kept = _kept(n)
                chosen += [f"notEmpty({kept})", kept]
                src_pos += [f"notEmpty({kept})", str(i + 1)]
                plain = (
                    f"(startsWith({n}_v, '[') AND notEmpty({n}_t) AND arrayAll(t -> t.2 = 1, {n}_t))"
                    if isinstance(src, MessageList)
                    else "0"
                )
                key += [f"notEmpty({kept})", f"if({plain}, {_lit(getattr(src, 'key', ''))}, '')"]
                label = getattr(src, "key", "") or getattr(src, "prefix", "")
                shape.append(f"if(arrayExists(t -> t.1 = 2, {n}_t), {_lit('message_shape:' + label)}, '')")
            if isinstance(src, MessageList) and src.raw:
                earlier = [
                    f"empty({_kept(_name(slot, j))})" for j in range(i) if isinstance(sources[j], MessageList | Indexed)
                ]
                cond = " AND ".join([f"{n}_v != ''", f"NOT {n}_json", *earlier])
                raw.append(f"if({cond}, {n}_v, '')")
            elif isinstance(src, RawText):
                raw.append(f"if({_fam(src.family)}, a[{_lit(src.key)}], '')")
        out.append(f"multiIf({', '.join(chosen)}, CAST([], {_lit(_MSG_TYPE)})) AS _{slot}_msgs")
        out.append(f"multiIf({', '.join(src_pos)}, 0) AS _{slot}_src")
        out.append(f"multiIf({', '.join(key)}, '') AS _{slot}_key")
        raw_sql = "''"
        for r in reversed(raw):
            raw_sql = f"if({r} != '', {r}, {raw_sql})"
        out.append(f"{raw_sql} AS _{slot}_raw")
        out.append(f"[{', '.join(shape)}] AS _{slot}_shape")
        out.append(f"[{', '.join(_other_reasons(slot, sources))}] AS _{slot}_other")
    sysi = SYSTEM_INSTRUCTIONS
    v = f"a[{_lit(sysi.key)}]"
    out.append(f"if({_fam(sysi.family)}, {v}, '') AS _sys")
    out.append(
        f"if({_fam(sysi.family)} AND (startsWith({v}, '[') OR startsWith({v}, '{{')), "
        f"{_lit('source:' + sysi.key)}, '') AS _sys_deferred"
    )
    return ", ".join(out)


def _other_reasons(slot: str, sources: tuple[object, ...]) -> list[str]:
    """(position, reason expression) of each deferred source; a `no_text` one is written in
    `text_columns`, where the slot's text is known, as `if(_<slot>_src in 1..pos-1 AND text, '', reason)`."""
    out: list[str] = []
    for i, src in enumerate(sources):
        if not isinstance(src, Other):
            continue
        if src.event:
            out.append(f"if(has(event_names, {_lit(src.event)}), {_lit('event:' + src.event)}, '')")
            continue
        present = f"{_fam(src.family)} AND hasAny(a_keys, {_arr_lit(src.keys)})"
        reason = _lit("source:" + ",".join(src.keys))
        if src.when == "no_text":
            # kept as the position, resolved in text_columns
            out.append(f"if({present}, {_lit(f'{i + 1}|')} || {reason}, '')")
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
    embed = "operation = 'embeddings' AND notEmpty(_in_msgs)"
    user = "arrayLast(t -> t.3 = 'user' AND t.4 != '', _in_msgs).4"
    joined = "arrayStringConcat(arrayFilter(c -> c != '', arrayMap(t -> t.4, _in_msgs)), '\\n')"
    in_msg_text = f"if({embed}, {joined}, {user})"
    out_msg_text = "arrayLast(t -> t.3 IN ('assistant', 'model') AND t.4 != '', _out_msgs).4"
    system = (
        "arrayStringConcat(arrayMap(t -> t.4, arrayFilter(t -> t.3 IN ('system', 'developer') AND t.4 != '', "
        "_in_msgs)), '\\n')"
    )
    texts = (
        f"SELECT *, {in_msg_text} AS _in_mtext, {out_msg_text} AS _out_mtext, "
        f"if(_in_mtext != '', _in_mtext, _in_raw) AS _input_text, "
        f"if(_out_mtext != '', _out_mtext, _out_raw) AS _output_text, "
        f"if(_sys != '', _sys, {system}) AS system_prompt, "
        f"{_json('_in_msgs')} AS input_messages, {_json('_out_msgs')} AS output_messages "
        f"FROM ({below})"
    )

    def no_text(slot: str) -> str:
        # a `no_text` source at position p defers unless a source before p gave the slot's text
        return (
            f"arrayMap(x -> if(position(x, '|') > 0, if(_{slot}_src > 0 AND _{slot}_src < "
            f"toUInt32OrZero(splitByChar('|', x)[1]) AND _{slot}_mtext != '', '', splitByChar('|', x)[2]), x), "
            f"_{slot}_other)"
        )

    escapes = (
        "arrayExists(t -> multiSearchAny(concat(t.3, t.4, ifNull(t.5, '')), "
        f"{_JSON_DIFFERS}), arrayConcat(_in_msgs, _out_msgs))"
    )
    reasons = (
        f"arrayConcat(_in_shape, _out_shape, {no_text('in')}, {no_text('out')}, [_sys_deferred, "
        f"if({escapes}, 'json_escape', ''), "
        f"if(lengthUTF8(input_messages) > {limit} OR lengthUTF8(output_messages) > {limit}, 'long_messages', ''), "
        f"if(length(_input_text) > {limit} OR length(_output_text) > {limit} OR length(system_prompt) > {limit}, "
        "'long_text', ''), "
        "if(operation = 'execute_tool' AND (_input_text = '' OR _output_text = ''), 'tool_text', '')])"
    )
    drop = "arrayFilter(k -> k != '', [_in_key, _out_key])"
    helpers = (*passed_columns(), "_deferred0", "_in_mtext", "_out_mtext", "_input_text", "_output_text")
    return (
        f"SELECT * EXCEPT ({', '.join(helpers)}), "
        f"arrayFilter(x -> x != '', arrayConcat(_deferred0, {reasons})) AS deferred, "
        "if(_in_mtext != '' AND NOT (operation = 'embeddings' AND notEmpty(_in_msgs)), '', _input_text) "
        "AS input_text_fallback, "
        "if(_out_mtext != '', '', _output_text) AS output_text_fallback, "
        "'' AS tool_calls, "
        f"mapFilter((k, v) -> NOT has({drop}, k), attributes_all) AS attributes "
        f"FROM ({texts})"
    )
