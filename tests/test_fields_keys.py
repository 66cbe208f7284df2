"""The normalizer's private `Fields` keys (leading underscore: carried between conventions and
derive.finish, never stored) are each documented in collector/conventions/_common.py, and the list
documents no key that nothing writes any more."""

from __future__ import annotations

import re
from pathlib import Path

import driftline.collector.conventions._common as common

CONVENTIONS = Path(common.__file__).parent
# A key in the docstring's list: two-space indent, then one or more `_name`s separated by commas.
_DOCUMENTED = re.compile(r"^  (_\w+(?:, _\w+)*)\s", re.M)
_USED = re.compile(r"""["'](_[a-z][a-z_]*)["']""")
# genai.py writes `slot + "_key"` for slot in ("_in", "_out").
_COMPOSED = {"_key": {"_in_key", "_out_key"}}


def _documented() -> set[str]:
    doc = common.__doc__ or ""
    return {k.strip() for m in _DOCUMENTED.finditer(doc) for k in m.group(1).split(",")}


def _used() -> set[str]:
    keys: set[str] = set()
    for path in CONVENTIONS.glob("*.py"):
        for key in _USED.findall(path.read_text()):
            keys |= _COMPOSED.get(key, {key})
    return keys


def test_every_private_key_is_documented_and_every_documented_key_is_used() -> None:
    documented, used = _documented(), _used()
    assert used - documented == set(), "private Fields keys missing from _common.py's docstring"
    assert documented - used == set(), "documented private Fields keys that nothing writes"
