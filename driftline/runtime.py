"""The old name of the collector's assembly, kept for existing imports: see driftline.collector.service."""

from __future__ import annotations

from driftline.collector.service import CollectorService as Runtime

__all__ = ["Runtime"]
