"""Every read of the store, as named methods grouped by area (see select.py for the mechanism).

Each tenant-scoped method takes the tenant as an argument; the Reader binds it, adds the tenant
condition to the SQL it builds, and has the engine filter every tenant table of the statement by
it. The only cross-tenant read is in tenants.py. Scoring, SLIs and releases are classes on the
Store (`store.scoring`, ...); traces, sessions and feedback are functions taking the store.
"""

from driftline.store.queries.judges import JudgeQueries
from driftline.store.queries.releases import ReleaseQueries
from driftline.store.queries.scoring import CANDIDATE_FILTERS, ScoringQueries
from driftline.store.queries.select import Reader, Select
from driftline.store.queries.sli import SLIQueries
from driftline.store.queries.tenants import CrossTenantQueries

__all__ = [
    "CANDIDATE_FILTERS",
    "CrossTenantQueries",
    "JudgeQueries",
    "Reader",
    "ReleaseQueries",
    "SLIQueries",
    "ScoringQueries",
    "Select",
]
