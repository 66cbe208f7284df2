"""The LLM judges' reads: cached verdicts by (judge version, input hash), canary verdicts, and the
judges a tenant defined through the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from driftline.store.queries.select import Reader, Select

__all__ = ["JudgeQueries"]


class JudgeQueries:
    def __init__(self, reader: Reader) -> None:
        self._r = reader

    def cached(self, tenant: str, judge: str, version: str, input_hashes: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The cached verdicts of this judge version for these input hashes, by hash."""
        if not input_hashes:
            return {}
        rows = self._r.rows(
            tenant,
            Select(
                "input_hash, value, label, reasoning",
                "judge_cache",
                ["judge = {judge:String}", "judge_version = {version:String}", "input_hash IN {hashes:Array(String)}"],
                final=True,
            ),
            {"judge": judge, "version": version, "hashes": list(input_hashes)},
        )
        return {str(r["input_hash"]): r for r in rows}

    def canary(self, tenant: str, judge: str, version: str, kind: str) -> dict[str, dict[str, Any]]:
        """The canary verdicts of one kind ('baseline' or 'latest') of this judge version, by item id."""
        rows = self._r.rows(
            tenant,
            Select(
                "item_id, label, value, reasoning, run_at",
                "judge_canary",
                ["judge = {judge:String}", "judge_version = {version:String}", "kind = {kind:String}"],
                final=True,
            ),
            {"judge": judge, "version": version, "kind": kind},
        )
        return {str(r["item_id"]): r for r in rows}

    def definitions(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's judges defined through the API (deleted ones included, flagged), by name."""
        return self._r.rows(
            tenant,
            Select("name, definition, api_key, deleted, updated_at", "judge_definitions", final=True, order_by="name"),
        )
