"""Counters, idempotency keys and API tokens in SQLite: versioned rows, no rules."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable, Mapping, Sequence

from ... import jsontext
from ...core.records import IdempotencyEntry, Token
from ...core.timeutil import epoch_to_iso
from ...unit_of_work import VersionConflict, Versioned

Connection = Callable[[], sqlite3.Connection]


def _write(conn: sqlite3.Connection, version: int | None, insert: str, update: str, values: tuple,
           key: tuple, what: str) -> None:
    """Insert when nothing was read (``version`` None), else update the row read at
    ``version``; VersionConflict when the row is not as read."""
    try:
        if version is None:
            conn.execute(insert, values + key)
            return
        changed = conn.execute(update, values + key + (version,)).rowcount
    except sqlite3.IntegrityError:
        raise VersionConflict(what) from None
    if changed != 1:
        raise VersionConflict(what)


class SqliteCounters:
    def __init__(self, connection: Connection, clock: Callable[[], float] = time.time):
        self._connection, self._clock = connection, clock

    def get(self, key: str) -> Versioned[Mapping[str, int]]:
        return self.get_many((key,))[0]

    def get_many(self, keys: Sequence[str]) -> list[Versioned[Mapping[str, int]]]:
        rows = self._connection().execute(
            f"SELECT key, value, version FROM counters WHERE key IN ({', '.join('?' * len(keys))})", tuple(keys)
        ).fetchall()
        found = {row[0]: Versioned(jsontext.loads(row[1]), row[2]) for row in rows}
        return [found.get(key, Versioned(None)) for key in keys]

    def put(self, key: str, value: Mapping[str, int], version: int | None, *, expires_at: float | None = None) -> None:
        conn = self._connection()
        if version is None:  # a new counter: a moment to drop the ones past their time too
            conn.execute("DELETE FROM counters WHERE expires_at < ?", (self._clock(),))
        _write(conn, version,
               "INSERT INTO counters (value, expires_at, version, key) VALUES (?, ?, 1, ?)",
               "UPDATE counters SET value = ?, expires_at = ?, version = version + 1 WHERE key = ? AND version = ?",
               (jsontext.dumps(dict(value)), expires_at), (key,), f"counter {key}")


class SqliteIdempotency:
    def __init__(self, connection: Connection, clock: Callable[[], float] = time.time):
        self._connection, self._clock = connection, clock

    def get(self, user_id: str, key: str) -> Versioned[IdempotencyEntry]:
        row = self._connection().execute(
            "SELECT fingerprint, state, response, image_id, expires_at, version FROM idempotency"
            " WHERE user_id = ? AND key = ?", (user_id, key),
        ).fetchone()
        if row is None:
            return Versioned(None)
        entry = IdempotencyEntry(fingerprint=row[0], state=row[1], response=jsontext.loads(row[2]) if row[2] else None,
                                 image_id=row[3], expires_at=row[4])
        return Versioned(entry, row[5])

    def put(self, user_id: str, key: str, entry: IdempotencyEntry, version: int | None) -> None:
        conn = self._connection()
        if version is None:  # a new entry: a moment to drop the ones past their time too
            conn.execute("DELETE FROM idempotency WHERE expires_at < ?", (epoch_to_iso(self._clock()),))
        values: tuple[Any, ...] = (entry.fingerprint, entry.state,
                                   jsontext.dumps(entry.response) if entry.response is not None else None,
                                   entry.image_id, entry.expires_at)
        _write(conn, version,
               "INSERT INTO idempotency (fingerprint, state, response, image_id, expires_at, version, user_id, key)"
               " VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
               "UPDATE idempotency SET fingerprint = ?, state = ?, response = ?, image_id = ?, expires_at = ?,"
               " version = version + 1 WHERE user_id = ? AND key = ? AND version = ?",
               values, (user_id, key), f"idempotency key {key}")

    def remove(self, user_id: str, key: str, version: int | None) -> None:
        changed = self._connection().execute(
            "DELETE FROM idempotency WHERE user_id = ? AND key = ? AND version = ?", (user_id, key, version)
        ).rowcount
        if changed != 1:
            raise VersionConflict(f"idempotency key {key}")


class SqliteTokens:
    def __init__(self, connection: Connection):
        self._connection = connection

    def get(self, token_hash: str) -> Versioned[Token]:
        row = self._connection().execute(
            "SELECT user_id, admin, version FROM tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return Versioned(None) if row is None else Versioned(Token(user_id=row[0], admin=bool(row[1])), row[2])

    def put(self, token_hash: str, token: Token, version: int | None) -> None:
        _write(self._connection(), version,
               "INSERT INTO tokens (user_id, admin, version, token_hash) VALUES (?, ?, 1, ?)",
               "UPDATE tokens SET user_id = ?, admin = ?, version = version + 1 WHERE token_hash = ? AND version = ?",
               (token.user_id, int(token.admin)), (token_hash,), "token")


class SqliteDocuments:
    """Documents of one ``kind`` (share links, batches) in the documents table."""

    def __init__(self, connection: Connection, kind: str, clock: Callable[[], float] = time.time):
        self._connection, self._kind, self._clock = connection, kind, clock

    def get(self, key: str) -> Versioned[dict[str, Any]]:
        row = self._connection().execute(
            "SELECT body, version FROM documents WHERE kind = ? AND key = ?", (self._kind, key)
        ).fetchone()
        return Versioned(None) if row is None else Versioned(jsontext.loads(row[0]), row[1])

    def put(self, key: str, document: Mapping[str, Any], version: int | None, *, parent: str | None = None,
            expires_at: float | None = None) -> None:
        conn = self._connection()
        if version is None:  # a new document: a moment to drop the ones past their time too
            conn.execute("DELETE FROM documents WHERE kind = ? AND expires_at < ?", (self._kind, self._clock()))
        _write(conn, version,
               "INSERT INTO documents (parent, body, expires_at, version, kind, key) VALUES (?, ?, ?, 1, ?, ?)",
               "UPDATE documents SET parent = ?, body = ?, expires_at = ?, version = version + 1"
               " WHERE kind = ? AND key = ? AND version = ?",
               (parent, jsontext.dumps(dict(document)), expires_at), (self._kind, key), f"{self._kind} {key}")

    def remove(self, key: str, version: int | None) -> None:
        changed = self._connection().execute(
            "DELETE FROM documents WHERE kind = ? AND key = ? AND version = ?", (self._kind, key, version)
        ).rowcount
        if changed != 1:
            raise VersionConflict(f"{self._kind} {key}")

    def under(self, parent: str) -> list[tuple[str, Versioned[dict[str, Any]]]]:
        rows = self._connection().execute(
            "SELECT key, body, version FROM documents WHERE kind = ? AND parent = ? ORDER BY key", (self._kind, parent)
        ).fetchall()
        return [(row[0], Versioned(jsontext.loads(row[1]), row[2])) for row in rows]

    def expiring(self, before: float, limit: int = 100) -> list[tuple[str, Versioned[dict[str, Any]]]]:
        rows = self._connection().execute(
            "SELECT key, body, version FROM documents WHERE kind = ? AND expires_at < ? LIMIT ?",
            (self._kind, before, limit),
        ).fetchall()
        return [(row[0], Versioned(jsontext.loads(row[1]), row[2])) for row in rows]
