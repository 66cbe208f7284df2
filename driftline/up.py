"""`driftline up`: the collector, the scorer and the API in one process on the embedded store (the
quick start). With no API keys configured it makes one for tenant 'default'; `--demo` sends demo
traffic to it once HTTP serves."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from driftline.api_service import ApiService
from driftline.auth import Authenticator
from driftline.collector.service import CollectorService
from driftline.config import UpSettings
from driftline.process import ProcessContext, run_services
from driftline.scorers.service import ScorerService
from driftline.service import Service

__all__ = ["dev_key", "run"]


def dev_key(data_dir: Path) -> str:
    """The key of tenant 'default' when no keys are configured, kept in a file only the owner can
    read: it is never printed or logged."""
    path = data_dir / "dev-api-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "dl_" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def run(settings: UpSettings) -> int:
    auth = Authenticator(settings.key_grants())
    key = ""
    if not settings.tenants_by_key_hash():
        key = dev_key(settings.data_dir)
        # The one user of a quick start may do everything, backfills included.
        auth.add_key(key, "default", roles=frozenset({"admin"}))
        print(
            f"No API keys configured: tenant 'default' uses the key in {settings.data_dir / 'dev-api-key'}",
            file=sys.stderr,
        )

    if settings.demo and not settings.review_queues:
        # Something to review in the quick start: the demo's flagged answers and failed tools.
        from driftline.review.models import DEMO_QUEUES

        settings = settings.model_copy(update={"review_queues": DEMO_QUEUES})

    def build(ctx: ProcessContext) -> list[Service]:
        collector = CollectorService(settings, ctx.registry, store=ctx.store, auth=ctx.auth)
        scorer = ScorerService(settings, ctx.store, ctx.registry, pricer=collector.normalizer.pricer, auth=ctx.auth)
        if settings.demo:
            ctx.on_serving.append(_demo(ctx.auth, key))
        # Order matters for shutdown: each phase visits the collector first (gRPC stops accepting
        # before the scheduler stops), and the collector drains after the scorer's last run.
        return [collector, scorer, ApiService(ctx.store, ctx.auth, ctx.registry, settings=settings)]

    return run_services("up", settings, build, auth)


def _demo(auth: Authenticator, key: str) -> Callable[[str], Callable[[], None]]:
    def start(base_url: str) -> Callable[[], None]:
        from driftline.demo import DemoTraffic

        # Demo traffic lands where the user can read it: the dev key's tenant when there is one.
        demo_key = key or "dl_demo_" + secrets.token_urlsafe(16)
        if not key:
            auth.add_key(demo_key, "demo")
        demo = DemoTraffic(base_url, demo_key)
        demo.start()
        return demo.stop

    return start
