"""`driftline eval --dataset NAME`: every scorer (the judges too, when configured) against a golden
dataset that reviewers built (golden.py), as a regression table; exit 1 when a scorer got worse
than the stored baseline.

Each record is replayed as the trace its answer came from: an LLM span with the record's input and
output, after a retrieval span holding its context. A scorer is compared on the records whose
`expected` names it (the label people said it should give, in its own label space); the others
are listed without figures. The baseline (per scorer: version, n, accuracy, kappa) is a JSON file,
written on the first run and with --update-baseline (which also accepts a worse run); a scorer is
worse when its accuracy falls more than --tolerance below the baseline's, whatever its version.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parser's options are built by the light install too: the rest is imported when run
    from driftline.scorers.base import Scorer, TraceContext

__all__ = ["EvalRow", "add_arguments", "evaluate_records", "main", "regressions"]

_T0 = datetime(2024, 1, 1, tzinfo=UTC)


def add_arguments(ev: argparse.ArgumentParser) -> None:
    """The dataset options of `driftline eval`."""
    g = ev.add_argument_group("golden datasets (review queues)")
    g.add_argument(
        "--dataset", help="a named dataset of review labels: run every scorer on it, compare with the baseline"
    )
    g.add_argument("--dataset-file", type=Path, help="a dataset exported as JSONL (GET .../datasets/NAME/export)")
    g.add_argument(
        "--tenant", default="default", help="the dataset's tenant, read from the local store (default: default)"
    )
    g.add_argument("--endpoint", help="read the dataset through a running Driftline's API instead of the store")
    g.add_argument("--api-key", dest="api_key", help="key for --endpoint (default: the data dir's dev key)")
    g.add_argument("--baseline", type=Path, help="baseline JSON (default: <data_dir>/eval-baselines/<dataset>.json)")
    g.add_argument("--update-baseline", action="store_true", help="store this run as the baseline")
    g.add_argument("--tolerance", type=float, default=0.0, help="accuracy drop allowed before a scorer counts as worse")


def _trace(record: dict[str, Any], tenant: str) -> tuple[dict[str, Any], TraceContext]:
    from driftline.scorers.base import TraceContext

    tid = str(record.get("trace_id") or "0" * 32)
    ctx_span = {
        "trace_id": tid, "span_id": "c" * 16, "parent_span_id": "", "operation": "retrieval", "name": "retrieve",
        "start_time": _T0, "retrieved_documents": json.dumps([{"content": str(record.get("context") or "")}]),
    }  # fmt: skip
    answer = {
        "trace_id": tid, "span_id": "a" * 16, "parent_span_id": "", "operation": "chat", "name": "chat",
        "tenant": tenant, "start_time": _T0 + timedelta(seconds=1), "end_time": _T0 + timedelta(seconds=2),
        "duration_ms": 1000.0, "status_code": "unset", "input_text": str(record.get("input") or ""),
        "output_text": str(record.get("output") or ""), "retrieved_documents": "", "system_prompt": "",
        "tool_calls": "", "events": "", "attributes": {},
    }  # fmt: skip
    return answer, TraceContext([ctx_span, answer])


@dataclass
class EvalRow:
    scorer: str
    version: str
    n: int
    accuracy: float | None
    kappa: float | None
    errors: int
    baseline: dict[str, Any] | None = None
    worse: bool = False


def evaluate_records(scorers: Sequence[Scorer], records: Sequence[dict[str, Any]], tenant: str) -> list[EvalRow]:
    from driftline.review.agreement import cohen_kappa, confusion

    out = []
    for s in scorers:
        pairs: list[tuple[str, str]] = []
        errors = 0
        for rec in records:
            expected = (rec.get("expected") or {}).get(s.name)
            if expected is None:
                continue
            span, trace = _trace(rec, tenant)
            if not s.applies(span):
                continue
            try:
                got = s.score(span, trace)
            except Exception:  # a scorer that raises on a record scores it wrong, and says so in the count
                errors += 1
                got = None
            pairs.append((str(expected), got.label if got is not None else "(none)"))
        labels = sorted({x for p in pairs for x in p})
        m = confusion(pairs, labels)
        acc = sum(a == b for a, b in pairs) / len(pairs) if pairs else None
        out.append(EvalRow(s.name, s.version, len(pairs), acc, cohen_kappa(m) if pairs else None, errors))
    return out


def regressions(rows: list[EvalRow], baseline: dict[str, Any], tolerance: float) -> list[EvalRow]:
    for r in rows:
        base = (baseline.get("scorers") or {}).get(r.scorer)
        r.baseline = base
        if base and r.accuracy is not None and base.get("accuracy") is not None:
            r.worse = r.accuracy < float(base["accuracy"]) - tolerance
    return [r for r in rows if r.worse]


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def print_table(name: str, records: int, rows: list[EvalRow]) -> None:
    print(f"dataset {name}: {records} records")
    print(
        f"{'scorer':<24} {'version':<18} {'n':>5} {'accuracy':>9} {'kappa':>7} {'baseline':>9} {'change':>8}  verdict"
    )
    for r in rows:
        base = r.baseline.get("accuracy") if r.baseline else None
        change = r.accuracy - base if r.accuracy is not None and base is not None else None
        if r.n == 0:
            verdict = "no labels for it"
        elif r.worse:
            verdict = "WORSE"
        elif r.baseline is None:
            verdict = "new"
        else:
            verdict = "ok"
        if r.errors:
            verdict += f" ({r.errors} errors)"
        print(f"{r.scorer:<24} {r.version:<18} {r.n:>5} {_fmt(r.accuracy):>9} {_fmt(r.kappa, '.2f'):>7} "
              f"{_fmt(base):>9} {_fmt(change, '+.3f'):>8}  {verdict}")  # fmt: skip


def _records_from_api(endpoint: str, key: str, dataset: str) -> list[dict[str, Any]]:
    import httpx

    r = httpx.get(
        f"{endpoint.rstrip('/')}/api/v1/review/datasets/{dataset}/export",
        headers={"Authorization": f"Bearer {key}"}, timeout=60,
    )  # fmt: skip
    if r.status_code != 200:
        raise LookupError(f"{endpoint} answered {r.status_code} for dataset {dataset!r}: {r.text[:200]}")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def _records_from_store(settings: Any, tenant: str, dataset: str) -> list[dict[str, Any]]:
    from driftline.store import DataDirLock, Store
    from driftline.store.queries.review import dataset_records

    lock = DataDirLock(settings.data_dir)
    if settings.embedded:
        lock.acquire()  # DataDirInUse: a server holds it; the caller goes through the server
    store = Store(settings.store_config(), settings.retention_days)
    try:
        store.migrate()
        return [json.loads(r) for r in dataset_records(store, tenant, dataset)]
    finally:
        store.close()
        lock.release()


def load_records(args: argparse.Namespace, settings: Any) -> tuple[str, list[dict[str, Any]]]:
    """(dataset name, records) from --dataset-file, --endpoint, the local store, or the server that
    holds the local store."""
    from driftline.process import ENDPOINT_FILE
    from driftline.store import DataDirInUse

    if args.dataset_file:
        lines = Path(args.dataset_file).read_text().splitlines()
        return args.dataset or Path(args.dataset_file).stem, [json.loads(x) for x in lines if x.strip()]
    key_file = settings.data_dir / "dev-api-key"
    key = args.api_key or (key_file.read_text().strip() if key_file.exists() else "")
    if args.endpoint:
        return args.dataset, _records_from_api(args.endpoint, key, args.dataset)
    try:
        return args.dataset, _records_from_store(settings, args.tenant, args.dataset)
    except DataDirInUse:
        endpoint_file = settings.data_dir / ENDPOINT_FILE
        if not endpoint_file.exists():
            raise
        return args.dataset, _records_from_api(endpoint_file.read_text().strip(), key, args.dataset)


def main(args: argparse.Namespace, settings: Any) -> int:
    """Run the dataset evaluation; 0 when no scorer got worse, 1 when one did, 2 on bad input."""
    from prometheus_client import CollectorRegistry

    from driftline.scorers.metrics import ScorerMetrics
    from driftline.scorers.registry import build_scorers
    from driftline.store import DataDirInUse

    try:
        name, records = load_records(args, settings)
    except (OSError, ValueError, LookupError, DataDirInUse) as e:
        print(f"driftline: error: {e}", file=sys.stderr)
        return 2
    if not records:
        print(f"driftline: error: dataset {name!r} is empty or unknown (tenant {args.tenant})", file=sys.stderr)
        return 2
    scorers = build_scorers(settings, ScorerMetrics(CollectorRegistry()))
    rows = evaluate_records(scorers, records, args.tenant)
    path = args.baseline or settings.data_dir / "eval-baselines" / f"{name}.json"
    baseline = json.loads(path.read_text()) if path.exists() else {}
    worse = regressions(rows, baseline, args.tolerance)
    print_table(name, len(records), rows)
    if args.update_baseline or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"dataset": name, "records": len(records), "saved_at": datetime.now(UTC).isoformat(), "scorers": {
            r.scorer: {"version": r.version, "n": r.n, "accuracy": r.accuracy, "kappa": r.kappa}
            for r in rows if r.n
        }}  # fmt: skip
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print(f"baseline saved: {path}")
    if worse:
        names = ", ".join(r.scorer for r in worse)
        if args.update_baseline:  # the person asked for this run to be the bar: reported, accepted
            print(f"worse than the old baseline, accepted as the new one: {names}", file=sys.stderr)
            return 0
        print(f"worse than the baseline: {names}", file=sys.stderr)
        return 1
    return 0
