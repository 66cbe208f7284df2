"""The deliberate cross-tenant reads, and the only ones: every other query is tenant-scoped.

The scheduled jobs (scorers, SLIs) run per tenant, so they first ask which tenants have spans.
That list of tenant names is all that crosses tenants; no tenant's data does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from driftline.store.queries.select import Reader, Select

__all__ = ["CrossTenantQueries"]


class CrossTenantQueries:
    def __init__(self, reader: Reader) -> None:
        self._r = reader

    def tenants_with_spans(self, since: datetime | None = None) -> list[str]:
        """Tenants with spans (that started after `since`, when given), sorted."""
        where = [] if since is None else ["start_time > {since:DateTime64(3)}"]
        params: dict[str, Any] = {} if since is None else {"since": since}
        rows = self._r.rows_across_tenants(
            Select("DISTINCT tenant", "spans", where),
            params,
            why="the scheduled jobs loop over tenants; only tenant names cross",
        )
        return sorted(str(r["tenant"]) for r in rows)

    def tenants_with_judges(self) -> list[str]:
        """Tenants that defined LLM judges through the API (deleted ones count: they are cheap), sorted."""
        rows = self._r.rows_across_tenants(
            Select("DISTINCT tenant", "judge_definitions"),
            why="the API judges' job loops over tenants; only tenant names cross",
        )
        return sorted(str(r["tenant"]) for r in rows)
