"""Labelled rows from the JSONL files in shared/data, in one shape whatever the source."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Example", "load_examples"]


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    answer: str
    context: str
    question: str
    hallucinated: bool
    group: str  # rows sharing a group (a question, a source document) must not be split by cross-validation
    domain: str


def load_examples(path: Path) -> list[Example]:
    out: list[Example] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            # HaluEval names its passage "knowledge"; SummEdits calls it "context".
            context = row.get("context", row.get("knowledge", ""))
            rid = str(row["id"])
            group = str(row.get("seed_summary_id") or rid.rsplit("-", 1)[0])
            out.append(
                Example(
                    rid,
                    row["answer"],
                    context,
                    row.get("question", "") or "",
                    bool(row["hallucinated"]),
                    group,
                    str(row.get("domain", "")),
                )
            )
    return out
