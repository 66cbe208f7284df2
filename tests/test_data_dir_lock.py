"""The data directory holds every tenant's prompts: whoever takes its lock first (a server, or a
one-off command such as `driftline migrate`) leaves it private to the user, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

from driftline.store import DataDirLock


def _mode(p: Path) -> str:
    return oct(p.stat().st_mode & 0o777)


def test_the_lock_creates_the_data_dir_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        lock = DataDirLock(tmp_path / "new" / "data")
        lock.acquire()
    finally:
        os.umask(old)
    try:
        assert _mode(tmp_path / "new" / "data") == "0o700"
        assert _mode(tmp_path / "new" / "data" / ".lock") == "0o600"
    finally:
        lock.release()


def test_the_lock_makes_an_old_open_data_dir_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # what an older version left
    (data / ".lock").touch(mode=0o644)
    lock = DataDirLock(data)
    lock.acquire()
    try:
        assert (_mode(data), _mode(data / ".lock")) == ("0o700", "0o600")
    finally:
        lock.release()
