"""A SQLite connection factory safe for threads and forked gunicorn workers.

Each thread of each process gets its own connection (sqlite3 connections must not cross
threads or a fork); WAL lets readers run beside the one writer, and the busy timeout makes
concurrent writers from other processes wait instead of failing.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ...core.errors import TransientError

BUSY_TIMEOUT_MS = 15_000


class SqliteDatabase:
    def __init__(self, path: Path, schema: str, migrate: Callable[[sqlite3.Connection], None] | None = None):
        """``migrate`` runs before ``schema``'s statements, in the same write transaction, so an
        existing database is brought up to date exactly once even with many processes opening it."""
        self.path = Path(path)
        self._schema = schema
        self._migrate = migrate
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        # Writers queue on these locks instead of in SQLite's busy handler, which sleeps 1, 2,
        # 5 ... 100 ms between tries: under concurrent uploads those sleeps, not the
        # sub-millisecond transactions, set the pace. The thread lock orders this process's
        # writers; an flock on a file beside the database orders processes (the kernel wakes
        # the next waiter the moment the lock is let go). The busy timeout stays as the backstop
        # for writers that do not take the file lock (the sqlite3 shell, an older version).
        self._write_lock = threading.RLock()
        self._lock_file: int | None = None
        self._lock_pid: int | None = None

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _set_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._local.conn, self._local.pid = conn, os.getpid()
        self._ensure_schema(conn)
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            with self.transaction(conn):
                if self._migrate is not None:
                    self._migrate(conn)
                for statement in _statements(self._schema):
                    conn.execute(statement)
            self._schema_ready = True

    @contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so read-then-write
        sequences inside are atomic across processes."""
        conn = conn or self.connection()
        with self._write_lock, self._process_lock():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise TransientError(f"database busy: {exc}") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @contextmanager
    def unit(self) -> Iterator["WriteUnit"]:
        """A write transaction whose caller decides: ``commit()`` inside makes it durable,
        leaving without one rolls it back (a unit of work that refused, or failed)."""
        conn = self.connection()
        with self._write_lock, self._process_lock():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise TransientError(f"database busy: {exc}") from exc
            unit = WriteUnit(conn)
            try:
                yield unit
            finally:
                if not unit.committed:
                    conn.execute("ROLLBACK")

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        """The cross-process writer lock, taken under ``_write_lock``. Writes never nest (a
        BEGIN inside a BEGIN is an error in SQLite), so neither does this."""
        fd = self._lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int:
        # An flock belongs to the open file description, which a fork shares: each process
        # opens its own.
        if self._lock_file is None or self._lock_pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = os.open(f"{self.path}.writelock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_pid = os.getpid()
        return self._lock_file

    def ping(self) -> None:
        self.connection().execute("SELECT 1").fetchone()


class WriteUnit:
    """An open write transaction (see SqliteDatabase.unit)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.committed = False

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self.committed = True


def _set_wal(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """``PRAGMA journal_mode = WAL`` on a new connection. SQLite answers "database is locked" at
    once, without its busy handler, when another connection of the file holds a lock as this
    one opens (two job threads starting together did): wait and ask again."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _statements(script: str) -> list[str]:
    """The script's statements; a trigger's body keeps its own semicolons."""
    statements, pending = [], ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements
