"""Scorers from installed packages: the `driftline.scorers` entry-point group.

A package adds scorers without forking Driftline by declaring, in its pyproject.toml,

    [project.entry-points."driftline.scorers"]
    my_check = "my_checks:MyCheck"

where the object is a Scorer class with a constructor that takes no arguments (or any callable
returning a Scorer). Each one runs as a scheduled job exactly like a built-in scorer: the same
sampling by trace id, sharding, watermark, idempotent (span, scorer, version) keys, per-scorer
filters and interval under `scorers.<name>`, and the same run metrics. See docs/scorers.md.

A plugin that cannot be loaded, does not build a Scorer, or takes a name already in use stops
start-up with a message naming its entry point: a scorer that silently does not run is worse.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from driftline.scorers.base import Scorer

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "load_plugin_scorers"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "driftline.scorers"


class PluginError(ValueError):
    """A scorer plugin could not be used; the message names its entry point."""


def _where(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    by = f" (from {dist.name} {dist.version})" if dist is not None else ""
    return f"entry point {ep.name!r} = {ep.value!r}{by}"


def _build(ep: EntryPoint) -> Scorer:
    try:
        factory = ep.load()
        scorer = factory()
    except Exception as e:
        raise PluginError(f"scorer plugin {_where(ep)} failed to load: {type(e).__name__}: {e}") from e
    if not isinstance(scorer, Scorer):
        raise PluginError(
            f"scorer plugin {_where(ep)} built a {type(scorer).__name__}, not a Scorer "
            "(name, version, needs_trace, applies(), score())"
        )
    for attr in ("name", "version"):
        value = getattr(scorer, attr)
        if not isinstance(value, str) or not value:
            raise PluginError(f"scorer plugin {_where(ep)}: {attr} must be a non-empty string")
    return scorer


def load_plugin_scorers(taken: Iterable[str], eps: Iterable[EntryPoint] | None = None) -> list[Scorer]:
    """A Scorer from each installed entry point of the group, in name order. `taken`: the names
    already in use (built-in scorers, configured judges)."""
    used = set(taken)
    out: list[Scorer] = []
    found = entry_points(group=ENTRY_POINT_GROUP) if eps is None else eps
    for ep in sorted(found, key=lambda e: e.name):
        scorer = _build(ep)
        if scorer.name in used:
            raise PluginError(f"scorer plugin {_where(ep)}: the name {scorer.name!r} is already in use")
        used.add(scorer.name)
        out.append(scorer)
        log.info("scorer plugin %s (version %s) from %s", scorer.name, scorer.version, ep.value)
    return out
