"""Tenant scoping is part of every query method's signature: the tenant is its first argument
(after `self`, or the store for the module-level functions). The one cross-tenant area says so."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import driftline.store.queries as queries

MECHANISM = {"select", "_where", "_summary"}  # the Reader and its helpers, not queries
CROSS_TENANT = {"tenants"}  # queries/tenants.py: the deliberate cross-tenant reads


def _query_callables(module_name: str) -> Iterator[tuple[str, Callable[..., Any], int]]:
    """(qualified name, callable, parameters before the tenant) of a module's public queries."""
    mod = importlib.import_module(f"{queries.__name__}.{module_name}")
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj, 1  # (store, tenant, ...)
        elif inspect.isclass(obj) and name.endswith("Queries"):
            for mname, meth in vars(obj).items():
                if inspect.isfunction(meth) and not mname.startswith("_"):
                    yield f"{name}.{mname}", meth, 1  # (self, tenant, ...)


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(queries.__path__) if m.name not in MECHANISM)


def test_every_query_takes_the_tenant_first() -> None:
    checked, wrong = [], []
    for module_name in _modules():
        if module_name in CROSS_TENANT:
            continue
        for name, fn, before in _query_callables(module_name):
            params = list(inspect.signature(fn).parameters)
            checked.append(name)
            if len(params) <= before or params[before] != "tenant":
                wrong.append(f"{module_name}.{name}{tuple(params)}")
    assert len(checked) >= 15 and "SLIQueries.score_counts" in checked and "get_trace" in checked
    assert not wrong, "queries without the tenant first: " + ", ".join(wrong)


def test_cross_tenant_reads_take_no_tenant() -> None:
    found = [
        (name, list(inspect.signature(fn).parameters)) for m in CROSS_TENANT for name, fn, _ in _query_callables(m)
    ]
    # Each one is a deliberate exception, reviewed when it is added: only tenant names cross.
    assert found == [
        ("CrossTenantQueries.tenants_with_spans", ["self", "since"]),
        ("CrossTenantQueries.tenants_with_judges", ["self"]),
    ]
