"""The ClickHouse HTTP interface on loopback, served by the real ClickHouse engine (chDB).

Driftline's production store path is clickhouse-connect's HTTP client talking to a ClickHouse
server. No server can be installed in the test environment, so this fixture speaks the server's
HTTP protocol (https://clickhouse.com/docs/interfaces/http) in a background thread of the test
process and runs every statement on chDB, the same engine a server embeds. Only the transport is
emulated; parsing, types, formats, errors and storage are ClickHouse's own.

    with ClickHouseHTTPServer(username="u", password="p") as server:
        client = clickhouse_connect.get_client(dsn=server.url)

What it implements, modelled on ClickHouse's HTTPHandler:
- ``/ping`` and ``/`` without a query answer ``Ok.``; queries come in the ``query`` URL parameter
  and/or the POST body (concatenated with a newline, as the server does), or as multipart form
  fields (``form_encode_query_params``);
- ``database``, ``default_format``, ``param_*`` (server-side binding through chDB's own
  ``{name:Type}`` parameters), every other non-transport URL parameter applied as a setting
  (an unknown one fails with UNKNOWN_SETTING, as on a server);
- ``INSERT ... FORMAT <fmt>`` with the data in the body (Native, Arrow, anything chDB reads),
  handed to chDB's streaming-insert API; ``Content-Encoding`` lz4 (clickhouse-connect's one frame
  per block), zstd, gzip, deflate, xz, bz2; chunked transfer encoding; response compression when
  the client sends ``Accept-Encoding`` and ``enable_http_compression=1`` (the server's preference
  order: gzip first);
- errors as the server sends them: ``Code: N. DB::Exception: ... (NAME) (version ...)`` with
  ``X-ClickHouse-Exception-Code`` and the HTTP status of ``exceptionCodeToHTTPStatus.cpp``;
  wrong credentials answer 403 with code 516; multi-statements are refused; GET is read-only;
  chDB's own setting defaults (``implicit_select=1``, ``allow_introspection_functions=1``) are
  put back to the server's, so a query that only chDB accepts fails here as it would in production;
- ``session_id``: a session keeps its own chDB connection (SET, USE, temporary tables persist),
  is held for the whole request, and a concurrent request on it fails with SESSION_IS_LOCKED
  (373) like a server: one clickhouse-connect client shared by threads fails here too;
- ``X-ClickHouse-Summary``, ``-Query-Id``, ``-Format``, ``-Timezone``, ``-Server-Display-Name``;
- ``query_log``: each finished statement's text with the rows it read from tables and the rows it
  returned (the ``read_rows`` and ``result_rows`` of the server's ``system.query_log``), the last
  10,000, so a test can see what a piece of code asked the store for.

The chDB constraint: a process hosts ONE chDB engine, bound to one data path. Opening a second,
different path while any connection to the first is open raises RuntimeError ("EmbeddedServer
already initialized with path ..."); once every connection is closed another path can be opened.
So when a test also uses the embedded backend (``chdb:///path``) it must pass that same path as
``data_dir`` here (or hand ``server.data_dir`` to the embedded client): both then share one
engine and see the same tables. The server holds one connection for its whole life (until
``close()``), which keeps the engine, and with it the data, alive across ``stop()``/``start()``.
A server that is never closed keeps the engine, so other paths stay unavailable to the process.

Not emulated: the native-protocol probe (``client_protocol_version``: chDB cannot write the
per-block BlockInfo, so clients fall back to protocol 0, as behind a proxy that strips it);
``compress``/``decompress`` (ClickHouse's internal block compression) and external data tables
(both answer NOT_IMPLEMENTED); brotli; progress headers; streaming responses (a result is
computed whole, then sent, as with ``wait_end_of_query=1``, so errors never arrive mid-body);
query cancellation, KILL, quotas, roles, and any user but the one configured; ``param_*`` on an
``INSERT ... FORMAT`` statement; ``result_rows`` in the summary of a SELECT.
"""

from __future__ import annotations

import builtins
import bz2
import gzip
import hmac
import importlib
import io
import json
import logging
import lzma
import os
import re
import selectors
import shutil
import socket
import tempfile
import threading
import time
import uuid
import zlib
from base64 import b64decode
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, cast
from urllib.parse import parse_qsl, quote, urlsplit

import lz4.frame
import zstandard

if TYPE_CHECKING:
    from socketserver import _RequestType

__all__ = ["ClickHouseError", "ClickHouseHTTPServer", "LoggedQuery"]

logger = logging.getLogger(__name__)

# chdb's Python layer is untyped; it is reached through the small typed surface below.
_chdb: Any = importlib.import_module("chdb")


class _QueryResult(Protocol):
    def bytes(self) -> builtins.bytes: ...
    def rows_read(self) -> int: ...  # chDB: the rows of the result
    def storage_rows_read(self) -> int: ...  # chDB: the rows read from tables
    def bytes_read(self) -> int: ...  # chDB: the bytes of the result
    def storage_bytes_read(self) -> int: ...  # chDB: the bytes read from tables
    def rows_written(self) -> int: ...
    def bytes_written(self) -> int: ...


class _InsertResult(Protocol):
    rows_written: int
    bytes_written: int


class _Inserter(Protocol):
    def append(self, data: bytes) -> None: ...
    def finish(self) -> _InsertResult: ...
    def cancel(self) -> None: ...


class _Connection(Protocol):
    def query(self, query: str, format: str = ..., params: dict[str, str] | None = ...) -> _QueryResult: ...
    def send_insert(self, query: str, format: str = ...) -> _Inserter: ...
    def close(self) -> None: ...


def _connect(path: str) -> _Connection:
    return cast(_Connection, _chdb.connect(path))


# chDB changes a few setting defaults for notebook use; requests run with the server's instead,
# or a query that only works in chDB (`SELECT`-less `1 + 1`) would pass here and fail in production.
_SERVER_DEFAULTS = "implicit_select=0&allow_introspection_functions=0"


# --- errors -----------------------------------------------------------------------------------

# ClickHouse error codes this module raises itself (src/Common/ErrorCodes.cpp).
_BAD_ARGUMENTS = 36
_NOT_IMPLEMENTED = 48
_SYNTAX_ERROR = 62
_UNKNOWN_SETTING = 115
_READONLY = 164
_CANNOT_DECOMPRESS = 271
_SESSION_NOT_FOUND = 372
_SESSION_IS_LOCKED = 373
_HTTP_LENGTH_REQUIRED = 381
_AUTHENTICATION_FAILED = 516
_STD_EXCEPTION = 1001

_CODE_NAMES = {
    _BAD_ARGUMENTS: "BAD_ARGUMENTS",
    _NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    _SYNTAX_ERROR: "SYNTAX_ERROR",
    _UNKNOWN_SETTING: "UNKNOWN_SETTING",
    _READONLY: "READONLY",
    _CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    _SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    _SESSION_IS_LOCKED: "SESSION_IS_LOCKED",
    _HTTP_LENGTH_REQUIRED: "HTTP_LENGTH_REQUIRED",
    _AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    _STD_EXCEPTION: "STD_EXCEPTION",
}

# src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, keyed by the error name every message ends with.
_STATUS_NAMES = {
    401: "REQUIRED_PASSWORD",
    403: "UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE ACCESS_DENIED",
    400: """BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT CANNOT_PARSE_ESCAPE_SEQUENCE
        CANNOT_PARSE_QUOTED_STRING CANNOT_PARSE_DATE CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER
        CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6
        CANNOT_PARSE_INPUT_ASSERTION_FAILED CANNOT_PARSE_UUID DUPLICATE_COLUMN ILLEGAL_COLUMN
        UNKNOWN_ELEMENT_IN_AST UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST
        UNEXPECTED_AST_STRUCTURE SYNTAX_ERROR INCORRECT_DATA TYPE_MISMATCH
        VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE""",
    404: """UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE UNKNOWN_DATABASE
        UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING UNKNOWN_AGGREGATE_FUNCTION UNKNOWN_FORMAT
        UNKNOWN_DATABASE_ENGINE UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE""",
    413: "QUERY_IS_TOO_LARGE",
    501: "NOT_IMPLEMENTED",
    503: "SOCKET_TIMEOUT CANNOT_OPEN_FILE CANNOT_SCHEDULE_TASK",
    411: "HTTP_LENGTH_REQUIRED",
    408: "TIMEOUT_EXCEEDED",
    415: "UNSUPPORTED_MEDIA_TYPE",
}
_STATUS_BY_NAME = {name: status for status, names in _STATUS_NAMES.items() for name in names.split()}

_CODE_RE = re.compile(r"Code: (\d+)\. ")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")
_VERSION_TRAILER_RE = re.compile(r"\s*\(version [^()]*(?:\([^()]*\))?\)\s*$")


class ClickHouseError(Exception):
    """A ClickHouse exception: what the server would put in the response body."""

    def __init__(self, code: int, message: str, name: str | None = None) -> None:
        self.code = code
        self.name = name or _CODE_NAMES.get(code, "")
        self.text = message if message.startswith("Code: ") else f"Code: {code}. DB::Exception: {message}"
        if self.name and not _NAME_RE.search(self.text):
            self.text = f"{self.text.rstrip('.')}. ({self.name})"
        super().__init__(self.text)

    @classmethod
    def from_engine(cls, ex: BaseException) -> ClickHouseError:
        """chDB reports engine exceptions as text (`Code: 60. DB::Exception: ... (UNKNOWN_TABLE)`),
        sometimes behind a Python prefix ("Streaming insert finish failed: ...")."""
        text = str(ex)
        start = text.find("Code: ")
        if start < 0:
            return cls(_STD_EXCEPTION, f"{type(ex).__name__}: {text}")
        text = _VERSION_TRAILER_RE.sub("", text[start:].strip())
        match = _CODE_RE.match(text)
        name = _NAME_RE.search(text)
        return cls(int(match.group(1)) if match else _STD_EXCEPTION, text, name.group(1) if name else None)

    @property
    def http_status(self) -> int:
        return _STATUS_BY_NAME.get(self.name, 500)


# --- SQL shape ------------------------------------------------------------------------------

_WORD_RE = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = frozenset(b" \t\r\n\f\v")
_RESULT_KINDS = frozenset({"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "CHECK", "VALUES"})
# What a server still runs when GET has made the request readonly=2 (settings may change).
_READONLY_KINDS = _RESULT_KINDS | {"SET", "USE"}


def _tokens(sql: bytes) -> Iterator[tuple[bytes, int, int]]:
    """ClickHouse's lexer, reduced to what this module needs: words, quoted runs and single
    punctuation bytes, skipping whitespace and comments. Yields (kind, start, end)."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in _SPACE:
            i += 1
        elif sql.startswith(b"--", i) or (c == 0x23 and sql[i + 1 : i + 2] in (b" ", b"!")):
            end = sql.find(b"\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith(b"/*", i):
            depth, i = 1, i + 2  # ClickHouse block comments nest
            while i < n and depth:
                if sql.startswith(b"/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith(b"*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in b"'\"`":
            j = i + 1
            while j < n:
                if sql[j] == 0x5C:  # backslash escape
                    j += 2
                elif sql[j] == c:
                    if sql[j + 1 : j + 2] == bytes((c,)):  # doubled quote
                        j += 2
                    else:
                        break
                else:
                    j += 1
            yield b"q", i, min(j + 1, n)
            i = j + 1
        elif match := _WORD_RE.match(sql, i):
            yield b"w", i, match.end()
            i = match.end()
        else:
            yield b"p", i, i + 1
            i += 1


@dataclass
class _Statement:
    kind: str = ""
    output_format: str | None = None  # a trailing `FORMAT x` of a query
    insert_format: str | None = None  # `INSERT ... FORMAT x` followed by data
    insert_head: bytes = b""  # the INSERT up to (not including) FORMAT
    data_start: int = 0


def _analyze(sql: bytes) -> _Statement:
    statement = _Statement()
    tokens = _tokens(sql)
    depth = 0
    words: list[tuple[str, int, int]] = []  # top-level words of the current statement
    for kind, start, end in tokens:
        text = sql[start:end]
        if kind == b"p":
            if text == b"(":
                depth += 1
            elif text == b")":
                depth -= 1
            elif text == b";" and depth <= 0:
                rest = next(tokens, None)
                if rest is not None:
                    tail = sql[rest[1] : rest[1] + 40].decode(errors="replace")
                    raise ClickHouseError(
                        _SYNTAX_ERROR,
                        f"Syntax error (Multi-statements are not allowed): failed at position {start + 1} "
                        f"(end of query): ;{tail}. ",
                    )
            continue
        if kind != b"w":
            continue
        word = text.decode().upper()
        if not statement.kind:
            statement.kind = word  # also inside parentheses: `(SELECT 1) UNION ALL (SELECT 2)`
        if depth > 0:
            continue
        words.append((word, start, end))
        if statement.kind != "INSERT":
            continue
        if word in ("VALUES", "SELECT", "WITH", "INFILE"):
            return statement  # the data (if any) is SQL text: the engine parses the whole request
        if len(words) >= 2 and words[-2][0] == "FORMAT":
            # Data starts after the format name: after the first newline if there is one in the
            # whitespace that follows, otherwise after all of it (ParserInsertQuery).
            pos = end
            while pos < len(sql) and sql[pos] in b" \t\f":
                pos += 1
            if sql[pos : pos + 1] == b"\r":
                pos += 1
            if sql[pos : pos + 1] == b"\n":
                pos += 1
            statement.insert_format = text.decode()
            statement.insert_head = sql[: words[-2][1]]
            statement.data_start = pos
            return statement
    # `FORMAT x` at top level, followed by nothing but SETTINGS, selects the output format.
    for index in range(len(words) - 1):
        if words[index][0] == "FORMAT" and (index + 2 == len(words) or words[index + 2][0] == "SETTINGS"):
            name_start, name_end = words[index + 1][1:]
            statement.output_format = sql[name_start:name_end].decode()
    return statement


# --- request bodies ---------------------------------------------------------------------------


def _lz4_decompress(data: bytes) -> bytes:
    """clickhouse-connect compresses each block into its own LZ4 frame; the body is their sum."""
    out: list[bytes] = []
    while data:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out.append(decompressor.decompress(data))
        if not decompressor.eof:
            raise ValueError("truncated lz4 frame")
        data = decompressor.unused_data
    return b"".join(out)


def _zstd_decompress(data: bytes) -> bytes:
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
        return reader.read()


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "xz": lzma.decompress,
    "bz2": bz2.decompress,
    "zstd": _zstd_decompress,
    "lz4": _lz4_decompress,
}


def _decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity", "none"):
        return body
    decoder = _DECODERS.get(encoding)
    if decoder is None:
        raise ClickHouseError(
            _NOT_IMPLEMENTED,
            f"Unknown compression method '{encoding}'. Supported here: {', '.join(_DECODERS)}",
        )
    try:
        return decoder(body)
    except Exception as ex:
        raise ClickHouseError(_CANNOT_DECOMPRESS, f"Cannot decompress {encoding} request body: {ex}") from ex


def _compress(body: bytes, method: str, level: int) -> bytes:
    if method == "gzip":
        return gzip.compress(body, compresslevel=level)
    if method == "deflate":
        return zlib.compress(body, level)
    if method == "zstd":
        return zstandard.ZstdCompressor(level=level).compress(body)
    if method == "xz":
        return lzma.compress(body)
    if method == "bz2":
        return bz2.compress(body)
    return cast(bytes, lz4.frame.compress(body))


def _response_compression(accept_encoding: str) -> str | None:
    """The server's pick (HTTPHandler): a substring match in its own preference order, br first
    (not available here), so clickhouse-connect's default "lz4,zstd,gzip,deflate" gets gzip."""
    for method in ("gzip", "deflate", "xz", "zstd", "lz4", "bz2"):
        if method in accept_encoding:
            return method
    return None


def _multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """Form fields (clickhouse-connect's form_encode_query_params). File parts are external
    data tables, which this fixture does not emulate."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP_POLICY).parsebytes(head + body)
    fields: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_param("filename", header="content-disposition") is not None:
            raise ClickHouseError(_NOT_IMPLEMENTED, "External data is not supported by the chDB HTTP fixture")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.append((name, payload.decode()))
    return fields


# --- the engine -------------------------------------------------------------------------------

# URL parameters that are not settings (HTTPHandler's reserved names plus what it reads itself).
_TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "quota_key", "query_id", "stacktrace",
    "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
    "client_protocol_version", "role", "compress", "decompress",
})  # fmt: skip
_SETTING_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFAULT_SESSION_TIMEOUT = 60.0  # the server's default_session_timeout
_MAX_SESSION_TIMEOUT = 3600.0


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _quote_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class _Query:
    """One HTTP query request, reduced to what the engine needs."""

    sql: bytes
    user: str
    readonly: bool = False
    database: str | None = None
    default_format: str = "TabSeparated"
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    session_id: str | None = None
    session_timeout: float = _DEFAULT_SESSION_TIMEOUT
    session_check: bool = False


@dataclass
class _Outcome:
    body: bytes
    result_format: str | None  # None for statements that produce no result set
    summary: dict[str, str]
    read_rows: int = 0  # from tables
    result_rows: int = 0


@dataclass(frozen=True)
class LoggedQuery:
    """One finished statement, as a row of the server's system.query_log."""

    query: str
    read_rows: int
    result_rows: int


@dataclass
class _Session:
    """A named session's handle. A server runs each query in a copy of the session context
    with the request's URL settings and database on top; chDB has one context per handle, so the
    request's overlay is applied to it, and undone (from a snapshot) when a later request brings
    a different one. A client sends the same client-level settings every time, so most requests
    cost no extra query."""

    conn: _Connection
    timeout: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    overlay: tuple[str | None, tuple[tuple[str, str], ...]] | None = None
    undo: list[str] = field(default_factory=list)


class _Engine:
    """chDB at one path, kept alive by an anchor connection; per-request or per-session handles.

    chDB runs queries on different connections in parallel, and a connection costs ~0.1 ms, so a
    request without a session gets its own: a long insert never blocks another request's read,
    and its SET/USE cannot leak into the next request.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._anchor = _connect(path)
        except RuntimeError as ex:
            raise RuntimeError(
                f"chDB could not open {path!r}: {ex}. A process hosts one chDB engine path; pass the "
                "path already open in this process as data_dir to share it."
            ) from ex
        version_tz = self._anchor.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = version_tz.decode().strip().split("\t")
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self.query_log: deque[LoggedQuery] = deque(maxlen=10_000)

    def _open(self) -> _Connection:
        # The settings ride on the connection string: chDB applies them to this handle only.
        return _connect(f"{self.path}?{_SERVER_DEFAULTS}")

    def close(self) -> None:
        self.drop_sessions()
        self._anchor.close()

    def drop_sessions(self) -> None:
        """Sessions die with the server process; stop() drops them the same way."""
        with self._sessions_lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.conn.close()

    @contextmanager
    def _session(self, query: _Query) -> Iterator[_Session]:
        assert query.session_id is not None
        now = time.monotonic()
        with self._sessions_lock:
            for key, idle in list(self._sessions.items()):  # expire lazily: no timer threads
                if idle.last_used + idle.timeout < now and idle.lock.acquire(blocking=False):
                    del self._sessions[key]
                    idle.conn.close()
            session = self._sessions.get(query.session_id)
            if session is None:
                if query.session_check:
                    raise ClickHouseError(_SESSION_NOT_FOUND, f"Session {query.session_id} not found")
                session = _Session(self._open(), query.session_timeout)
                self._sessions[query.session_id] = session
            if not session.lock.acquire(blocking=False):
                raise ClickHouseError(
                    _SESSION_IS_LOCKED, f"Session {query.session_id} is locked by a concurrent client"
                )
        try:
            yield session
        finally:
            session.timeout = query.session_timeout
            session.last_used = time.monotonic()
            session.lock.release()

    @contextmanager
    def connection(self, query: _Query) -> Iterator[tuple[_Connection, _Session | None]]:
        """The handle for one request: the session's (held until the response is sent, as a
        server holds a session for the whole request) or a fresh one."""
        if query.session_id:
            with self._session(query) as session:
                yield session.conn, session
            return
        conn = self._open()
        try:
            yield conn, None
        finally:
            conn.close()

    def execute(self, conn: _Connection, session: _Session | None, query: _Query) -> _Outcome:
        statement = _analyze(query.sql)
        if not statement.kind:
            raise ClickHouseError(_SYNTAX_ERROR, "Empty query")
        if query.readonly and statement.kind not in _READONLY_KINDS:
            raise ClickHouseError(
                _READONLY,
                f"{query.user}: Cannot execute query in readonly mode. For queries over HTTP, method GET "
                "implies readonly. You should use method POST for modifying queries",
            )
        if session is None:
            self._apply(conn, query)
        else:
            overlay = (query.database, tuple(sorted(query.settings.items())))
            if session.overlay != overlay:
                for sql in session.undo:
                    with suppress(Exception):
                        conn.query(sql, "TabSeparated")
                session.overlay, session.undo = None, self._snapshot(conn, query)
                self._apply(conn, query)
                session.overlay = overlay
        try:
            outcome = self._run(conn, query, statement)
            self.query_log.append(
                LoggedQuery(query.sql.decode(errors="replace"), outcome.read_rows, outcome.result_rows)
            )
            return outcome
        finally:
            if session is not None and statement.kind in ("SET", "USE"):
                # The statement changed the session itself, and undoing the overlay now could undo
                # that change too; the overlay's values stay in the session instead (harmless while
                # requests keep sending them, as clients do) and the next request re-snapshots.
                session.overlay, session.undo = None, []

    @staticmethod
    def _snapshot(conn: _Connection, query: _Query) -> list[str]:
        """The statements that put back what the query's overlay is about to change."""
        names = [name for name in query.settings if _SETTING_NAME_RE.fullmatch(name)]
        if not names and not query.database:
            return []
        try:
            snapshot = conn.query(
                "SELECT name, value, changed FROM system.settings WHERE has({names:Array(String)}, name) "
                "UNION ALL SELECT '', currentDatabase(), 0",
                "JSONCompactEachRow",
                params={"names": "[" + ",".join(_quote_str(name) for name in names) + "]"},
            )
        except Exception as ex:
            raise ClickHouseError.from_engine(ex) from ex
        undo: list[str] = []
        assignments: list[str] = []
        for line in snapshot.bytes().splitlines():
            name, value, changed = json.loads(line)
            if not name:
                if query.database:
                    undo.append(f"USE {_quote_ident(value)}")
            else:
                assignments.append(f"{name} = {_quote_str(value) if changed else 'DEFAULT'}")
        if assignments:
            undo.append("SET " + ", ".join(assignments))
        return undo

    @staticmethod
    def _apply(conn: _Connection, query: _Query) -> None:
        try:
            if query.database:
                conn.query(f"USE {_quote_ident(query.database)}", "TabSeparated")
            if query.settings:
                for name in query.settings:
                    if not _SETTING_NAME_RE.fullmatch(name):
                        raise ClickHouseError(_UNKNOWN_SETTING, f"Unknown setting '{name}'")
                assignments = (f"{name} = {_quote_str(value)}" for name, value in query.settings.items())
                conn.query("SET " + ", ".join(assignments), "TabSeparated")
        except ClickHouseError:
            raise
        except Exception as ex:
            raise ClickHouseError.from_engine(ex) from ex

    @staticmethod
    def _run(conn: _Connection, query: _Query, statement: _Statement) -> _Outcome:
        started = time.perf_counter_ns()
        if statement.insert_format is not None:
            try:
                inserter = conn.send_insert(statement.insert_head.decode(), statement.insert_format)
            except Exception as ex:
                raise ClickHouseError.from_engine(ex) from ex
            try:
                data = query.sql[statement.data_start :]
                if data:
                    inserter.append(data)
                written = inserter.finish()
            except Exception as ex:
                with suppress(Exception):
                    inserter.cancel()
                raise ClickHouseError.from_engine(ex) from ex
            return _Outcome(b"", None, _summary(0, 0, written.rows_written, written.bytes_written, started))
        try:
            text = query.sql.decode()
        except UnicodeDecodeError as ex:
            raise ClickHouseError(_BAD_ARGUMENTS, f"The query is not valid UTF-8: {ex}") from ex
        output_format = statement.output_format or query.default_format
        try:
            result = conn.query(text, output_format, params=query.params)
        except Exception as ex:
            raise ClickHouseError.from_engine(ex) from ex
        summary = _summary(  # read_* as the server counts them: from tables, not the result's rows
            result.storage_rows_read(),
            result.storage_bytes_read(),
            result.rows_written(),
            result.bytes_written(),
            started,
        )
        produces_result = statement.kind in _RESULT_KINDS
        return _Outcome(
            result.bytes(), output_format if produces_result else None, summary,
            result.storage_rows_read(), result.rows_read() if produces_result else 0,
        )  # fmt: skip


def _summary(read_rows: int, read_bytes: int, written_rows: int, written_bytes: int, started: int) -> dict[str, str]:
    """The X-ClickHouse-Summary fields (the server sends numbers as strings). result_rows is the
    written rows for an INSERT; chDB does not report it for a SELECT, so it is left out."""
    summary = {
        "read_rows": str(read_rows),
        "read_bytes": str(read_bytes),
        "written_rows": str(written_rows),
        "written_bytes": str(written_bytes),
        "total_rows_to_read": "0",
        "elapsed_ns": str(time.perf_counter_ns() - started),
    }
    if written_rows:
        summary["result_rows"] = str(written_rows)
        summary["result_bytes"] = str(written_bytes)
    return summary


# --- HTTP -------------------------------------------------------------------------------------

_CONTENT_TYPES = (
    ("TabSeparated", "text/tab-separated-values; charset=UTF-8"),
    ("TSV", "text/tab-separated-values; charset=UTF-8"),
    ("CSVWithNames", "text/csv; charset=UTF-8; header=present"),
    ("CSV", "text/csv; charset=UTF-8; header=absent"),
    ("JSON", "application/json; charset=UTF-8"),
    ("Pretty", "text/plain; charset=UTF-8"),
    ("Vertical", "text/plain; charset=UTF-8"),
)


def _content_type(output_format: str | None) -> str:
    for prefix, content_type in _CONTENT_TYPES:
        if output_format and output_format.startswith(prefix):
            return content_type
    return "application/octet-stream" if output_format else "text/plain; charset=UTF-8"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class _BadRequest(Exception):
    """A request the HTTP layer cannot read (bad chunking, a client that went away)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect's pooled connections expect
    server: _Listener

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BadRequest as ex:
            self.close_connection = True
            self._send(400, str(ex).encode() + b"\n", {})
            return
        except ClickHouseError as ex:
            self.close_connection = True
            self._send_error(ex, "")
            return
        if url.path in ("/ping", "/replicas_status"):
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        if url.path not in ("", "/"):
            message = f"There is no handle {url.path}\n\nUse / or /ping for health checks.\n"
            self._send(404, message.encode(), {})
            return
        params = parse_qsl(url.query, keep_blank_values=True)
        query_id = dict(params).get("query_id") or self.headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
        try:
            self._query(params, body, query_id)
        except ClickHouseError as ex:
            self._send_error(ex, query_id)
        except OSError:
            raise  # the client went away (or stop() cut it): there is no one to answer
        except Exception as ex:
            # A fixture bug must reach the test as an error response, not as a dropped connection.
            logger.exception("ClickHouse HTTP fixture: unexpected error")
            self._send_error(ClickHouseError(_STD_EXCEPTION, f"{type(ex).__name__}: {ex}"), query_id)

    def _read_body(self) -> bytes:
        if self.command != "POST":
            return b""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        elif (length := self.headers.get("Content-Length")) is not None:
            try:
                size = int(length)
            except ValueError as ex:
                raise _BadRequest(f"Bad Content-Length {length!r}") from ex
            body = self.rfile.read(size)
            if len(body) < size:
                raise _BadRequest("The client closed the connection before sending the whole body")
        else:
            raise ClickHouseError(
                _HTTP_LENGTH_REQUIRED,
                "The Transfer-Encoding is not chunked and there is no Content-Length header for POST request",
            )
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            body = _decode_body(body, self.headers.get("Content-Encoding", ""))
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as ex:
                raise _BadRequest(f"Bad chunk size line {line[:40]!r}") from ex
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers carry nothing the server uses
                return b"".join(chunks)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(65537) not in (b"\r\n", b"\n"):
                raise _BadRequest("Malformed or truncated chunked body")
            chunks.append(chunk)

    def _credentials(self, params: dict[str, str]) -> tuple[str, str]:
        """HTTPHandler's sources, one at a time: X-ClickHouse-User/Key, Basic auth, URL params."""
        if "X-ClickHouse-User" in self.headers or "X-ClickHouse-Key" in self.headers:
            return self.headers.get("X-ClickHouse-User", "default"), self.headers.get("X-ClickHouse-Key", "")
        authorization = self.headers.get("Authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                user, _, password = b64decode(authorization[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as ex:
                raise ClickHouseError(_AUTHENTICATION_FAILED, f"Bad Basic authorization header: {ex}") from ex
            return user, password
        return params.get("user", "default"), params.get("password", "")

    def _query(self, param_list: list[tuple[str, str]], body: bytes, query_id: str) -> None:
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            param_list = param_list + _multipart_fields(content_type, body)
            body = b""
        params = dict(param_list)
        query_text = params.get("query", "").encode()
        sql = query_text + b"\n" + body if query_text and body else query_text or body
        if not sql.strip() and self.command != "POST":
            # The server's default handler for GET / (before any authentication).
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        user, password = self._credentials(params)
        expected_user, expected_password = self.server.credentials
        user_ok = hmac.compare_digest(user.encode(), expected_user.encode())
        if not (user_ok and hmac.compare_digest(password.encode(), expected_password.encode())):
            raise ClickHouseError(
                _AUTHENTICATION_FAILED,
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name",
            )
        if _truthy(params.get("compress")) or _truthy(params.get("decompress")):
            raise ClickHouseError(_NOT_IMPLEMENTED, "compress/decompress (native block compression): not emulated")
        query = _Query(
            sql=sql,
            user=user,
            readonly=self.command != "POST",
            database=self.headers.get("X-ClickHouse-Database") or params.get("database") or None,
            default_format=(self.headers.get("X-ClickHouse-Format") or params.get("default_format") or "TabSeparated"),
            settings={k: v for k, v in params.items() if k not in _TRANSPORT_PARAMS and not k.startswith("param_")},
            params={k[6:]: v for k, v in params.items() if k.startswith("param_")},
            session_id=params.get("session_id") or None,
            session_check=_truthy(params.get("session_check")),
        )
        if "session_timeout" in params:
            try:
                query.session_timeout = float(params["session_timeout"])
            except ValueError as ex:
                message = f"Invalid session timeout: {params['session_timeout']}"
                raise ClickHouseError(_BAD_ARGUMENTS, message) from ex
            if query.session_timeout > _MAX_SESSION_TIMEOUT:
                raise ClickHouseError(_BAD_ARGUMENTS, "Session timeout is larger than max_session_timeout")
        engine = self.server.engine
        with engine.connection(query) as (conn, session):
            outcome = engine.execute(conn, session, query)
            headers = {
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Timezone": query.settings.get("session_timezone") or engine.timezone,
                "X-ClickHouse-Summary": json.dumps(outcome.summary, separators=(",", ":")),
                "Content-Type": _content_type(outcome.result_format),
            }
            if outcome.result_format:
                headers["X-ClickHouse-Format"] = outcome.result_format
            body = outcome.body
            method = _response_compression(self.headers.get("Accept-Encoding", ""))
            if body and method and _truthy(query.settings.get("enable_http_compression")):
                level = int(query.settings.get("http_zlib_compression_level", "3"))
                body = _compress(body, method, level)
                headers["Content-Encoding"] = method
            self._send(200, body, headers)  # inside the session hold, as the server does

    def _send_error(self, ex: ClickHouseError, query_id: str) -> None:
        body = f"{ex.text} (version {self.server.engine.version} (official build))\n".encode()
        headers = {"X-ClickHouse-Exception-Code": str(ex.code), "Content-Type": "text/plain; charset=UTF-8"}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        self._send(ex.http_status, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("X-ClickHouse-Server-Display-Name", self.server.display_name)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Listener(ThreadingHTTPServer):
    """A ThreadingHTTPServer that can be stopped for real: the listening socket is closed and
    every open keep-alive connection is shut, so clients see what a dead server looks like."""

    daemon_threads = True
    allow_reuse_address = True  # SO_REUSEADDR: restart on the same port despite TIME_WAIT

    def __init__(self, port: int, engine: _Engine, credentials: tuple[str, str]) -> None:
        self.engine = engine
        self.credentials = credentials
        self.display_name = socket.gethostname()
        self._lock = threading.Lock()
        self._closing = False
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        try:
            super().__init__(("127.0.0.1", port), _Handler)  # binds: fails if the port is taken
        except OSError:
            self._wake_r.close()
            self._wake_w.close()
            raise
        self.socket.setblocking(False)  # a spurious wake-up must not block the accept loop
        self._loop = threading.Thread(target=self._serve, name=f"clickhouse-http-{self.port}", daemon=True)
        self._loop.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with getfqdn, which can stall on DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.port

    def _serve(self) -> None:
        # serve_forever polls for shutdown every 0.5 s; a wake-up socket makes stop() immediate.
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing:
                events = selector.select()
                if self._closing:
                    return
                if any(key.fileobj is self.socket for key, _ in events):
                    self._accept()

    def _accept(self) -> None:
        try:
            conn, client_address = self.get_request()
        except OSError:
            return  # nothing to accept after all (the client gave up), or the socket is closing
        self.process_request(conn, client_address)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        conn.setblocking(True)
        # Headers and body go out in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms per request).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    def process_request(self, request: _RequestType, client_address: Any) -> None:
        conn = cast(socket.socket, request)
        thread = threading.Thread(
            target=self._serve_connection,
            args=(conn, client_address),
            name="clickhouse-http-conn",
            daemon=True,
        )
        with self._lock:
            if self._closing:
                self.shutdown_request(conn)
                return
            self._connections.add(conn)
            self._handler_threads.add(thread)
        thread.start()

    def _serve_connection(self, conn: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(conn, client_address)
        except OSError:
            pass  # the client went away, or stop() shut the connection: nothing to answer
        except Exception:
            logger.exception("ClickHouse HTTP fixture: unexpected error serving %s", client_address)
        finally:
            self.shutdown_request(conn)
            with self._lock:
                self._connections.discard(conn)
                self._handler_threads.discard(threading.current_thread())

    def close_all(self, timeout: float) -> None:
        with self._lock:
            self._closing = True
        self._wake_w.send(b"x")
        self._loop.join(timeout)
        self.server_close()
        with self._lock:
            connections, threads = list(self._connections), list(self._handler_threads)
        for conn in connections:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            # A request already inside chDB finishes there (it cannot be interrupted); waiting for
            # it makes stop() a clean cut: nothing is written after it returns.
            thread.join(timeout)
        self._wake_r.close()
        self._wake_w.close()


class ClickHouseHTTPServer:
    """The ClickHouse HTTP interface on 127.0.0.1, executed by chDB in this process.

    ``data_dir``: the chDB data path; None makes a temporary directory, removed by close(). Pass a
    path already open in this process (e.g. the embedded backend's) to share its engine: chDB
    refuses a second path while one is open. ``port``: 0 picks a free port once; restarts reuse it.

    ``stop()`` closes the port and every open connection (clients get connection refused) but
    keeps the engine and its data; ``start()`` serves the same data on the same port again.
    ``close()`` stops and releases the engine. As a context manager: start on enter, close on exit.
    """

    def __init__(
        self, data_dir: str | None = None, port: int = 0, username: str = "default", password: str = ""
    ) -> None:
        self._owned_dir = data_dir is None
        # clickhouse-connect's chdb client realpath()s its path and chDB compares paths literally,
        # so normalizing the same way lets both share one engine.
        self.data_dir = os.path.realpath(data_dir) if data_dir else tempfile.mkdtemp(prefix="driftline-chdb-")
        self.username = username
        self.password = password
        self._port = port
        self._engine: _Engine | None = None
        self._listener: _Listener | None = None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the port is chosen by the first start()")
        return self._port

    @property
    def url(self) -> str:
        """A DSN for ``clickhouse_connect.get_client(dsn=...)``: credentials and database `default`."""
        credentials = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        return f"http://{credentials}@127.0.0.1:{self.port}/default"

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def query_log(self) -> list[LoggedQuery]:
        """The statements run so far, oldest first (see the module doc)."""
        return list(self._engine.query_log) if self._engine is not None else []

    @property
    def engine_version(self) -> str:
        if self._engine is None:
            raise RuntimeError("the server has not been started")
        return self._engine.version

    def start(self) -> Self:
        if self._listener is not None:
            return self
        if self._engine is None:
            self._engine = _Engine(self.data_dir)
        self._listener = _Listener(self._port, self._engine, (self.username, self.password))
        self._port = self._listener.port
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse connections from now on, like a server that went down. Data stays."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close_all(timeout)
        if self._engine is not None:
            self._engine.drop_sessions()

    def close(self) -> None:
        self.stop()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        if self._owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
