"""The SQLite store: units of work over one database file. A unit of work is one
``BEGIN IMMEDIATE`` transaction (the writer lock is taken up front, so what it reads stays as
read until it commits, across threads and processes); reads outside one see what is
committed."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from .database import SqliteDatabase
from .images import SqliteImages
from .repositories import SqliteCounters, SqliteDocuments, SqliteIdempotency, SqliteTokens
from .schema import SCHEMA, migrate


class SqliteUnitOfWork:
    def __init__(self, db: SqliteDatabase, clock: Callable[[], float]):
        self._db = db
        self._stack: ExitStack | None = None
        self._unit: Any = None
        self.images = SqliteImages(db.connection)
        self.counters = SqliteCounters(db.connection, clock)
        self.idempotency = SqliteIdempotency(db.connection, clock)
        self.tokens = SqliteTokens(db.connection)
        self.links = SqliteDocuments(db.connection, "link", clock)
        self.batches = SqliteDocuments(db.connection, "batch", clock)

    def __enter__(self) -> "SqliteUnitOfWork":
        self._stack = ExitStack()
        self._unit = self._stack.enter_context(self._db.unit())
        return self

    def __exit__(self, *exc_info: Any) -> None:
        stack, self._stack, self._unit = self._stack, None, None
        if stack is not None:
            stack.__exit__(*exc_info)

    def commit(self) -> None:
        self._unit.commit()


class SqliteStore:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time):
        """``clock``: epoch seconds, for dropping counters and keys past their expiry."""
        self.db = SqliteDatabase(path, SCHEMA, migrate=migrate)
        self.clock = clock

    def unit_of_work(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self.db, self.clock)

    def ping(self) -> None:
        self.db.ping()
