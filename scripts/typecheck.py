"""mypy over the package as it is imported: `driftline`, with `collector/` and `scorers/` inside it.

The build maps the top-level `collector/` and `scorers/` folders to `driftline.collector` and
`driftline.scorers` (setup.py). Python's import system follows that mapping in an editable install;
mypy does not (it reads the file tree, not import hooks: pypa/setuptools#3518). So this mirrors the
sources into build/typecheck in the imported layout (copies keep their mtimes, so mypy's cache stays
warm), runs mypy there, and prints paths as they are in the repository.

    python scripts/typecheck.py [mypy args]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT / "build" / "typecheck"
# repository folder -> where it sits in the imported layout
LAYOUT = {
    "driftline": "driftline",
    "collector": "driftline/collector",
    "scorers": "driftline/scorers",
    "tests": "tests",
    "bench": "bench",
    "tools": "tools",
}
KINDS = (".py", ".pyi", "py.typed")


def _sources(folder: Path) -> dict[Path, Path]:
    out: dict[Path, Path] = {}
    for p in folder.rglob("*"):
        if p.is_file() and p.name.endswith(KINDS) and "__pycache__" not in p.parts:
            out[p.relative_to(folder)] = p
    return out


def sync() -> None:
    wanted: dict[Path, Path] = {}
    for src, dst in LAYOUT.items():
        for rel, path in _sources(ROOT / src).items():
            wanted[MIRROR / dst / rel] = path
    for target, path in wanted.items():
        st = path.stat()
        try:
            tst = target.stat()
            if tst.st_mtime_ns == st.st_mtime_ns and tst.st_size == st.st_size:
                continue
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for dst in {d.split("/")[0] for d in LAYOUT.values()}:
        for p in (MIRROR / dst).rglob("*"):
            if p.is_file() and p.name.endswith(KINDS) and p not in wanted:
                p.unlink()


def _repo_path(line: str) -> str:
    """build/typecheck/driftline/collector/x.py -> collector/x.py (longest mapping first)."""
    for src, dst in sorted(LAYOUT.items(), key=lambda kv: -len(kv[1])):
        if line.startswith(dst + "/"):
            return src + line[len(dst) :]
    return line


def main(argv: list[str]) -> int:
    sync()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(MIRROR / ".mypy_cache"), *argv]  # fmt: skip
    proc = subprocess.run(cmd, cwd=MIRROR, capture_output=True, text=True, env=os.environ.copy(), check=False)
    for line in proc.stdout.splitlines():
        print(_repo_path(line))
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
