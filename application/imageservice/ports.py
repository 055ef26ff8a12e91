"""Ports: the small interfaces the core and the entry points need from the outside world.

Adapters in ``adapters/local`` (filesystem, SQLite) and ``adapters/aws`` (S3, SQS, SNS)
implement them; ``tests/integration/test_contract_*.py`` runs one suite against both. The
store's ports (the catalog's repositories and unit of work) are in ``unit_of_work.py``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from .core.records import Job, PresignedDownload, PresignedUpload, ReceivedJob

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


@runtime_checkable
class EdgeCache(Protocol):
    """A CDN in front of the public side (docs/DESIGN.md "Share links"): told when a link's
    URLs must stop being served from its caches."""

    def invalidate_link(self, link_id: str) -> None:
        """Drop everything cached under ``/s/{link_id}``. Never raises for a backend failure:
        the link is already dead at the origin, and what the CDN kept expires with the link
        (its s-maxage never outlives it); a failure is logged and counted."""


class NoEdgeCache:
    """No CDN (embedded mode): nothing to invalidate."""

    def invalidate_link(self, link_id: str) -> None:
        pass


NO_EDGE_CACHE = NoEdgeCache()


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
