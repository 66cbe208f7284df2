"""The wheel ships the package folders whole and nothing else, and imports only what it installs.

The wheel is built from a copy of the tree with the project's own build backend (setuptools, from
the dev extra), offline. Then:
- its files are exactly the files of the package folders setup.py maps (code and data alike), so
  development tools (tools/: the dashboard builder, the load generator, the grounding model's
  training) stay out and the scorer's model, lexicon and the UI's templates stay in;
- every module in it imports only the standard library, Driftline itself, or a distribution that
  installing `driftline[server]` brings (its Requires-Dist, followed transitively), never a
  development-only package (grafana-foundation-sdk, hypothesis, pytest, ...).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info")


def _package_folders() -> dict[str, str]:
    """setup.py's ROOTS (import name -> folder), read from its source rather than copied here."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ROOTS" for t in node.targets):
            roots: dict[str, str] = ast.literal_eval(node.value)
            return roots
    raise AssertionError("setup.py has no ROOTS mapping")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    src = tmp_path_factory.mktemp("src")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in set(_package_folders().values()):
        shutil.copytree(ROOT / folder, src / folder, ignore=SKIP)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run([*cmd, "-q", "-w", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"wheel build failed (setuptools>=77 comes with the dev extra):\n{done.stderr}"
    (path,) = out.glob("driftline-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def _shipped(zf: zipfile.ZipFile) -> set[str]:
    return {n for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")}


def test_wheel_holds_the_package_folders_whole_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    expected: set[str] = set()
    for name, folder in _package_folders().items():
        prefix = name.replace(".", "/")
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT / folder)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix not in (".pyc", ".so"):
                expected.add(f"{prefix}/{rel.as_posix()}")
    shipped = _shipped(wheel)
    assert sorted(expected - shipped) == [], "files of the package folders missing from the wheel"
    assert sorted(shipped - expected) == [], "files in the wheel from outside the package folders"
    assert not [n for n in shipped if n.endswith(("/dashboards.py", "/loadgen.py", "/train.py", "/build_lexicon.py"))]


def _runtime_distributions(metadata: str) -> set[str]:
    """`driftline[server]` and everything it pulls in, from the wheel's own Requires-Dist."""
    wanted: list[tuple[str, frozenset[str]]] = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", "server")):
                wanted.append((req.name, frozenset(req.extras)))
    seen: set[str] = set()
    while wanted:
        name, extras = wanted.pop()
        key = canonicalize_name(name)
        if key in seen:
            continue
        seen.add(key)
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                wanted.append((req.name, frozenset(req.extras)))
    return seen


def _optional(node: ast.AST) -> bool:
    """An `if TYPE_CHECKING:` block, or a `try:` whose ImportError handler copes without the module."""
    if isinstance(node, ast.If):
        return "TYPE_CHECKING" in ast.unparse(node.test)
    if isinstance(node, ast.Try):
        caught = " ".join(ast.unparse(h.type) for h in node.handlers if h.type is not None)
        return "ImportError" in caught or "ModuleNotFoundError" in caught
    return False


def _imports(source: str) -> Iterator[tuple[str, list[str]]]:
    """(module, candidate module names) per import the module needs, optional imports left out."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if _optional(node):
            body: list[ast.stmt] = node.body  # type: ignore[attr-defined]
            skipped.update(id(n) for stmt in body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [alias.name]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [*(f"{node.module}.{a.name}" for a in node.names), node.module]


def _distribution_of(candidates: list[str], owners: dict[str, str]) -> str | None:
    for name in candidates:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            return owners.get(spec.origin)
    return None


def test_wheel_imports_only_what_installing_it_brings(wheel: zipfile.ZipFile) -> None:
    (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    runtime = _runtime_distributions(wheel.read(meta).decode())
    owners: dict[str, str] = {
        str(dist.locate_file(f)): canonicalize_name(dist.metadata["Name"])
        for dist in md.distributions()
        for f in dist.files or ()
        if f.suffix in (".py", ".so", ".pyd")
    }
    checked, bad = 0, []
    for name in sorted(_shipped(wheel)):
        if not name.endswith(".py"):
            continue
        for module, candidates in _imports(wheel.read(name).decode()):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top == "driftline":
                continue
            checked += 1
            dist = _distribution_of(candidates, owners)
            if dist not in runtime:
                bad.append(f"{name}: imports {module} from {dist or 'no installed distribution'}")
    assert checked > 50  # the walk saw the package's third-party imports
    assert bad == [], "\n".join(bad)
