"""The one command line: parse, load settings, call. `driftline up | collector | scorer | api |
migrate | score backfill | eval | config show | version`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline import __version__

if TYPE_CHECKING:
    from driftline.config import CommonSettings
    from driftline.store import Store

__all__ = ["main"]

log = logging.getLogger("driftline")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("data_dir", "clickhouse_url", "http_host", "http_port", "grpc_port"):
        v = getattr(args, name, None)
        if v is not None:
            out[name] = v
    if getattr(args, "demo", False):
        out["demo"] = True
    return out


def _fail(msg: str, code: int = 2) -> int:
    print(f"driftline: error: {msg}", file=sys.stderr)
    return code


def _serve(cls_name: str, run: str, args: argparse.Namespace) -> int:
    """Load one service's settings (a bad value stops here, naming it), then hand over to its run()."""
    import importlib

    from driftline import config

    try:
        settings = config.load_settings(getattr(config, cls_name), args.config, **_overrides(args))
    except config.ConfigError as e:
        return _fail(str(e))
    module, _, func = run.rpartition(".")
    rc: int = getattr(importlib.import_module(module), func)(settings)
    return rc


def cmd_up(args: argparse.Namespace) -> int:
    return _serve("UpSettings", "driftline.up.run", args)


def cmd_collector(args: argparse.Namespace) -> int:
    return _serve("CollectorSettings", "driftline.collector.service.run", args)


def cmd_scorer(args: argparse.Namespace) -> int:
    return _serve("ScorerSettings", "driftline.scorers.service.run", args)


def cmd_api(args: argparse.Namespace) -> int:
    return _serve("ApiSettings", "driftline.api_service.run", args)


@contextmanager
def _store_for(s: CommonSettings) -> Iterator[Store]:
    """The store of a one-off command, holding the data directory's lock when it is embedded."""
    from driftline.store import DataDirLock, Store

    lock = DataDirLock(s.data_dir)
    if s.embedded:
        lock.acquire()  # DataDirInUse: the caller says so
    store = Store(s.store_config(), s.retention_days)
    try:
        yield store
    finally:
        store.close()
        lock.release()


def cmd_migrate(args: argparse.Namespace) -> int:
    from driftline.config import CommonSettings, ConfigError, load_settings
    from driftline.progress import steps
    from driftline.store import DataDirInUse

    try:
        s = load_settings(CommonSettings, args.config, **_overrides(args))
    except ConfigError as e:
        return _fail(str(e))
    if args.plan:
        return _print_plan(s, args.cluster)
    if args.cluster:
        return _fail("--cluster only goes with --plan; migrating a cluster takes clickhouse_cluster (a setting)")
    try:
        with _store_for(s) as store, steps("migrate", unit="statement") as step:
            applied = store.migrate(on_step=step)
            print(f"schema at version {max(store.schema_versions(), default=0)}; applied now: {applied or 'none'}")
    except DataDirInUse as e:
        return _fail(str(e), 1)
    return 0


def _print_plan(s: CommonSettings, cluster: str | None) -> int:
    """Every statement `driftline migrate` would send to an empty database, without connecting."""
    from driftline.store.cluster import ClusterLayout, plan_statements

    name = cluster or s.clickhouse_cluster
    try:
        layout = ClusterLayout(name) if name else None
    except ValueError as e:
        return _fail(f"--cluster: {e}")
    for heading, sql in plan_statements(layout, s.database, s.retention_days):
        print(f"-- {heading}\n{sql};\n")
    return 0


def cmd_score_backfill(args: argparse.Namespace) -> int:
    """Through the server holding the data directory (or --endpoint); on the store itself only when
    no server holds it."""
    from datetime import UTC, datetime

    from prometheus_client import CollectorRegistry

    from driftline.backfill_client import BackfillFailed, backfill_remote
    from driftline.config import ConfigError, ScorerSettings, load_settings
    from driftline.process import ENDPOINT_FILE
    from driftline.progress import steps
    from driftline.scorers.metrics import ScorerMetrics
    from driftline.scorers.registry import build_jobs
    from driftline.store import DataDirInUse

    try:
        s = load_settings(ScorerSettings, args.config, **_overrides(args))
    except ConfigError as e:
        return _fail(str(e))

    def when(v: str) -> datetime:
        d = datetime.fromisoformat(v)
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    try:
        since, until = when(args.since), when(args.until) if args.until else datetime.now(UTC)
    except ValueError as e:
        return _fail(f"--since/--until: {e}")
    window = f"between {since.isoformat()} and {until.isoformat()}"

    def remote(endpoint: str) -> int:
        key_file = s.data_dir / "dev-api-key"
        key = args.api_key or (key_file.read_text().strip() if key_file.exists() else "")
        if not key:
            return _fail("--api-key is required to backfill through a server (a key with the admin role)")
        try:
            r = backfill_remote(endpoint, key, args.scorer, since, until)
        except BackfillFailed as e:
            return _fail(str(e), 1)
        print(f"{args.scorer}: {r['scored']} spans scored ({r['failed']} failed) for tenant {r['tenant']} {window}")
        return 0

    if args.endpoint:
        return remote(args.endpoint)
    try:
        with _store_for(s) as store:
            store.migrate()
            jobs = {j.job.scorer.name: j.job for j in build_jobs(s, store, ScorerMetrics(CollectorRegistry()))}
            if args.scorer not in jobs:
                return _fail(f"unknown scorer {args.scorer!r} (known: {', '.join(sorted(jobs))})")
            with steps(f"backfill {args.scorer}", unit="tenant") as step:
                r = jobs[args.scorer].backfill(since, until, on_tenant=step)
    except DataDirInUse as e:
        endpoint_file = s.data_dir / ENDPOINT_FILE
        if not endpoint_file.exists():
            return _fail(f"{e}; or pass --endpoint", 1)
        return remote(endpoint_file.read_text().strip())  # a server holds it: go through the server
    print(f"{args.scorer}: {r.scored} spans scored ({r.failed} failed) in {r.tenants} tenants {window}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """The offline scorer on both labeled sets; the judge too when DRIFTLINE_JUDGE_BASE_URL is set."""
    import tempfile

    from driftline.config import ConfigError, ScorerSettings, load_settings
    from driftline.scorers import evaluate
    from driftline.scorers.judge_eval import evaluate_judge, print_judge_table

    try:
        s = load_settings(ScorerSettings, args.config)
    except ConfigError as e:
        return _fail(str(e))
    if args.dataset or args.dataset_file:  # a golden dataset from review queues
        from driftline.review import dataset_eval

        return dataset_eval.main(args, s)
    argv = [*(["--halueval", str(args.halueval)] if args.halueval else []),
            *(["--summedits", str(args.summedits)] if args.summedits else [])]  # fmt: skip
    rc = int(evaluate.main(argv) or 0)
    if s.judge_base_url:
        root = Path(evaluate.__file__).resolve().parents[1].parent / "shared" / "data"
        sets = [
            ("halueval-qa", args.halueval or root / "halueval-qa" / "dev.jsonl"),
            ("summedits", args.summedits or root / "summedits" / "dev.jsonl"),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            rows = evaluate_judge(s, sets, args.judge_limit, Path(tmp))
        print_judge_table(rows, s.judge_model)
    else:
        print("\n(no LLM judge configured: set DRIFTLINE_JUDGE_BASE_URL to evaluate it too)")
    return rc


def cmd_config_show(args: argparse.Namespace) -> int:
    from driftline.config import ConfigError, UpSettings, load_settings, masked_dump

    try:
        s = load_settings(UpSettings, args.config, **_overrides(args))
    except ConfigError as e:
        return _fail(str(e))
    print(json.dumps(masked_dump(s), indent=2))
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from driftline.collector.quarantine import run_command
    from driftline.config import CollectorSettings, ConfigError, load_settings

    if args.quarantine_command != "list" and not (args.ids or args.all):
        return _fail("name entry ids (driftline quarantine list shows them) or pass --all")
    try:
        s = load_settings(CollectorSettings, args.config, **_overrides(args))
    except ConfigError as e:
        return _fail(str(e))
    return run_command(args.quarantine_command, s.data_dir, args.ids, args.all, s.spool_max_bytes)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="driftline", description="Monitoring for LLM applications in production.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, help="YAML file of settings (keys: field names)")
        sp.add_argument("--data-dir", dest="data_dir", type=Path, help="overrides DRIFTLINE_DATA_DIR")
        sp.add_argument("--clickhouse-url", dest="clickhouse_url", help="overrides DRIFTLINE_CLICKHOUSE_URL")

    def server(name: str, help_: str, func: Any, grpc: bool = False) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        common(sp)
        sp.add_argument("--host", dest="http_host", help="overrides DRIFTLINE_HTTP_HOST")
        sp.add_argument("--http-port", dest="http_port", type=int, help="overrides DRIFTLINE_HTTP_PORT")
        if grpc:
            sp.add_argument("--grpc-port", dest="grpc_port", type=int, help="overrides DRIFTLINE_GRPC_PORT")
        sp.set_defaults(func=func)
        return sp

    up = server("up", "run the collector, scorer and API in one process on the embedded store", cmd_up, grpc=True)
    up.add_argument("--demo", action="store_true", help="send demo LLM traffic to tenant 'demo'")
    server("collector", "run a collector: OTLP/HTTP and OTLP/gRPC in, spans to the store", cmd_collector, grpc=True)
    server("scorer", "run a scorer replica: scorers, SLIs and drift on a schedule", cmd_scorer)
    server("api", "run the API: traces, releases, feedback", cmd_api)

    mig = sub.add_parser("migrate", help="create or upgrade the schema")
    common(mig)
    mig.add_argument(
        "--plan",
        action="store_true",
        help="print the DDL a migration of an empty database runs, in order, without connecting",
    )
    mig.add_argument("--cluster", help="with --plan: the plan for this ClickHouse cluster (ON CLUSTER DDL)")
    mig.set_defaults(func=cmd_migrate)

    ver = sub.add_parser("version", help="print the version")
    ver.set_defaults(func=lambda a: print(f"driftline {__version__}") or 0)

    score = sub.add_parser("score", help="scorers")
    score_sub = score.add_subparsers(dest="score_command", required=True)
    bf = score_sub.add_parser("backfill", help="re-score a window of spans now (replaces earlier scores)")
    common(bf)
    bf.add_argument("--scorer", required=True, help="scorer name, e.g. hallucination")
    bf.add_argument("--since", required=True, help="ISO time: spans that started at or after it")
    bf.add_argument("--until", help="ISO time (default: now)")
    bf.add_argument(
        "--endpoint", help="a running Driftline (up or scorer) to backfill through, e.g. http://127.0.0.1:4318"
    )
    bf.add_argument(
        "--api-key", dest="api_key", help="admin key for --endpoint (default: the data dir's dev key of `driftline up`)"
    )
    bf.set_defaults(func=cmd_score_backfill)

    ev = sub.add_parser("eval", help="evaluate the hallucination scorer on labeled data")
    ev.add_argument("--config", type=Path, help="YAML file of settings (judge endpoint, model, key)")
    ev.add_argument("--halueval", type=Path, help="HaluEval QA JSONL (default: ../shared/data/halueval-qa/dev.jsonl)")
    ev.add_argument("--summedits", type=Path, help="SummEdits JSONL (default: ../shared/data/summedits/dev.jsonl)")
    ev.add_argument("--judge-limit", type=int, default=200, help="rows per set sent to the judge (0: all)")
    from driftline.review.dataset_eval import add_arguments as dataset_arguments

    dataset_arguments(ev)
    ev.set_defaults(func=cmd_eval)

    qua = sub.add_parser("quarantine", help="spans the store refused for good (collector/quarantine.py)")
    qua_sub = qua.add_subparsers(dest="quarantine_command", required=True)
    for name, help_ in (
        ("list", "one line per entry: id, tenant, reason, spans, time, error"),
        ("show", "an entry's sidecar and its spans as JSON"),
        ("reinject", "append entries to the spool (collector stopped); its next start writes them"),
    ):
        qp = qua_sub.add_parser(name, help=help_)
        common(qp)
        if name != "list":
            qp.add_argument("ids", nargs="*", help="entry ids")
            qp.add_argument("--all", action="store_true", help="every entry")
        qp.set_defaults(func=cmd_quarantine, ids=[], all=False)

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    show = cfg_sub.add_parser("show", help="print the effective configuration, secrets masked")
    common(show)
    show.set_defaults(func=cmd_config_show)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
