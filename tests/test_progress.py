"""Long commands show a progress bar on a terminal's stderr, and nothing when stderr is not a TTY.

The commands run as a user runs them, in their own process; the terminal is a real pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

ENV = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}


def _run(args: list[str], env: dict[str, str], tty: bool) -> tuple[str, str]:
    """(stdout, stderr) of `driftline ARGS`; stderr is a pseudo-terminal when `tty`."""
    cmd = [sys.executable, "-m", "driftline.cli", *args]
    if not tty:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr
    master, slave = pty.openpty()
    # 24 x 100, as a terminal window has; a fresh pseudo-terminal is 0 x 0, where no bar fits.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=slave) as proc:
        os.close(slave)
        chunks: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(master, chunks))
        reader.start()
        assert proc.stdout is not None
        stdout = proc.stdout.read().decode()
        assert proc.wait(timeout=300) == 0
    reader.join(30)
    os.close(master)
    return stdout, b"".join(chunks).decode(errors="replace")


def _drain(master: int, chunks: list[bytes]) -> None:
    """The terminal's side: read until the command closes its end."""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer is gone
            return
        if not data:
            return
        chunks.append(data)


def _labelled_set(tmp_path: Path) -> Path:
    passage = "The Eiffel Tower was completed in March 1889 for the World's Fair in Paris."
    path = tmp_path / "set.jsonl"
    rows = [("right", "In March 1889.", False), ("wrong", "In 1925, in Berlin.", True)]
    path.write_text(
        "".join(
            json.dumps({"id": f"q{i}-{tag}", "knowledge": passage, "question": "When?", "answer": answer,
                        "hallucinated": wrong}) + "\n"
            for i, (tag, answer, wrong) in enumerate(rows)
        )
    )  # fmt: skip
    return path


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_eval_progress_bar(tmp_path: Path, tty: bool) -> None:
    labelled = str(_labelled_set(tmp_path))
    out, err = _run(["eval", "--halueval", labelled, "--summedits", labelled], ENV, tty)
    assert "faithful " in out and "%|" not in out and "\r" not in out  # stdout is the table only
    if tty:
        assert "faithful:   0%|" in err and "0/44" in err and "answer/s" in err
        assert "halueval-qa:   0%|" in err and "0/2" in err
    else:
        assert "%|" not in err and "\r" not in err


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
def test_migrate_progress_bar(tmp_path: Path, tty: bool) -> None:
    from driftline.store.schema import MIGRATIONS

    statements = sum(len(m.statements) for m in MIGRATIONS)
    env = {**ENV, "DRIFTLINE_DATA_DIR": str(tmp_path / "data")}
    out, err = _run(["migrate"], env, tty)
    assert out.startswith(f"schema at version {MIGRATIONS[-1].version}") and "%|" not in out
    if tty:
        assert "migrate:   0%|" in err and f"0/{statements}" in err and "statement/s" in err
        assert f"1: {MIGRATIONS[0].name}" in err  # which migration is running
    else:
        assert "%|" not in err and "\r" not in err
