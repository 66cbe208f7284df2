"""Conditions with bound parameters: a value never becomes SQL text, only a `{name:Type}` slot."""

from __future__ import annotations

from typing import Any

__all__ = ["Where"]


class Where:
    def __init__(self, tenant: str) -> None:
        self.params: dict[str, Any] = {"tenant": tenant}
        self.conds: list[str] = ["tenant = {tenant:String}"]

    def bind(self, value: Any, ch_type: str) -> str:
        """A fresh parameter slot holding `value`."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{ch_type}}}"

    def add(self, sql: str) -> None:
        self.conds.append(sql)

    def sql(self) -> str:
        return " AND ".join(self.conds)
