"""docs/sizing.md: every measured figure names the benchmark command that printed it, and that
command runs as written (the script exists and takes every option the doc gives it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "sizing.md"
COMMAND = re.compile(r"`python (bench/[\w]+\.py)((?: --[\w-]+(?: [^`\s-][^`\s]*)?)*)`")


def _figure_rows() -> list[str]:
    text = DOC.read_text()
    section = text.split("## Figures", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|") and not set(line) <= {"|", "-", " ", ":"}][1:]


def test_every_figure_cites_its_benchmark_command() -> None:
    rows = _figure_rows()
    assert len(rows) >= 5, "the figures table lost rows"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert re.search(r"\d", cells[1]), f"no figure in: {row}"
        assert COMMAND.search(row), f"no `python bench/...py` command in: {row}"


def test_the_cited_commands_exist_with_their_options() -> None:
    helps: dict[str, str] = {}
    for script, opts in COMMAND.findall(DOC.read_text()):
        path = ROOT / script
        assert path.exists(), script
        if script not in helps:
            proc = subprocess.run(
                [sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120, check=False
            )
            assert proc.returncode == 0, proc.stderr
            helps[script] = proc.stdout
        for opt in re.findall(r"--[\w-]+", opts):
            assert opt in helps[script], f"{script} has no option {opt}"
