"""Redaction at ingest: configured patterns are replaced in text columns and attribute values
before a row reaches the spool or the store, so the secret is never written anywhere."""

from __future__ import annotations

import re
from typing import Any

from driftline.checksums import luhn_valid
from driftline.store.columns import TEXT_FALLBACKS

__all__ = ["BUILTIN_PATTERNS", "Redactor", "parse_patterns"]

# Deliberately conservative: a false positive hides a word, a false negative leaks a secret.
BUILTIN_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    # 13-19 digits, optionally grouped by spaces or dashes (Luhn is checked on each match)
    "credit_card": r"\b(?:\d[ -]?){12,18}\d\b",
    # common provider key shapes: sk-..., sk-ant-..., AKIA..., ghp_..., xox[bp]-..., AIza...
    "api_key": r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b",
}

_TEXT_COLUMNS = (
    "status_message", "input_messages", "output_messages", "input_text", "output_text", "input_text_fallback",
    "output_text_fallback", "system_prompt",
    "tool_calls", "tool_arguments", "tool_result", "tool_error", "retrieved_documents", "events",
)  # fmt: skip
_MAP_COLUMNS = ("attributes", "resource_attributes")


def parse_patterns(entries: list[str]) -> dict[str, re.Pattern[str]]:
    """Names of built-ins, or `name=regex` for custom ones. Raises ValueError naming a bad entry."""
    out: dict[str, re.Pattern[str]] = {}
    for entry in entries:
        name, sep, rx = entry.partition("=")
        name = name.strip()
        if not sep:
            if name not in BUILTIN_PATTERNS:
                raise ValueError(f"unknown redaction pattern {name!r} (built-in: {', '.join(BUILTIN_PATTERNS)})")
            rx = BUILTIN_PATTERNS[name]
        try:
            out[name] = re.compile(rx)
        except re.error as e:
            raise ValueError(f"redaction pattern {name!r} is not a valid regex: {e}") from None
    return out


class Redactor:
    def __init__(self, patterns: dict[str, re.Pattern[str]]) -> None:
        self._patterns = list(patterns.items())

    def text(self, s: str) -> str:
        for name, rx in self._patterns:
            if name == "credit_card":
                s = rx.sub(
                    lambda m: "[REDACTED:credit_card]" if luhn_valid(re.sub(r"\D", "", m.group())) else m.group(),
                    s,
                )
            else:
                s = rx.sub(f"[REDACTED:{name}]", s)
        return s

    def __call__(self, row: dict[str, Any]) -> None:
        # Redacted JSON may not read back as the redacted text would (a custom pattern can match
        # across JSON escapes): with redaction on, the texts are always stored themselves.
        for fallback, text_col in TEXT_FALLBACKS.items():
            if text_col in row:
                row[fallback] = row[text_col]
        for col in _TEXT_COLUMNS:
            v = row.get(col)
            if isinstance(v, str) and v:
                row[col] = self.text(v)
        for col in _MAP_COLUMNS:
            m = row.get(col)
            if isinstance(m, dict) and m:
                row[col] = {k: self.text(v) if isinstance(v, str) else v for k, v in m.items()}
