"""The normalize path ships compiled with mypyc (setup.py). In CI the compiled build is the one
under test; anywhere, a compiled module older than its source would run stale code."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
COMPILED = re.findall(r'"(driftline/collector/[\w/]+)\.py"', (ROOT / "setup.py").read_text())


def test_the_compiled_list_names_real_modules() -> None:
    assert len(COMPILED) >= 10
    for path in COMPILED:
        assert (ROOT / f"{path}.py").exists(), path


@pytest.mark.parametrize("path", COMPILED)
def test_compiled_module_is_current(path: str) -> None:
    module = importlib.import_module(path.replace("/", "."))
    loaded = Path(str(module.__file__))
    if IN_CI:
        assert loaded.suffix == ".so", f"{path} runs as pure Python: the mypyc build did not happen"
    if loaded.suffix == ".so":
        source = (ROOT / f"{path}.py").resolve()
        assert loaded.resolve().stat().st_mtime >= source.stat().st_mtime, (
            f"{loaded.name} is older than {source.name}: reinstall (make install-dev) to recompile"
        )
