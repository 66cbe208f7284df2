"""The shape of the tree, checked: the import graph runs one way, SQL lives in the store only,
and the tree has no symlinks (so grep and layout tools see every file).

    collector -> store    scorers -> store    never store -> collector or scorers,
    and collector and scorers never import each other.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The top-level folders that are packages of `driftline` (setup.py package_dir) and the store.
PACKAGES = {"collector": ROOT / "collector", "scorers": ROOT / "scorers", "store": ROOT / "driftline" / "store"}
MODULE = {"collector": "driftline.collector", "scorers": "driftline.scorers", "store": "driftline.store"}
FORBIDDEN = {
    "store": ("collector", "scorers"),
    "collector": ("scorers",),
    "scorers": ("collector",),
}
# Where SQL text may appear: the store, and tools that inspect or load the store from outside.
SQL_ALLOWED = ("driftline/store/", "tests/", "bench/", "tools/", "build/", ".venv/")
_SQL = re.compile(
    r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+INTO\b|\b(?:CREATE|ALTER|DROP|DETACH|ATTACH|TRUNCATE)\s+(?:TABLE|DATABASE)\b"
)
# The raw client and its pool stay behind the store's named methods (its exception types may be
# imported: classifying errors by type needs them).
_RAW_CLIENT = re.compile(
    r"\bimport\s+clickhouse_connect\b|\bfrom\s+clickhouse_connect(?:\.driver\.client)?\s+import\b"
    r"|clickhouse_connect\.get_client\b|\b(?:open_client|ClientPool)\b"
)


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path, package: str) -> set[str]:
    """Every module `path` imports, relative imports resolved against `package` (its own package)."""
    tree = ast.parse(path.read_text(), str(path))
    here = package.split(".") + list(path.relative_to(PACKAGES_BY_MODULE[package]).parent.parts)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


PACKAGES_BY_MODULE = {MODULE[k]: v for k, v in PACKAGES.items()}


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_import_graph_runs_one_way(name: str) -> None:
    files = _python_files(PACKAGES[name])
    assert files, f"no modules found under {PACKAGES[name]}"
    bad = []
    for path in files:
        for mod in _imports(path, MODULE[name]):
            for other in FORBIDDEN[name]:
                target = MODULE[other]
                if mod == target or mod.startswith(target + "."):
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_import_check_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    store = PACKAGES["store"]
    probe = store / "queries" / "_probe_layout_test.py"
    assert not probe.exists()
    probe.write_text("from ...collector import errors\nimport driftline.scorers.base\n")
    try:
        found = _imports(probe, "driftline.store")
    finally:
        probe.unlink()
    assert "driftline.collector.errors" in found and "driftline.scorers.base" in found


def _tracked_python() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in out.stdout.split() if p]


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # an f-string: its literal parts, joined
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            out.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


def test_no_sql_outside_the_store() -> None:
    """Routes and jobs call the store's named query methods; they never write SQL."""
    files = [p for p in _tracked_python() if not p.startswith(SQL_ALLOWED)]
    assert any(p.startswith("driftline/") for p in files) and any(p.startswith("scorers/") for p in files)
    bad = [
        f"{p}:{line}: {text.strip()[:80]!r}"
        for p in files
        for line, text in _string_literals(ROOT / p)
        if _SQL.search(text)
    ]
    assert not bad, "SQL outside driftline/store:\n" + "\n".join(bad)


def test_no_raw_client_outside_the_store() -> None:
    files = [p for p in _tracked_python() if not p.startswith(SQL_ALLOWED)]
    bad = [p for p in files if _RAW_CLIENT.search((ROOT / p).read_text())]
    assert not bad, "a ClickHouse client used outside driftline/store: " + ", ".join(bad)


def test_the_raw_client_check_finds_clients() -> None:
    assert _RAW_CLIENT.search("import clickhouse_connect") and _RAW_CLIENT.search("clickhouse_connect.get_client(")
    assert _RAW_CLIENT.search("from clickhouse_connect.driver.client import Client")
    assert _RAW_CLIENT.search("from driftline.store.connection import open_client")
    assert not _RAW_CLIENT.search("from clickhouse_connect.driver.exceptions import DatabaseError")


def test_the_sql_check_finds_sql() -> None:
    sql = "SELECT trace_id, count() AS n\nFROM {db}.spans WHERE tenant = {tenant:String}"
    assert _SQL.search(sql) and _SQL.search("INSERT INTO t VALUES") and _SQL.search("DROP TABLE x")
    assert not _SQL.search("one INSERT per flush") and not _SQL.search("Select a model from the list")


def test_no_symlinks_in_the_tree() -> None:
    out = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True)
    links = [line.split("\t", 1)[1] for line in out.stdout.splitlines() if line.startswith("120000 ")]
    assert not links, f"symlinks in the tree: {links}"


def test_the_charts_rules_are_the_alert_rules() -> None:
    """The chart carries a copy of alerts/rules.yml (a copy, not a link: see the test above)."""
    chart = ROOT / "helm" / "driftline" / "files" / "rules.yml"
    assert chart.read_bytes() == (ROOT / "alerts" / "rules.yml").read_bytes(), (
        "helm/driftline/files/rules.yml is stale: cp alerts/rules.yml helm/driftline/files/rules.yml"
    )


def _string_collections(path: Path) -> list[tuple[int, frozenset[str]]]:
    """Tuple, list and set literals of two or more plain strings (frozenset({...}) included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Tuple | ast.List | ast.Set) or len(node.elts) < 2:
            continue
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if len(values) == len(node.elts):
            out.append((node.lineno, frozenset(values)))
    return out


def test_shared_names_are_defined_once() -> None:
    """The SLI label set, the LLM operations and the tool-failure classes live in
    driftline/vocabulary.py only (which imports nothing of Driftline, so every package may use it)."""
    from driftline import vocabulary

    shared = {
        frozenset(vocabulary.SLI_LABELS): "SLI_LABELS",
        frozenset(vocabulary.LLM_OPERATIONS): "LLM_OPERATIONS",
        frozenset(vocabulary.MODEL_CALL_OPERATIONS): "MODEL_CALL_OPERATIONS",
        frozenset(vocabulary.PRICED_OPERATIONS): "PRICED_OPERATIONS",
        frozenset(vocabulary.TOOL_FAILURE_CLASSES): "TOOL_FAILURE_CLASSES",
    }
    home = "driftline/vocabulary.py"
    files = [p for p in _tracked_python() if not p.startswith(("tests/", "build/", ".venv/")) and p != home]
    again = [
        f"{p}:{line} repeats {shared[values]}"
        for p in files
        for line, values in _string_collections(ROOT / p)
        if values in shared
    ]
    assert not again, "\n".join(again)
    assert {line_values[1] for line_values in _string_collections(ROOT / home)} >= {
        frozenset(vocabulary.SLI_LABELS),
        frozenset(vocabulary.TOOL_FAILURE_CLASSES),
    }  # the check reads the literals it means
    tree = ast.parse((ROOT / home).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("driftline")]
