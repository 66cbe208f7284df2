"""The one command line: `driftline up | migrate | version | config show`."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
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


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: what log pipelines expect from a service."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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


def _dev_key(data_dir: Path) -> str:
    """With no keys configured, `driftline up` makes one for tenant 'default' and keeps it in a
    file only the owner can read: it is never printed or logged."""
    path = data_dir / "dev-api-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "dl_" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def cmd_up(args: argparse.Namespace) -> int:
    import uvicorn

    from driftline.config import ConfigError, UpSettings, load_settings
    from driftline.runtime import Runtime
    from driftline.server import create_app
    from driftline.store import DataDirInUse

    try:
        settings = load_settings(UpSettings, args.config, **_overrides(args))
    except ConfigError as e:
        return _fail(str(e))
    _setup_logging(settings.log_level)
    rt = Runtime(settings)
    dev_key = ""
    if not settings.tenants_by_key_hash():
        dev_key = _dev_key(settings.data_dir)
        rt.auth.add_key(dev_key, "default")
        print(
            f"No API keys configured: tenant 'default' uses the key in {settings.data_dir / 'dev-api-key'}",
            file=sys.stderr,
        )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.http_host, settings.http_port))
    except OSError as e:
        return _fail(f"cannot listen on {settings.http_host}:{settings.http_port}: {e.strerror}", 1)
    try:
        rt.start()
    except DataDirInUse as e:
        sock.close()
        return _fail(str(e), 1)
    from driftline.scorers.metrics import ScorerMetrics
    from driftline.scorers.registry import build_jobs
    from driftline.scorers.scheduler import ScoringService

    scorer_metrics = ScorerMetrics(rt.registry)
    try:
        scoring = ScoringService(build_jobs(settings, rt.store, scorer_metrics, rt.normalizer.pricer), scorer_metrics)
    except ValueError as e:
        rt.stop()
        sock.close()
        return _fail(str(e))
    from driftline.sli import SLIJob, options_from

    if settings.scorers_enabled:
        if settings.replica_index == 0:  # one replica serves SLIs, so each series exists once
            sli = SLIJob(rt.store, options_from(settings))
            rt.registry.register(sli.collector)  # only where the job runs: a stale SLI must show
            scoring.add_periodic("sli", sli.run_once, settings.sli_interval_s)
        scoring.start()
    port = sock.getsockname()[1]
    base = f"http://{settings.http_host}:{port}"
    demo = None
    if settings.demo:
        from driftline.demo import DemoTraffic

        # Demo traffic lands where the user can read it: the dev key's tenant when there is one.
        demo_key = dev_key or "dl_demo_" + secrets.token_urlsafe(16)
        if not dev_key:
            rt.auth.add_key(demo_key, "demo")
        demo = DemoTraffic(base, demo_key)
        demo.start()
    # Start-up objects (price tables, lexicons, the app) live for the whole process: freezing them
    # keeps the cyclic GC from walking them on every collection (measured 5-8% of ingest CPU).
    gc.collect()
    gc.freeze()
    server = uvicorn.Server(uvicorn.Config(create_app(rt), log_config=None, access_log=False))
    # uvicorn re-raises SIGINT/SIGTERM after its own shutdown, which would kill the process before
    # the runtime flushes. So the main thread owns the signals and uvicorn runs beside it.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    web = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="driftline-http")
    web.start()
    while not server.started and web.is_alive():  # the banner means "send now": wait until true
        stop.wait(0.02)
    print(
        f"Driftline {__version__} up: OTLP/HTTP {base}/v1/traces, API {base}/api/v1, "
        f"metrics {base}/metrics, OTLP/gRPC {settings.http_host}:{rt.grpc.port if rt.grpc else 'off'}, "
        f"data {settings.data_dir.resolve()}",
        file=sys.stderr,
    )
    try:
        while not stop.wait(0.5):
            if not web.is_alive():  # uvicorn failed on its own
                break
    finally:
        log.info("shutting down: stop accepting, flush, close")
        if demo is not None:  # a client of this server: its last batch must land before HTTP stops
            demo.stop()
        server.should_exit = True  # 1. stop accepting HTTP; in-flight requests finish
        web.join(settings.shutdown_timeout_s)
        scoring.stop(wait=True)  # 2. let a running scorer finish, start no other
        rt.stop()  # 3. stop gRPC, 4. flush the queue, 5. close the store, release the lock
        sock.close()
    return 0


@contextmanager
def _store_for(s: CommonSettings) -> Iterator[Store]:
    """The store of a one-off command, holding the data directory's lock when it is embedded."""
    from driftline.store import DataDirLock, Store, StoreConfig

    lock = DataDirLock(s.data_dir)
    if s.embedded:
        lock.acquire()  # DataDirInUse: the caller says so
    store = Store(StoreConfig(s.effective_clickhouse_url, s.database), s.retention_days)
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
    try:
        with _store_for(s) as store, steps("migrate", unit="statement") as step:
            applied = store.migrate(on_step=step)
            print(f"schema at version {max(store.schema_versions(), default=0)}; applied now: {applied or 'none'}")
    except DataDirInUse as e:
        return _fail(str(e), 1)
    return 0


def cmd_score_backfill(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from prometheus_client import CollectorRegistry

    from driftline.config import ConfigError, ScorerSettings, load_settings
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
    try:
        with _store_for(s) as store:
            store.migrate()
            jobs = {j.job.scorer.name: j.job for j in build_jobs(s, store, ScorerMetrics(CollectorRegistry()))}
            if args.scorer not in jobs:
                return _fail(f"unknown scorer {args.scorer!r} (known: {', '.join(sorted(jobs))})")
            r = jobs[args.scorer].backfill(since, until)
    except DataDirInUse as e:
        return _fail(str(e), 1)
    print(
        f"{args.scorer}: {r.scored} spans scored ({r.failed} failed) in {r.tenants} tenants "
        f"between {since.isoformat()} and {until.isoformat()}"
    )
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="driftline", description="Monitoring for LLM applications in production.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, help="YAML file of settings (keys: field names)")
        sp.add_argument("--data-dir", dest="data_dir", type=Path, help="overrides DRIFTLINE_DATA_DIR")
        sp.add_argument("--clickhouse-url", dest="clickhouse_url", help="overrides DRIFTLINE_CLICKHOUSE_URL")

    up = sub.add_parser("up", help="run everything in one process on the embedded store")
    common(up)
    up.add_argument("--host", dest="http_host", help="overrides DRIFTLINE_HTTP_HOST")
    up.add_argument("--http-port", dest="http_port", type=int, help="overrides DRIFTLINE_HTTP_PORT")
    up.add_argument("--grpc-port", dest="grpc_port", type=int, help="overrides DRIFTLINE_GRPC_PORT")
    up.add_argument("--demo", action="store_true", help="send demo LLM traffic to tenant 'demo'")
    up.set_defaults(func=cmd_up)

    mig = sub.add_parser("migrate", help="create or upgrade the schema")
    common(mig)
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
    bf.set_defaults(func=cmd_score_backfill)

    ev = sub.add_parser("eval", help="evaluate the hallucination scorer on labeled data")
    ev.add_argument("--config", type=Path, help="YAML file of settings (judge endpoint, model, key)")
    ev.add_argument("--halueval", type=Path, help="HaluEval QA JSONL (default: ../shared/data/halueval-qa/dev.jsonl)")
    ev.add_argument("--summedits", type=Path, help="SummEdits JSONL (default: ../shared/data/summedits/dev.jsonl)")
    ev.add_argument("--judge-limit", type=int, default=200, help="rows per set sent to the judge (0: all)")
    ev.set_defaults(func=cmd_eval)

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
