"""LLM judges defined through the API: each tenant's book of judge definitions in the store's
`judge_definitions` table (migration 12). The API writes it; the scorer reads it on every run of
its API-judges job (scorers/judge_api_jobs.py), so a new or edited judge needs no restart.

The endpoint's key is kept apart from the definition and never leaves this module except toward
the judge's own endpoint: a definition read back carries only whether a key is set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from pydantic import SecretStr, ValidationError

from driftline.judge_config import ApiJudge
from driftline.store import Store

__all__ = ["MAX_JUDGES_PER_TENANT", "JudgeBook", "StoredJudge", "TooManyJudges"]

log = logging.getLogger(__name__)

# Each judge is a scheduled job and a label value of the judge metrics: a tenant's count is bounded.
MAX_JUDGES_PER_TENANT = 50

_SCHEMA = pa.schema(
    [("tenant", pa.string()), ("name", pa.string()), ("definition", pa.string()), ("api_key", pa.string()),
     ("deleted", pa.uint8()), ("updated_at", pa.timestamp("ms", tz="UTC"))]
)  # fmt: skip


class TooManyJudges(Exception):
    """The tenant has MAX_JUDGES_PER_TENANT judges already (409)."""


@dataclass(frozen=True)
class StoredJudge:
    name: str
    definition: ApiJudge  # its api_key: the stored one (write-only toward clients)
    updated_at: datetime

    @property
    def version(self) -> str:
        return self.definition.judge_version

    @property
    def api_key_set(self) -> bool:
        return bool(self.definition.api_key.get_secret_value())


def _first_error(e: ValidationError) -> str:
    """Where and what, without the input (a definition may hold text a log should not)."""
    err = e.errors(include_input=False)[0]
    return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class JudgeBook:
    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self._clock = clock
        self._last = datetime(1970, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()  # the API's handlers run on a thread pool
        self._told: set[tuple[str, str, datetime]] = set()

    def _now(self) -> datetime:
        """Strictly increasing in this process (ReplacingMergeTree keeps the latest write)."""
        with self._lock:
            t = max(_utc(self._clock()), self._last + timedelta(milliseconds=1))
            self._last = t
            return t

    def judges(self, tenant: str) -> list[StoredJudge]:
        """The tenant's live judges, by name. A stored definition this version of Driftline no
        longer accepts is left out (and logged, once per process): a PUT replaces it."""
        out = []
        for r in self.store.judges.definitions(tenant):
            if r["deleted"]:
                continue
            try:
                d = ApiJudge.model_validate_json(r["definition"])
            except ValidationError as e:
                if (tenant, r["name"], r["updated_at"]) not in self._told:
                    self._told.add((tenant, r["name"], r["updated_at"]))
                    log.warning("judge %s of tenant %s: stored definition not valid, not run: %s",
                                r["name"], tenant, _first_error(e))  # fmt: skip
                continue
            d = d.model_copy(update={"api_key": SecretStr(str(r["api_key"]))})
            out.append(StoredJudge(str(r["name"]), d, _utc(r["updated_at"])))
        return out

    def judge(self, tenant: str, name: str) -> StoredJudge | None:
        return next((j for j in self.judges(tenant) if j.name == name), None)

    def put(self, tenant: str, name: str, definition: ApiJudge, key_given: bool) -> StoredJudge:
        """Make or replace a judge. `key_given` False: keep the stored key while the endpoint stays
        the same (a key is never sent to an endpoint it was not given for)."""
        old = self.judge(tenant, name)
        if old is None and len(self.judges(tenant)) >= MAX_JUDGES_PER_TENANT:
            raise TooManyJudges(f"a tenant has at most {MAX_JUDGES_PER_TENANT} judges; delete one first")
        key = definition.api_key.get_secret_value()
        if not key_given:
            same_endpoint = old is not None and old.definition.base_url == definition.base_url
            key = old.definition.api_key.get_secret_value() if same_endpoint and old is not None else ""
        now = self._now()
        self._write(tenant, name, definition.model_dump_json(), key, False, now)
        return StoredJudge(name, definition.model_copy(update={"api_key": SecretStr(key)}), now)

    def delete(self, tenant: str, name: str) -> bool:
        """False: no such judge."""
        old = self.judge(tenant, name)
        if old is None:
            return False
        self._write(tenant, name, old.definition.model_dump_json(), "", True, self._now())
        return True

    def _write(self, tenant: str, name: str, definition: str, key: str, deleted: bool, now: datetime) -> None:
        cols = {"tenant": [tenant], "name": [name], "definition": [definition], "api_key": [key],
                "deleted": [1 if deleted else 0], "updated_at": [now]}  # fmt: skip
        self.store.insert_arrow("judge_definitions", pa.table(cols, schema=_SCHEMA))
