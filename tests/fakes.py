"""In-memory fakes of the ports, for unit tests of the business rules.

They keep the ports' contracts (the contract suites in tests/integration run against them too),
so a rule tested on a fake holds on SQLite and DynamoDB as well. Not thread-safe beyond a lock
around each call: the concurrency guarantees are proven on the real adapters.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Iterable

from imageservice.core.cursor import decode_cursor, encode_cursor
from imageservice.core.errors import Conflict
from imageservice.core.records import (
    CREATE_RATE,
    CREATE_WINDOW_SECONDS,
    DONE,
    IN_FLIGHT,
    PENDING,
    PROCESSING,
    ApiPage,
    IdempotencyEntry,
    ImageRecord,
    Job,
    ListQuery,
    OwnerLimits,
    Page,
    PresignedDownload,
    PresignedUpload,
    ReceivedJob,
    Token,
    Usage,
)
from imageservice.core.timeutil import epoch_to_iso, to_iso, utcnow
from imageservice.ports import SINGLE_USE_UPLOAD_HEADERS, BlobNotFound, BlobTooLarge


FAKE_ORIGIN = "http://fake-storage.invalid"


class FakeBlobStore:
    """Objects in a dict; presigned URLs point at an origin nobody can reach."""

    def __init__(self, clock=time.time) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.stored_at: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with self._lock:
            self.objects[key] = (bytes(data), content_type)
            self.stored_at[key] = self._clock()

    class Writer:
        """open_writer's context manager and sink: the bytes become the object on a clean exit."""

        def __init__(self, store: FakeBlobStore, key: str, content_type: str) -> None:
            self.store, self.key, self.content_type = store, key, content_type
            self.buffer: bytearray | None = None

        def __enter__(self) -> FakeBlobStore.Writer:
            self.buffer = bytearray()
            return self

        def __exit__(self, kind, error, traceback) -> None:
            data, self.buffer = self.buffer, None
            if kind is None and data is not None:
                self.store.put(self.key, bytes(data), self.content_type)

        def write(self, data: bytes) -> int:
            if self.buffer is None:
                raise ValueError(f"the writer of {self.key} is closed")
            self.buffer += data
            return len(data)

        def tell(self) -> int:
            return len(self.buffer or b"")

    def open_writer(self, key: str, content_type: str) -> FakeBlobStore.Writer:
        return FakeBlobStore.Writer(self, key, content_type)

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        with self._lock:
            if key not in self.objects:
                raise BlobNotFound(key)
            data = self.objects[key][0]
        if max_bytes is not None and len(data) > max_bytes:
            raise BlobTooLarge(len(data))
        return data

    def size(self, key: str) -> int | None:
        with self._lock:
            return len(self.objects[key][0]) if key in self.objects else None

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    def expire_prefix(self, prefix: str, older_than: float) -> int:
        with self._lock:
            doomed = [key for key in self.objects if key.startswith(prefix) and self.stored_at.get(key, 0) < older_than]
            for key in doomed:
                del self.objects[key]
        return len(doomed)

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self.objects if key.startswith(prefix)]
            for key in doomed:
                del self.objects[key]
        return len(doomed)

    def presign_upload(self, key: str, *, content_type: str | None, content_length: int | None,
                       expires_in: int) -> PresignedUpload:
        headers = {"Content-Type": content_type} if content_type else {}
        return PresignedUpload(f"{FAKE_ORIGIN}/{key}", "PUT", {**headers, **SINGLE_USE_UPLOAD_HEADERS}, epoch_to_iso(time.time() + expires_in))

    def presign_download(self, key: str, *, expires_in: int, filename: str, content_type: str,
                         attachment: bool) -> PresignedDownload:
        disposition = "attachment" if attachment else "inline"
        return PresignedDownload(f"{FAKE_ORIGIN}/{key}?type={content_type}&{disposition}={filename}",
                                 epoch_to_iso(time.time() + expires_in))

    def origins(self) -> list[str]:
        return [FAKE_ORIGIN]

    def ping(self) -> None:
        return None


class FakeCatalog:
    """Records in a dict keyed by (owner, id); the same list order, filters and cursor as SQLite."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], ImageRecord] = {}
        self.tokens: dict[str, Token] = {}
        self.counters: dict[tuple[str, str], tuple[int, int]] = {}  # (bucket, name) -> (window start, count)
        self.idempotency: dict[tuple[str, str], tuple[str, IdempotencyEntry]] = {}  # -> (expires_at, entry)
        self._lock = threading.RLock()

    def create(self, record: ImageRecord, *, limits: OwnerLimits | None = None) -> None:
        with self._lock:
            if any(image_id == record.image_id for _, image_id in self.records):
                raise Conflict(f"image {record.image_id} exists", code="exists")
            if limits is not None:
                limits.check_room(self.usage(record.user_id), 1, record.size or 0)
            wait = self.hit_rate(record.user_id, CREATE_RATE, limits.per_minute if limits else 10**12,
                                 CREATE_WINDOW_SECONDS)
            if wait is not None:
                raise limits.rate_limited(wait)  # type: ignore[union-attr]
            self.records[(record.user_id, record.image_id)] = record.copy()

    def get(self, user_id: str, image_id: str) -> ImageRecord | None:
        with self._lock:
            found = self.records.get((user_id, image_id))
            return found.copy() if found else None

    def put(self, record: ImageRecord, *, expect_status: Iterable[str] | None = None) -> bool:
        with self._lock:
            stored = self.records.get((record.user_id, record.image_id))
            if stored is None or (expect_status is not None and stored.status not in set(expect_status)):
                return False
            # extra_bytes is add_bytes' alone, as in the real catalogs
            self.records[(record.user_id, record.image_id)] = record.copy(extra_bytes=stored.extra_bytes)
            return True

    def claim(self, user_id: str, image_id: str, *, now: str, lease_until: str) -> ImageRecord | None:
        with self._lock:
            stored = self.records.get((user_id, image_id))
            if stored is None:
                return None
            lapsed = stored.status == PROCESSING and (stored.lease_until or "") < now
            if stored.status != PENDING and not lapsed:
                return None
            claimed = stored.copy(status=PROCESSING, lease_until=lease_until, attempts=stored.attempts + 1)
            self.records[(user_id, image_id)] = claimed
            return claimed.copy()

    def list(self, query: ListQuery) -> Page:
        after = decode_cursor(query.cursor, query.user_id)
        with self._lock:
            mine = sorted((r for (owner, _), r in self.records.items() if owner == query.user_id),
                          key=lambda r: r.image_id, reverse=True)
        matches = [
            r for r in mine
            if (after is None or r.image_id < after)
            and (query.tag is None or query.tag in r.tags)
            and (query.status is None or r.status == query.status)
            and (query.since is None or (r.created_at or "") >= query.since)
            and (query.until is None or (r.created_at or "") <= query.until)
        ]
        page = [r.copy() for r in matches[: query.limit]]
        more = len(matches) > query.limit
        return Page(page, encode_cursor(query.user_id, page[-1].image_id) if more and page else None)

    def list_api(self, query: ListQuery) -> ApiPage:
        return ApiPage.of(self.list(query))

    def delete(self, user_id: str, image_id: str) -> bool:
        with self._lock:
            return self.records.pop((user_id, image_id), None) is not None

    def refund_rate(self, user_id_or_bucket: str, name: str, window_seconds: int, charged_at: float | None,
                    cost: int) -> None:
        start = int((time.time() if charged_at is None else charged_at) // window_seconds) * window_seconds
        with self._lock:
            window, count = self.counters.get((user_id_or_bucket, name), (start, 0))
            if window == start:
                self.counters[(user_id_or_bucket, name)] = (start, max(0, count - cost))

    def hit_rate(self, user_id_or_bucket: str, name: str, limit: int, window_seconds: int = 60,
                 cost: int = 1) -> int | None:
        now = time.time()
        start = int(now // window_seconds) * window_seconds
        with self._lock:
            window, count = self.counters.get((user_id_or_bucket, name), (start, 0))
            count = count if window == start else 0
            if count + cost > limit:
                return max(1, int(start + window_seconds - now + 0.999))
            self.counters[(user_id_or_bucket, name)] = (start, count + cost)
        return None

    def usage(self, user_id: str) -> Usage:
        with self._lock:
            mine = [r for (owner, _), r in self.records.items() if owner == user_id]
        return Usage(images=len(mine), bytes=sum((r.size or 0) + r.extra_bytes for r in mine))

    def add_bytes(self, user_id: str, image_id: str, delta: int, *, limit: int | None) -> bool:
        with self._lock:
            stored = self.records.get((user_id, image_id))
            if stored is None or (limit is not None and delta > 0 and self.usage(user_id).bytes + delta > limit):
                return False
            stored.extra_bytes += delta
            return True

    def idempotency_begin(self, user_id: str, key: str, fingerprint: str, expires_at: str) -> IdempotencyEntry | None:
        with self._lock:
            held = self.idempotency.get((user_id, key))
            if held is not None and held[0] > to_iso(utcnow()):
                return held[1]
            self.idempotency[(user_id, key)] = (expires_at, IdempotencyEntry(fingerprint, IN_FLIGHT))
            return None

    def idempotency_finish(self, user_id: str, key: str, image_id: str, response: dict) -> None:
        with self._lock:
            expires_at, entry = self.idempotency[(user_id, key)]
            self.idempotency[(user_id, key)] = (expires_at, dataclasses.replace(
                entry, state=DONE, response=response, image_id=image_id))

    def idempotency_abandon(self, user_id: str, key: str) -> None:
        with self._lock:
            held = self.idempotency.get((user_id, key))
            if held is not None and held[1].state == IN_FLIGHT:
                del self.idempotency[(user_id, key)]

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        with self._lock:
            found = [r.copy() for r in self.records.values() if r.expires_at and r.expires_at < now]
        return found[:limit]

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        with self._lock:
            found = [r.copy() for r in self.records.values()
                     if r.status == PENDING and r.upload_expires_at and r.upload_expires_at < now]
        return found[:limit]

    def save_token(self, token_hash: str, token: Token) -> None:
        with self._lock:
            self.tokens[token_hash] = token

    def find_token(self, token_hash: str) -> Token | None:
        with self._lock:
            return self.tokens.get(token_hash)

    def ping(self) -> None:
        return None


class FakeJobQueue:
    """Jobs in a list with visibility deadlines, receipts and dead letters, on an injectable clock."""

    def __init__(self, *, visibility_timeout: int = 30, max_attempts: int = 3, clock=time.time) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_attempts = max_attempts
        self._clock = clock
        self._jobs: list[dict] = []
        self._dead: list[tuple[Job, str]] = []
        self._next_id = 0
        self._lock = threading.Lock()

    def send(self, job: Job) -> None:
        with self._lock:
            self._next_id += 1
            self._jobs.append({"id": self._next_id, "job": job, "visible_at": self._clock(), "attempts": 0,
                               "receipt": None})

    def receive(self, max_jobs: int = 1, wait_seconds: float = 0) -> list[ReceivedJob]:
        deadline = self._clock() + wait_seconds
        while True:
            taken = self._take(max_jobs)
            if taken or self._clock() >= deadline:
                return taken
            time.sleep(0.01)

    def _take(self, max_jobs: int) -> list[ReceivedJob]:
        now = self._clock()
        taken = []
        with self._lock:
            for entry in self._jobs:
                if len(taken) == max_jobs:
                    break
                if entry["visible_at"] <= now:
                    entry["attempts"] += 1
                    entry["visible_at"] = now + self.visibility_timeout
                    entry["receipt"] = f"{entry['id']}:{entry['attempts']}"
                    taken.append(ReceivedJob(entry["job"], entry["receipt"], entry["attempts"],
                                             visible_again_at=entry["visible_at"]))
        return taken

    def ack(self, received: ReceivedJob) -> None:
        with self._lock:
            self._jobs = [e for e in self._jobs if e["receipt"] != received.receipt]

    def retry(self, received: ReceivedJob, delay: int, reason: str) -> bool:
        with self._lock:
            for entry in self._jobs:
                if entry["receipt"] != received.receipt:
                    continue
                entry["receipt"] = None
                if received.attempts >= self.max_attempts:
                    self._jobs.remove(entry)
                    self._dead.append((entry["job"], reason))
                    return False
                entry["visible_at"] = self._clock() + delay
                return True
        return received.attempts < self.max_attempts

    def dead_letters(self, limit: int = 100) -> list[tuple[Job, str]]:
        with self._lock:
            return list(self._dead[:limit])

    def ping(self) -> None:
        return None
