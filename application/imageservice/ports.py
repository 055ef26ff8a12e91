"""Ports: the small interfaces the core and the entry points need from the outside world.

Adapters in ``adapters/local`` (filesystem, SQLite) and ``adapters/aws`` (S3, DynamoDB, SQS)
implement them; ``tests/integration/test_contract_*.py`` runs one suite against both.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, Iterable, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

from .core.records import (
    ApiPage,
    IdempotencyEntry,
    ImageRecord,
    Job,
    ListQuery,
    Page,
    PresignedDownload,
    PresignedUpload,
    ReceivedJob,
    Token,
    Usage,
)

if TYPE_CHECKING:  # the imaging types only: importing the module would load Pillow
    from .core.conversions import ConversionRequest
    from .core.imaging import DerivativeSpec, EncodedImage, ImagingLimits, ProcessedImage


class BlobNotFound(Exception):
    """The object does not exist."""


class BlobTooLarge(Exception):
    """The object is larger than the caller's limit; nothing more than the limit was read."""

    def __init__(self, size: int):
        super().__init__(f"object has {size} bytes or more")
        self.size = size


# Sent with every presigned upload (it is among the URL's headers the client must send): S3
# refuses the PUT with 412 once the key holds an object, so an upload URL is good for one
# upload only; the local blob endpoint enforces the same rule itself.
SINGLE_USE_UPLOAD_HEADERS = {"If-None-Match": "*"}


class BlobSink(Protocol):
    """The write end of ``BlobStore.open_writer``: forward-only, no seek, no read."""

    def write(self, data: bytes) -> int:
        """Append ``data``; returns ``len(data)``. Raises ValueError once the writer's block
        has ended, and what the store raises (TransientError in aws mode) when it fails."""

    def tell(self) -> int:
        """How many bytes have been written so far."""


@runtime_checkable
class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` at ``key`` (overwrites; idempotent for equal data)."""

    def open_writer(self, key: str, content_type: str) -> AbstractContextManager[BlobSink]:
        """A sink for an object too large to hold in memory (a batch's ZIP), used as
        ``with blobs.open_writer(key, type) as sink: sink.write(...)``.

        The object appears at ``key`` (replacing any previous one) only when the block ends
        without an exception, whole and at once; when the block raises, or the process dies
        inside it, nothing of it is ever visible at ``key`` and a previous object stays. The
        store holds a bounded buffer whatever the size (S3: one multipart part).
        """

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """Return the object's bytes.

        Raises BlobNotFound when missing, BlobTooLarge when it has more than ``max_bytes``.
        """

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""

    def delete(self, key: str) -> None:
        """Remove one object; removing a missing object is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix``; returns how many went."""

    def expire_prefix(self, prefix: str, older_than: float) -> int:
        """Remove the objects under ``prefix`` stored before ``older_than`` (epoch seconds);
        returns how many went. A store whose own lifecycle rule expires that prefix (S3) may
        leave it to the rule and return 0."""

    def presign_upload(
        self, key: str, *, content_type: str | None, content_length: int | None, expires_in: int
    ) -> PresignedUpload:
        """A URL the client PUTs the bytes to, valid for ``expires_in`` seconds, for this key only.

        When given, ``content_type`` and ``content_length`` are part of the signature: an
        upload with another type or size is refused by the storage itself. The URL is
        single-use: once an object exists at ``key`` it cannot replace it (the returned
        headers include SINGLE_USE_UPLOAD_HEADERS).
        """

    def presign_download(
        self,
        key: str,
        *,
        expires_in: int,
        filename: str,
        content_type: str,
        attachment: bool,
    ) -> PresignedDownload:
        """A short-lived GET URL answering with ``content_type`` and a Content-Disposition
        (``attachment`` or ``inline``) naming ``filename``."""

    def origins(self) -> list[str]:
        """The origins presigned URLs point at (the browser UI's CSP allows them)."""

    def ping(self) -> None:
        """Raise when the store cannot be reached (readiness)."""


@dataclass(frozen=True)
class VerifiedRequest:
    """What a valid signed URL allows: its key and the constraints its signature covers."""

    key: str
    content_type: str | None
    content_length: int | None
    response_type: str | None
    disposition: str | None


@runtime_checkable
class SignedUrlEndpoint(Protocol):
    """The HTTP face of a blob store whose presigned URLs point at this app (local mode; in
    aws mode S3 answers them). The blobs blueprint speaks only this; every method raises
    core.errors.ServiceError subclasses, which the web layer turns into the JSON error shape."""

    def verify(self, method: str, key: str, params: Mapping[str, str]) -> VerifiedRequest:
        """Check a request's signature and expiry (HEAD as GET). Raises Forbidden
        (``invalid_signature`` / ``url_expired``)."""

    def check_upload(self, verified: VerifiedRequest, content_type: str | None, content_length: int | None) -> None:
        """Enforce the signed type and length: UnsupportedMediaType, Forbidden, or 411."""

    def receive_upload(self, key: str, chunks: Iterable[bytes], max_bytes: int) -> int:
        """Store the upload at ``key`` only if no object is there (single-use URLs); returns
        its size. Raises Conflict (``already_uploaded``) when one is, PayloadTooLarge past
        ``max_bytes``; either way nothing of this upload is kept."""

    def open(self, key: str) -> BinaryIO:
        """The object for streaming; NotFound (``object_not_found``) when missing."""

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""


@dataclass(frozen=True)
class ScanVerdict:
    """A scanner's answer: ``allowed``, or denied with a rejection ``code`` (``malware`` or
    ``moderation``) and a ``reason`` (the signature name, or the moderator's words)."""

    allowed: bool
    code: str | None = None
    reason: str | None = None


@runtime_checkable
class Scanner(Protocol):
    def scan(self, data: bytes) -> ScanVerdict:
        """Judge one file's bytes. Raises core.errors.TransientError when the scanner cannot be
        reached or answers nonsense: the job is retried, and the file never passes unscanned."""


# -- storage: small repositories committed together by a unit of work -------------------------
# Each repository is a versioned get/put with no rules in it: the rules (quota, rate windows,
# idempotency, the lease) live in core and are applied once, by the catalog use cases
# (imageservice/catalog/), whatever the backend (docs/DESIGN.md "Unit of work").

T = TypeVar("T")


class VersionConflict(Exception):
    """Something this unit of work read changed before it committed: run the work again."""


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A stored value and the version a write must name to replace it. ``version`` is None
    when nothing is stored (a write then creates it); 0 is a value stored before versions."""

    value: T | None
    version: int | None = None


@runtime_checkable
class ImageRepository(Protocol):
    def get(self, user_id: str, image_id: str) -> Versioned[ImageRecord]:
        """The owner's record (absent also when it belongs to someone else)."""

    def add(self, record: ImageRecord) -> None:
        """Store a new record; the commit raises Conflict (``exists``) when its id exists."""

    def replace(self, record: ImageRecord, version: int | None) -> None:
        """Store ``record`` over the one read at ``version`` in this unit of work."""

    def remove(self, record: ImageRecord, version: int | None) -> None:
        """Remove the record read at ``version`` in this unit of work."""

    def tally(self, user_id: str) -> Usage:
        """The owner's images and bytes counted from its records (an owner without a usage
        counter: new, or stored before counters)."""

    def list(self, query: ListQuery) -> Page:
        """One page of the owner's records, newest first, filtered as the query says. Raises
        BadRequest (``invalid_cursor``)."""

    def list_api(self, query: ListQuery) -> ApiPage:
        """The same page as ``list``, each record as the API's JSON text (``ApiPage.of`` when
        the store keeps none)."""

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """Records whose ``expires_at`` is before ``now`` (session workspaces)."""

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """``pending`` records whose ``upload_expires_at`` is before ``now``."""


@runtime_checkable
class CounterRepository(Protocol):
    def get(self, key: str) -> Versioned[Mapping[str, int]]:
        """The counter stored under ``key`` (a small mapping of names to integers)."""

    def put(self, key: str, value: Mapping[str, int], version: int | None, *, expires_at: float | None = None) -> None:
        """Store ``value`` over the counter read at ``version``; ``expires_at`` (epoch seconds)
        lets the store drop it after that."""


@runtime_checkable
class IdempotencyRepository(Protocol):
    def get(self, user_id: str, key: str) -> Versioned[IdempotencyEntry]:
        """The entry stored for (owner, key), expired or not."""

    def put(self, user_id: str, key: str, entry: IdempotencyEntry, version: int | None) -> None:
        """Store ``entry`` over the one read at ``version``."""

    def remove(self, user_id: str, key: str, version: int | None) -> None:
        """Remove the entry read at ``version``."""


@runtime_checkable
class TokenRepository(Protocol):
    def get(self, token_hash: str) -> Versioned[Token]:
        """The API token stored under the hash of its secret."""

    def put(self, token_hash: str, token: Token, version: int | None) -> None:
        """Store the token over the one read at ``version``."""


@runtime_checkable
class UnitOfWork(Protocol):
    """The repositories, and one atomic commit of everything written through them.

    Reads outside ``with`` see what is committed; inside, ``commit()`` writes every change at
    once (SQLite: one ``BEGIN IMMEDIATE`` transaction; DynamoDB: one TransactWriteItems whose
    every item names the version it read) or raises VersionConflict, having written nothing.
    Leaving the block without a commit discards the changes.
    """

    images: ImageRepository
    counters: CounterRepository
    idempotency: IdempotencyRepository
    tokens: TokenRepository

    def __enter__(self) -> "UnitOfWork": ...

    def __exit__(self, *exc_info: Any) -> None: ...

    def commit(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """Where the catalog keeps its state: hands out units of work."""

    def unit_of_work(self) -> UnitOfWork: ...

    def ping(self) -> None:
        """Raise when the store cannot be reached (readiness)."""


@runtime_checkable
class JobQueue(Protocol):
    def send(self, job: Job) -> None:
        """Enqueue a job; delivered at least once."""

    def receive(self, max_jobs: int = 1, wait_seconds: float = 0) -> list[ReceivedJob]:
        """Take up to ``max_jobs`` visible jobs, hiding them for the visibility timeout.

        A job not acked within the timeout becomes visible again (its processor died).
        """

    def ack(self, received: ReceivedJob) -> None:
        """The job is done: remove it for good."""

    def retry(self, received: ReceivedJob, delay: int, reason: str) -> bool:
        """Hand the job back after ``delay`` seconds. After the last attempt it goes to the
        dead letters instead; returns False in that case."""

    def dead_letters(self, limit: int = 100) -> list[tuple[Job, str]]:
        """Jobs that used up their attempts, with the last reason."""

    def ping(self) -> None:
        """Raise when the queue cannot be reached (readiness)."""


# -- metrics (ops) ---------------------------------------------------------------------------
# The names the code reports (imageservice/metrics.py gives each its unit and help text):
# images_processed, images_rejected (code=...), processing_time (ms), conversion_time (ms,
# format=...), conversion_bytes (format=...), jobs_dead_lettered.


@runtime_checkable
class Metrics(Protocol):
    def increment(self, name: str, value: float = 1, **dimensions: str) -> None:
        """Add ``value`` to the counter ``name`` (with these dimensions). Never raises for a
        backend failure: a lost data point must not fail the work it measures."""

    def timing(self, name: str, milliseconds: float, **dimensions: str) -> None:
        """Record one duration of ``name``. Never raises for a backend failure."""


class NoMetrics:
    """The default: measures nothing (unit tests, and code built without a metrics sink)."""

    def increment(self, name: str, value: float = 1, **dimensions: str) -> None:
        pass

    def timing(self, name: str, milliseconds: float, **dimensions: str) -> None:
        pass


NO_METRICS = NoMetrics()


@runtime_checkable
class ImagingRunner(Protocol):
    """Where imaging work runs, and under which budget.

    Both calls raise what the imaging functions raise (ImageRejected, BadRequest,
    Unprocessable), plus ``core.errors.TooExpensive`` when the job went over its memory or
    time budget (final: the same job would fail again), ``core.errors.TooManyRequests`` (code
    ``imaging_busy``, with ``retry_after``) when no slot freed up in time, and
    ``core.errors.TransientError`` when the runner itself could not start a job.
    """

    def process(self, data: bytes, specs: "Sequence[DerivativeSpec]", limits: "ImagingLimits") -> "ProcessedImage":
        """``imaging.process_image(data, specs, limits)`` within the budget."""

    def warm(self) -> None:
        """Get ready for jobs ahead of the first (start spare processes); returns at once and
        never raises. A runner with nothing to start does nothing."""

    def convert(
        self,
        data: bytes,
        request: "ConversionRequest",
        limits: "ImagingLimits",
        *,
        logo: bytes | None = None,
        max_output_bytes: int | None = None,
    ) -> "EncodedImage":
        """``imaging.convert_image(data, request, limits, logo=..., max_output_bytes=...)``
        within the budget."""
