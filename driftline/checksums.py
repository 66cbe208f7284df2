"""Checksums that tell a real identifier from a random run of digits (redaction and the PII scorer)."""

from __future__ import annotations

__all__ = ["luhn_valid"]


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes (ISO/IEC 7812-1)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
