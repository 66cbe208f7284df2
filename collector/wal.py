"""The spool: a write-ahead log of accepted span batches on disk.

Every accepted batch is appended here *before* the receiver answers 200: the request body as it
came (cheap: one write), or, when redaction is on, the normalized and redacted rows as an Arrow IPC
stream, so that no secret ever reaches the disk. The writer inserts batches into ClickHouse in log order
and moves a checkpoint forward; whatever lies past the checkpoint is the spool, replayed in order
when the store comes back or the process restarts. So an accepted span is in ClickHouse or in
this log, across a store outage, a crash or a SIGKILL (the page cache outlives the process;
`fsync` on segment roll and on close bounds what a power loss could take).

`max_bytes` bounds the *backlog*: records the store refused or has not been offered, which only
the disk holds. Records whose batches are still in memory (queued for the next flush) do not
count, so a small spool in front of a healthy store keeps accepting. The spool holds every
tenant's prompts: its directory is 0700 and its files 0600.

Record: magic u32 | payload length u32 | crc32 u32 | payload. Payload: kind u8, then for kind 1
(raw OTLP protobuf) tenant length u16 | tenant | body, for kind 2 an Arrow IPC stream. A record
torn by a crash fails its length or CRC check and ends the log there.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

__all__ = ["CorruptRecord", "LogRecord", "RecordTooLarge", "SpanLog", "SpoolFull", "private_dir", "write_private"]

log = logging.getLogger(__name__)

_MAGIC = 0x44464C31  # "DFL1"
_HEADER = struct.Struct("<III")
_SEGMENT_BYTES = 64 * 1024 * 1024
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


class CorruptRecord(OSError):
    """A record in the middle of the log fails its checks (the disk changed it). `data` holds the
    bytes from `position` up to `resume_at`, the next record that passes them (or the end of its
    segment, or the `until` of the read)."""

    def __init__(self, position: int, resume_at: int, data: bytes) -> None:
        super().__init__(f"spool record at {position} is corrupt; the next good one is at {resume_at}")
        self.position = position
        self.resume_at = resume_at
        self.data = data


class SpoolFull(Exception):
    """The spool's backlog (not in memory, not in the store) reached `max_bytes`: retry later."""


class RecordTooLarge(Exception):
    """One record is larger than `max_bytes` on its own: no retry can ever spool it."""


_RAW, _ARROW = 1, 2
_TENANT_LEN = struct.Struct("<H")
DIR_MODE, FILE_MODE = 0o700, 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by this user only."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)  # mkdir's mode is masked by umask, and an old directory keeps its own
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a whole file atomically (tmp + rename), mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class LogRecord:
    position: int  # global byte offset of the record
    next_position: int
    table: pa.Table | None  # kind 2
    tenant: str = ""  # kind 1
    body: bytes = b""  # kind 1: a serialized ExportTraceServiceRequest


def encode_table(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode_table(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


def _next_good_record(data: bytes) -> int:
    """Offset in `data` (which starts with a bad record) of the next record whose magic, length and
    CRC hold; len(data) when none does."""
    magic = struct.pack("<I", _MAGIC)
    i = 0
    while (i := data.find(magic, i + 1)) >= 0 and i + _HEADER.size <= len(data):
        _, n, crc = _HEADER.unpack_from(data, i)
        body = data[i + _HEADER.size : i + _HEADER.size + n]
        if len(body) == n and zlib.crc32(body) == crc:
            return i
    return len(data)


def _record(pos: int, nxt: int, payload: bytes) -> LogRecord:
    if payload[0] == _ARROW:
        return LogRecord(pos, nxt, decode_table(payload[1:]))
    (n,) = _TENANT_LEN.unpack_from(payload, 1)
    start = 1 + _TENANT_LEN.size
    return LogRecord(pos, nxt, None, payload[start : start + n].decode(), payload[start + n :])


class SpanLog:
    def __init__(self, directory: Path, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        """`clock`: wall-clock seconds (a record's age after a restart comes from its segment
        file's mtime); tests pass a fake one."""
        self.dir = private_dir(directory)
        self._clock = clock
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._checkpoint_path = self.dir / "checkpoint"
        self.checkpoint = self._read_checkpoint()
        self._segments = self._recover()  # sorted segment start offsets
        self.head = self._segment_end(self._segments[-1]) if self._segments else self.checkpoint
        # a checkpoint can never pass the data it covers
        self.checkpoint = min(self.checkpoint, self.head)
        self._fh: BinaryIO | None = None
        self._times: dict[int, float] = {}  # record position -> append time (this process only)

    # -- layout --------------------------------------------------------------------------
    def _seg_path(self, start: int) -> Path:
        return self.dir / f"{start:020d}.wal"

    def _segment_end(self, start: int) -> int:
        return start + self._seg_path(start).stat().st_size

    def _read_checkpoint(self) -> int:
        try:
            return int(self._checkpoint_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _recover(self) -> list[int]:
        """Find segments; cut a torn tail record left by a crash."""
        starts = sorted(int(p.stem) for p in self.dir.glob("*.wal"))
        for path in [self._seg_path(start) for start in starts] + [self._checkpoint_path]:
            if path.exists():  # files of an older version were 0644
                os.chmod(path, FILE_MODE)
        if starts:
            last = self._seg_path(starts[-1])
            good = 0
            with last.open("rb") as fh:
                data = fh.read()
            while good + _HEADER.size <= len(data):
                magic, n, crc = _HEADER.unpack_from(data, good)
                end = good + _HEADER.size + n
                if magic != _MAGIC or end > len(data) or zlib.crc32(data[good + _HEADER.size : end]) != crc:
                    break
                good = end
            if good != len(data):
                log.warning("spool: cut a torn record at %s+%d (%d bytes)", last.name, good, len(data) - good)
                with last.open("r+b") as fh:
                    fh.truncate(good)
        return starts

    # -- write side ----------------------------------------------------------------------
    @property
    def pending_bytes(self) -> int:
        return self.head - self.checkpoint

    def backlog_bytes(self, held_from: int | None) -> int:
        """Bytes between the checkpoint and `held_from`, the oldest record memory still holds
        (None: memory holds none, so everything pending is backlog)."""
        end = self.head if held_from is None else min(held_from, self.head)
        return max(0, end - self.checkpoint)

    def append_table(self, table: pa.Table, held_from: int | None = None) -> int:
        """Append normalized rows; return the record's position. Raises SpoolFull when the backlog
        before `held_from` (see backlog_bytes) and this record exceed max_bytes."""
        return self._append(bytes([_ARROW]) + encode_table(table), held_from)

    def append_raw(self, tenant: str, body: bytes, held_from: int | None = None) -> int:
        """Append an OTLP request body as received (decompressed)."""
        t = tenant.encode()
        return self._append(bytes([_RAW]) + _TENANT_LEN.pack(len(t)) + t + body, held_from)

    def _append(self, payload: bytes, held_from: int | None) -> int:
        rec = _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if len(rec) > self.max_bytes:
                raise RecordTooLarge(f"a record of {len(rec)} bytes is larger than the spool ({self.max_bytes} bytes)")
            backlog = self.backlog_bytes(held_from)
            if backlog + len(rec) > self.max_bytes:
                raise SpoolFull(f"spool holds {backlog} bytes the store has not taken, of {self.max_bytes}")
            if self._fh is None or self.head - self._segments[-1] >= _SEGMENT_BYTES:
                self._roll()
            assert self._fh is not None
            self._fh.write(rec)
            self._fh.flush()  # into the page cache: survives the process, not the machine
            pos = self.head
            self.head += len(rec)
            self._times[pos] = self._clock()
            return pos

    def _roll(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
            self._fh.close()
        if not self._segments or self.head - self._segments[-1] >= _SEGMENT_BYTES:
            self._segments.append(self.head)
        fd = os.open(self._seg_path(self._segments[-1]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        self._fh = os.fdopen(fd, "ab")

    # -- read side -----------------------------------------------------------------------
    def read_from(self, position: int, until: int | None = None) -> Iterator[LogRecord]:
        """Records from `position` (a record boundary) up to `until` or the head, in order."""
        end = self.head if until is None else until
        for start in list(self._segments):
            seg_end = self._segment_end(start)
            if seg_end <= position or start >= end:
                continue
            with self._seg_path(start).open("rb") as fh:
                off = max(position, start)
                fh.seek(off - start)
                while off < min(seg_end, end):
                    header = fh.read(_HEADER.size)
                    if len(header) < _HEADER.size:
                        break
                    magic, n, crc = _HEADER.unpack(header)
                    payload = fh.read(n)
                    if magic != _MAGIC or len(payload) != n or zlib.crc32(payload) != crc:
                        fh.seek(off - start)
                        rest = fh.read(min(seg_end, end) - off)
                        skip = _next_good_record(rest)
                        raise CorruptRecord(off, off + skip, rest[:skip])
                    nxt = off + _HEADER.size + n
                    yield _record(off, nxt, payload)
                    off = nxt

    def oldest_age_s(self) -> float:
        if self.pending_bytes == 0:
            return 0.0
        t = self._times.get(self.checkpoint)
        if t is None:  # from before a restart: the segment file's age is the honest bound
            seg = max((s for s in self._segments if s <= self.checkpoint), default=None)
            t = self._seg_path(seg).stat().st_mtime if seg is not None else self._clock()
        return max(0.0, self._clock() - t)

    def advance(self, position: int) -> None:
        """Everything before `position` is in the store: move the checkpoint, drop old segments."""
        with self._lock:
            if position <= self.checkpoint:
                return
            self.checkpoint = position
            write_private(self._checkpoint_path, str(position).encode())
            for p in [p for p in self._times if p < position]:
                del self._times[p]
            # A segment is done when the next one starts at or before the checkpoint.
            while len(self._segments) > 1 and self._segments[1] <= position:
                self._seg_path(self._segments.pop(0)).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
                self._fh = None
