"""SQLite JobQueue: at-least-once delivery with a visibility timeout, attempts and dead letters.

``receive`` hides a job until ``visible_at`` and stamps it with a fresh receipt; only the holder
of the newest receipt can ack or retry it, so a processor that outlived its visibility timeout
cannot remove a job someone else is now working on.

``send`` rings the queue's doorbell (doorbell.py) once the job is committed, and a ``receive``
that found nothing waits on that doorbell rather than sleeping, so an idle worker, in this
process or another, takes a new job within a millisecond or so (docs/READY.md). Jobs that become
visible by the clock (a retry's delay, a lapsed visibility timeout) ring no bell: the receiver's
``wait_seconds`` bounds how late those are seen.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from pathlib import Path

from ...core.records import Job, ReceivedJob
from ...core.retries import attempts_exhausted
from .doorbell import Doorbell
from ..sqlite.database import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    source TEXT NOT NULL,
    visible_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'process',
    payload TEXT,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_visible ON jobs (dead, visible_at)
"""


# Columns added after the first release, with their declarations (see _conn).
ADDED_COLUMNS = {"kind": "TEXT NOT NULL DEFAULT 'process'", "payload": "TEXT", "request_id": "TEXT"}


def _job(row) -> Job:
    payload = json.loads(row["payload"]) if row["payload"] else None
    return Job(row["key"], row["source"], request_id=row["request_id"], kind=row["kind"], payload=payload)


class SqliteJobQueue:
    def __init__(self, path: Path, *, visibility_timeout: int, max_attempts: int, clock=time.time):
        self.db = SqliteDatabase(path, SCHEMA)
        self.doorbell = Doorbell(Path(path).with_name(Path(path).name + ".wake"))
        self.visibility_timeout = visibility_timeout
        self.max_attempts = max_attempts
        self._clock = clock
        self._columns_checked = False

    def _conn(self):
        """The connection, after adding the columns a queue file from an older version lacks."""
        conn = self.db.connection()
        if not self._columns_checked:
            have = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
            for column, declaration in ADDED_COLUMNS.items():
                if column not in have:
                    try:
                        conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")
                    except sqlite3.OperationalError:  # another process added it first
                        pass
            self._columns_checked = True
        return conn

    def send(self, job: Job) -> None:
        """Enqueue ``job``, visible at once."""
        now = self._clock()
        payload = json.dumps(job.payload, separators=(",", ":")) if job.payload is not None else None
        with self.db.transaction(self._conn()) as conn:
            conn.execute(
                "INSERT INTO jobs (key, source, visible_at, created_at, kind, payload, request_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.key, job.source, now, now, job.kind, payload, job.request_id),
            )
        self.doorbell.ring()

    def receive(self, max_jobs: int = 1, wait_seconds: float = 0) -> list[ReceivedJob]:
        """Take up to ``max_jobs`` visible jobs, hidden for the visibility timeout.

        When none is visible, waits up to ``wait_seconds`` for a ``send`` to ring the doorbell
        (long polling without a polling interval).
        """
        deadline = time.monotonic() + wait_seconds
        while True:
            taken = self._take(max_jobs)
            remaining = deadline - time.monotonic()
            if taken or remaining <= 0:
                return taken
            self.doorbell.wait(remaining)

    def _take(self, max_jobs: int) -> list[ReceivedJob]:
        now = self._clock()
        # A look without the write lock first: idle receivers (one per web process) would
        # otherwise queue on the lock for an empty answer each time a bell rings.
        visible = self._conn().execute("SELECT 1 FROM jobs WHERE dead = 0 AND visible_at <= ? LIMIT 1", (now,))
        if visible.fetchone() is None:
            return []
        taken = []
        with self.db.transaction(self._conn()) as conn:
            rows = conn.execute(
                "SELECT id, key, source, attempts, kind, payload, request_id FROM jobs WHERE dead = 0 AND visible_at <= ?"
                " ORDER BY visible_at, id LIMIT ?",
                (now, max_jobs),
            ).fetchall()
            for row in rows:
                receipt = f"{row['id']}:{secrets.token_hex(8)}"
                conn.execute(
                    "UPDATE jobs SET visible_at = ?, attempts = attempts + 1, receipt = ? WHERE id = ?",
                    (now + self.visibility_timeout, receipt, row["id"]),
                )
                taken.append(ReceivedJob(_job(row), receipt, row["attempts"] + 1,
                                         visible_again_at=now + self.visibility_timeout))
        return taken

    def ack(self, received: ReceivedJob) -> None:
        """Remove the job for good (only with its current receipt)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE receipt = ?", (received.receipt,))

    def retry(self, received: ReceivedJob, delay: int, reason: str) -> bool:
        """Make the job visible again after ``delay`` s, or dead-letter it after the last attempt."""
        dead = attempts_exhausted(received.attempts, self.max_attempts)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET visible_at = ?, dead = ?, last_error = ?, receipt = NULL WHERE receipt = ?",
                (self._clock() + delay, int(dead), reason[:2000], received.receipt),
            )
        return not dead

    def dead_letters(self, limit: int = 100) -> list[tuple[Job, str]]:
        rows = self._conn().execute(
            "SELECT key, source, kind, payload, request_id, last_error FROM jobs WHERE dead = 1 ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [(_job(r), r["last_error"] or "") for r in rows]

    def depth(self) -> int:
        return self.db.connection().execute("SELECT COUNT(*) FROM jobs WHERE dead = 0").fetchone()[0]

    def ping(self) -> None:
        self.db.ping()
