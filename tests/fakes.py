"""In-memory fakes of the ports, for unit tests of the business rules.

They keep the ports' contracts (the contract suites in tests/integration run against them too),
so a rule tested on a fake holds on SQLite and DynamoDB as well. Not thread-safe beyond a lock
around each call: the concurrency guarantees are proven on the real adapters.
"""

from __future__ import annotations

import copy
import threading
import time

from imageservice.core.cursor import decode_cursor, encode_cursor
from imageservice.core.errors import Conflict
from imageservice.catalog import Catalog
from imageservice.core.records import (
    PENDING,
    ApiPage,
    ImageRecord,
    Job,
    Page,
    PresignedDownload,
    PresignedUpload,
    ReceivedJob,
    Usage,
)
from imageservice.core.timeutil import epoch_to_iso
from imageservice.ports import SINGLE_USE_UPLOAD_HEADERS, BlobNotFound, BlobTooLarge
from imageservice.unit_of_work import Versioned, VersionConflict


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


class _FakeRepository:
    """Versioned values in a dict, shared by every unit of work of one store; writes wait in
    the unit of work until it commits. No rule lives here: the catalog applies them."""

    def __init__(self, store: "FakeStore", table: dict, uow: "FakeUnitOfWork") -> None:
        self._store, self._table, self._uow = store, table, uow

    def _get(self, key):
        with self._store.lock:
            value, version = self._table.get(key, (None, None))
        return Versioned(copy.deepcopy(value), version)

    def _put(self, key, value, version) -> None:
        self._uow.stage(self._table, key, copy.deepcopy(value), version)


class _FakeImages(_FakeRepository):
    def get(self, user_id, image_id):
        return self._get((user_id, image_id))

    def add(self, record):
        self._uow.stage(self._table, (record.user_id, record.image_id), record.copy(), None, new_id=record.image_id)

    def replace(self, record, version):
        self._put((record.user_id, record.image_id), record, version)

    def remove(self, record, version):
        self._put((record.user_id, record.image_id), None, version)

    def _all(self) -> list[ImageRecord]:
        with self._store.lock:
            return [value.copy() for value, _ in self._table.values()]

    def tally(self, user_id):
        mine = [r for r in self._all() if r.user_id == user_id]
        return Usage(images=len(mine), bytes=sum((r.size or 0) + r.extra_bytes for r in mine))

    def list(self, query):
        after = decode_cursor(query.cursor, query.user_id)
        mine = sorted((r for r in self._all() if r.user_id == query.user_id), key=lambda r: r.image_id, reverse=True)
        matches = [
            r for r in mine
            if (after is None or r.image_id < after)
            and (query.tag is None or query.tag in r.tags)
            and (query.status is None or r.status == query.status)
            and (query.since is None or (r.created_at or "") >= query.since)
            and (query.until is None or (r.created_at or "") <= query.until)
        ]
        page = matches[: query.limit]
        more = len(matches) > query.limit
        return Page(page, encode_cursor(query.user_id, page[-1].image_id) if more and page else None)

    def list_api(self, query):
        return ApiPage.of(self.list(query))

    def expired(self, now, limit=100):
        return [r for r in self._all() if r.expires_at and r.expires_at < now][:limit]

    def abandoned(self, now, limit=100):
        return [r for r in self._all() if r.status == PENDING and r.upload_expires_at and r.upload_expires_at < now][:limit]


class _FakeCounters(_FakeRepository):
    def get(self, key):
        return self._get(key)

    def get_many(self, keys):
        return [self._get(key) for key in keys]

    def put(self, key, value, version, *, expires_at=None):
        self._put(key, dict(value), version)


class _FakeKeys(_FakeRepository):
    def get(self, user_id, key):
        return self._get((user_id, key))

    def put(self, user_id, key, entry, version):
        self._put((user_id, key), entry, version)

    def remove(self, user_id, key, version):
        self._put((user_id, key), None, version)


class _FakeTokens(_FakeRepository):
    def get(self, token_hash):
        return self._get(token_hash)

    def put(self, token_hash, token, version):
        self._put(token_hash, token, version)


class _FakeDocuments(_FakeRepository):
    """Documents stored as {"document": ..., "parent": ...}."""

    def get(self, key):
        found = self._get(key)
        return Versioned(found.value["document"] if found.value else None, found.version)

    def put(self, key, document, version, *, parent=None, expires_at=None):
        self._put(key, {"document": dict(document), "parent": parent, "expires_at": expires_at}, version)

    def expiring(self, before, limit=100):
        with self._store.lock:
            found = sorted((key, value, version) for key, (value, version) in self._table.items()
                           if value["expires_at"] is not None and value["expires_at"] < before)
        return [(key, Versioned(copy.deepcopy(value["document"]), version)) for key, value, version in found[:limit]]

    def remove(self, key, version):
        self._put(key, None, version)

    def under(self, parent):
        with self._store.lock:
            mine = sorted((key, value, version) for key, (value, version) in self._table.items()
                          if value["parent"] == parent)
        return [(key, Versioned(copy.deepcopy(value["document"]), version)) for key, value, version in mine]


class FakeUnitOfWork:
    def __init__(self, store: "FakeStore") -> None:
        self._store = store
        self._staged: list[tuple[dict, object, object, int | None, str | None]] = []
        self.images = _FakeImages(store, store.records, self)
        self.counters = _FakeCounters(store, store.counters, self)
        self.idempotency = _FakeKeys(store, store.idempotency, self)
        self.tokens = _FakeTokens(store, store.tokens, self)
        self.links = _FakeDocuments(store, store.links, self)
        self.batches = _FakeDocuments(store, store.batches, self)

    def __enter__(self) -> "FakeUnitOfWork":
        self._staged = []
        return self

    def __exit__(self, *exc_info) -> None:
        self._staged = []

    def stage(self, table: dict, key, value, version: int | None, new_id: str | None = None) -> None:
        self._staged.append((table, key, value, version, new_id))

    def commit(self) -> None:
        """Every staged write, or none: each names the version it read."""
        with self._store.lock:
            for table, key, _, version, new_id in self._staged:
                if new_id is not None and any(image_id == new_id for _, image_id in table):
                    raise Conflict(f"image {new_id} exists", code="exists")
                if table.get(key, (None, None))[1] != version:
                    raise VersionConflict(str(key))
            for table, key, value, version, _ in self._staged:
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = (value, (version or 0) + 1)
        self._staged = []


class FakeStore:
    """The store's tables as dicts of (value, version)."""

    def __init__(self) -> None:
        self.records: dict = {}
        self.counters: dict = {}
        self.idempotency: dict = {}
        self.tokens: dict = {}
        self.links: dict = {}
        self.batches: dict = {}
        self.lock = threading.RLock()

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def ping(self) -> None:
        return None


class FakeCatalog(Catalog):
    """The real catalog (the rules) over the dict-backed store."""

    def __init__(self, clock=time.time) -> None:
        super().__init__(FakeStore(), clock=clock)


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
