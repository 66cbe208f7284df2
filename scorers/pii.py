"""PIIScorer: personal data or secrets in what a model (or a tool) handed back.

Scanned: `output_text` of model calls and `tool_result` of tool runs. Kinds: email, phone
(E.164 and common NANP formats), credit_card (length, network prefix and Luhn checked),
us_ssn, iban (ISO 13616 mod-97 checked), ipv4, api_key (OpenAI `sk-`, AWS `AKIA`/`ASIA`,
GitHub `ghp_`/`github_pat_`, Slack `xox?-`, Google `AIza`).

An echo is not an exposure: a value that also appears in the user's own input (`input_text`,
and the user messages of `input_messages`) is what the user gave and is ignored. For a tool run
`input_text` is its arguments, so a tool returning what it was asked about is not flagged
either. Only new data counts.

The score row never holds the values themselves (the scores table must not become a PII
store): details and explanation carry kinds and counts only.

Placeholders are skipped: RFC 2606 example domains, loopback / unspecified / documentation
IPv4 ranges (RFC 5737).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from driftline.checksums import luhn_valid
from driftline.scorers.base import LLM_OPERATIONS, Score, SpanRow, TraceContext

__all__ = ["PII_KINDS", "PIIFinding", "PIIScorer", "find_pii", "iban_valid", "luhn_valid"]


@dataclass(frozen=True)
class PIIFinding:
    kind: str
    start: int
    end: int
    key: str  # normalized value, compared with the input to spot echoes; never stored


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97 == 1."""
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


_CARD_PREFIX: Final = re.compile(
    r"4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])|35|62"
)
_RESERVED_DOMAINS: Final = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost)$")
_DOC_NETS: Final = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _card(raw: str) -> str | None:
    d = _digits(raw)
    return d if 13 <= len(d) <= 19 and _CARD_PREFIX.match(d) and luhn_valid(d) else None


def _iban(raw: str) -> str | None:
    compact = raw.replace(" ", "").upper()
    return compact if iban_valid(compact) else None


def _email(raw: str) -> str | None:
    domain = raw.rsplit("@", 1)[1].lower()
    return None if _RESERVED_DOMAINS.search(domain) else raw.lower()


def _ipv4(raw: str) -> str | None:
    ip = ipaddress.IPv4Address(raw)
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast or any(ip in n for n in _DOC_NETS):
        return None
    return raw


def _phone(raw: str) -> str | None:
    d = _digits(raw)
    if not 8 <= len(d) <= 15:  # E.164 allows at most 15 digits; fewer than 8 is a fragment
        return None
    # The same NANP number with or without its +1 country code.
    return d[1:] if len(d) == 11 and d.startswith("1") else d


def _same(raw: str) -> str | None:
    return raw


# (kind, pattern, validator -> normalized key or None). Order matters: earlier kinds claim their
# characters first, so a card number is not also counted as a phone number.
_DETECTORS: Final[tuple[tuple[str, re.Pattern[str], Callable[[str], str | None]], ...]] = (
    (
        "api_key",
        re.compile(
            r"\b(?:sk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
            r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}"
            r"|AIza[0-9A-Za-z_-]{35})"
        ),
        _same,
    ),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), _iban),
    ("credit_card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card),
    ("us_ssn", re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"), _digits),
    (
        "phone",
        re.compile(
            # E.164, maybe grouped: +44 20 7946 0958
            r"(?<![\w+])\+[1-9]\d{0,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\d(?![\d-])"
            # NANP with separators: (415) 555-2671, 415.555.2671, 1-415-555-2671
            r"|(?<![\w+-])(?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?![\d-])"
        ),
        _phone,
    ),
    (
        "ipv4",
        re.compile(
            r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)"
        ),
        _ipv4,
    ),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), _email),
)
PII_KINDS: Final = tuple(kind for kind, _, _ in _DETECTORS)


def find_pii(text: str) -> Iterator[PIIFinding]:
    """Every finding in `text`, non-overlapping (earlier detectors win)."""
    taken: list[tuple[int, int]] = []
    for kind, pattern, normalize in _DETECTORS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            key = normalize(m.group(0))
            if key is None:
                continue
            taken.append((start, end))
            yield PIIFinding(kind, start, end, key)


def _user_input(span: SpanRow) -> str:
    parts = [str(span.get("input_text") or "")]
    raw = span.get("input_messages")
    if isinstance(raw, str) and raw:
        try:
            messages = json.loads(raw)
        except ValueError:
            messages = []
        for m in messages if isinstance(messages, list) else ():
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                parts.append(m["content"])
    return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class _UserInput:
    """What the user gave, digested once per span for the echo test."""

    lowered: str
    keys: frozenset[str]  # normalized values the detectors find in it
    digit_runs: tuple[str, ...]  # numbers as typed, separators dropped (a bare 10-digit phone)

    @classmethod
    def of(cls, span: SpanRow) -> _UserInput:
        text = _user_input(span)
        keys = frozenset(f.key for f in find_pii(text))
        return cls(text.lower(), keys, tuple(_digits(run) for run in _DIGIT_RUN.findall(text)))

    def echoes(self, finding: PIIFinding) -> bool:
        key = finding.key
        if key in self.keys or key.lower() in self.lowered:
            return True
        return key.isdigit() and any(key in run for run in self.digit_runs)


_DIGIT_RUN: Final = re.compile(r"\d[\d ().-]*\d")


class PIIScorer:
    """Value = number of PII findings not echoed from the user's input; label `pii` / `clean`."""

    name = "pii_exposure"
    version = "1"
    needs_trace = False

    def applies(self, span: SpanRow) -> bool:
        if span.get("tool_result"):
            return True
        return span.get("operation") in LLM_OPERATIONS and bool(span.get("output_text"))

    def score(self, span: SpanRow, trace: TraceContext) -> Score | None:
        fields = [("tool_result", str(span.get("tool_result") or ""))]
        output = str(span.get("output_text") or "")
        if output and output != fields[0][1]:  # a tool span's output_text is its result again
            fields.append(("output_text", output))
        found = [(name, f) for name, text in fields if text for f in find_pii(text)]
        if not found:
            return Score(0.0, "clean", "no PII found", {"kinds": {}, "fields": [], "echoed": 0})
        user = _UserInput.of(span)
        exposed = [(n, f) for n, f in found if not user.echoes(f)]
        echoed = len(found) - len(exposed)
        kinds = dict(Counter(f.kind for _, f in exposed))
        in_fields = sorted({n for n, _ in exposed})
        details = {"kinds": kinds, "fields": in_fields, "echoed": echoed}
        echo_note = f"; {echoed} echoed from the user's input, ignored" if echoed else ""
        if not exposed:
            return Score(0.0, "clean", f"no new PII{echo_note}", details)
        listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return Score(float(len(exposed)), "pii", f"{listed} in {', '.join(in_fields)}{echo_note}", details)
