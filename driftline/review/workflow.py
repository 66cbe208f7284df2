"""The review workflow as a pure function of stored rows: who holds an item, what its status is,
whether a claim stands, whether reviewers agree.

An item needs N distinct reviewers (the queue's `reviewers_per_item`). Its state is a fold over its
append-only events (claim, release, skip) and its labels, ordered by (time, reviewer, event id):

- A claim by R at time t *stands* when R has not labeled or skipped the item before t, no
  adjudication exists, and the other reviewers who hold a live claim at t (standing or not: the rule
  looks only at rows before t, never at the outcome of older folds) plus the other reviewers who
  labeled before t number fewer than N. A claim lives until its `expires_at`, or until R's next
  release, skip or label. A holder's claim again renews the lease.
- So for N = 1 two claims cannot both stand while both live: of two overlapping claims the later
  one saw the earlier one live. Every replica folding the same rows reaches the same answer.

The API decides claims under a lock and reads back (driftline/review/desk.py); this module only
answers questions about rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from driftline.review.models import LabelField, Rubric, as_text

__all__ = ["Event", "ItemState", "Label", "claim_stands", "compare_labels", "final_fields", "fold"]


def utc(v: datetime) -> datetime:
    return v if v.tzinfo else v.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    kind: str  # claim, release, skip
    reviewer: str
    at: datetime
    expires_at: datetime
    event_id: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Event:
        return cls(str(row["kind"]), str(row["reviewer"]), utc(row["at"]), utc(row["expires_at"]), str(row["event_id"]))

    @property
    def key(self) -> tuple[datetime, str, str]:
        return (self.at, self.reviewer, self.event_id)


@dataclass(frozen=True)
class Label:
    kind: str  # label, adjudication
    reviewer: str
    fields: Mapping[str, Any]
    note: str
    corrected_answer: str
    labeled_at: datetime

    @property
    def key(self) -> tuple[datetime, str, str]:
        return (self.labeled_at, self.reviewer, "~label")


def _ends(events: Sequence[Event], labels: Sequence[Label], reviewer: str) -> list[datetime]:
    """When `reviewer` let go of the item: releases, skips, labels."""
    out = [e.at for e in events if e.reviewer == reviewer and e.kind in ("release", "skip")]
    out += [lb.labeled_at for lb in labels if lb.reviewer == reviewer and lb.kind == "label"]
    return out


def _live(claim: Event, ends: Sequence[datetime], t: datetime) -> bool:
    """Whether `claim` still holds at `t` (it started at or before t)."""
    return claim.expires_at > t and not any(claim.at < end <= t for end in ends)


def _blockers(
    reviewer: str, key: tuple[datetime, str, str], events: Sequence[Event], labels: Sequence[Label]
) -> tuple[set[str], set[str]]:
    """Other reviewers holding a live claim at `key`, and other reviewers who labeled before it."""
    t = key[0]
    holders: set[str] = set()
    for e in events:
        other = e.kind == "claim" and e.reviewer != reviewer and e.key < key and e.reviewer not in holders
        if other and _live(e, _ends(events, labels, e.reviewer), t):
            holders.add(e.reviewer)
    done = {lb.reviewer for lb in labels if lb.kind == "label" and lb.reviewer != reviewer and lb.key < key}
    return holders - done, done


def claim_stands(claim: Event, events: Sequence[Event], labels: Sequence[Label], reviewers_needed: int) -> bool:
    """Whether `claim` (one of `events`, or a claim about to be made) stands: see the module doc."""
    if any(lb.kind == "adjudication" and lb.key < claim.key for lb in labels):
        return False
    if any(lb.kind == "label" and lb.reviewer == claim.reviewer and lb.key < claim.key for lb in labels):
        return False
    if any(e.kind == "skip" and e.reviewer == claim.reviewer and e.key < claim.key for e in events):
        return False
    holders, done = _blockers(claim.reviewer, claim.key, events, labels)
    return len(holders) + len(done) < reviewers_needed


@dataclass(frozen=True)
class ItemState:
    status: str  # open, claimed, disputed, done
    holders: dict[str, datetime]  # reviewer -> lease end, for standing live claims
    labels: list[Label]  # reviewers' labels, oldest first
    adjudication: Label | None
    agreement: list[tuple[str, bool | None, dict[str, Any]]] | None  # per field, once all labeled

    @property
    def labeled_by(self) -> list[str]:
        return [lb.reviewer for lb in self.labels]


def fold(
    events: Sequence[Event], labels: Sequence[Label], rubric: Rubric, reviewers_needed: int, now: datetime
) -> ItemState:
    """The item's state at `now` from all its rows."""
    reviewer_labels = sorted((lb for lb in labels if lb.kind == "label"), key=lambda lb: lb.key)
    adjudications = sorted((lb for lb in labels if lb.kind == "adjudication"), key=lambda lb: lb.key)
    holders: dict[str, datetime] = {}
    for e in sorted(events, key=lambda e: e.key):
        if e.kind != "claim" or e.at > now:
            continue
        if _live(e, _ends(events, labels, e.reviewer), now) and claim_stands(e, events, labels, reviewers_needed):
            holders[e.reviewer] = max(holders.get(e.reviewer, e.expires_at), e.expires_at)
    agreement = None
    if len(reviewer_labels) >= reviewers_needed > 1:
        agreement = compare_labels(rubric, reviewer_labels)
    if adjudications:
        status = "done"
    elif len(reviewer_labels) >= reviewers_needed:
        status = "done" if agreement is None or all(a is not False for _, a, _ in agreement) else "disputed"
    elif len(holders) + len(reviewer_labels) >= reviewers_needed:
        status = "claimed"
    else:
        status = "open"
    return ItemState(status, holders, reviewer_labels, adjudications[-1] if adjudications else None, agreement)


def _agree(f: LabelField, values: list[Any]) -> bool | None:
    if f.type == "text":
        return None
    present = [v for v in values if v is not None]
    if not present:
        return True
    if len(present) != len(values):
        return False
    if f.type == "numeric":
        return bool(max(present) - min(present) <= f.agree_within)
    return len({as_text(v) for v in present}) == 1


def compare_labels(rubric: Rubric, labels: Sequence[Label]) -> list[tuple[str, bool | None, dict[str, Any]]]:
    """Per rubric field: whether the reviewers agree (None: free text, not compared), and each
    reviewer's value."""
    out = []
    for f in rubric.fields:
        values = {lb.reviewer: lb.fields.get(f.name) for lb in labels}
        out.append((f.name, _agree(f, list(values.values())), values))
    return out


def final_fields(state: ItemState) -> tuple[dict[str, Any], str, str, list[str]] | None:
    """The final label once the item is done: (fields, note, corrected answer, who decided)."""
    if state.status != "done":
        return None
    if state.adjudication is not None:
        a = state.adjudication
        return dict(a.fields), a.note, a.corrected_answer, [a.reviewer]
    first = state.labels[0]
    fields: dict[str, Any] = {}
    for lb in state.labels:  # agreeing reviewers: the first value of each field (text: the first given)
        for k, v in lb.fields.items():
            if fields.get(k) is None:
                fields[k] = v
    note = next((lb.note for lb in state.labels if lb.note), first.note)
    corrected = next((lb.corrected_answer for lb in state.labels if lb.corrected_answer), "")
    return fields, note, corrected, [lb.reviewer for lb in state.labels]


def validate_label(rubric: Rubric, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The label's fields in stored form; ValueError naming every problem."""
    problems: list[str] = []
    out: dict[str, Any] = {}
    unknown = sorted(set(fields) - {f.name for f in rubric.fields})
    if unknown:
        problems.append(f"unknown field {unknown[0]!r}")
    for f in rubric.fields:
        value = fields.get(f.name)
        if value is None or (f.type == "text" and value == ""):
            if f.required:
                problems.append(f"{f.name}: required")
            continue
        try:
            out[f.name] = f.check(value)
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise ValueError("; ".join(problems))
    return out
