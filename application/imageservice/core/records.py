"""The image record and the small value types the ports exchange."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import Conflict, TooManyRequests

PENDING = "pending"
PROCESSING = "processing"
READY = "ready"
REJECTED = "rejected"
STATUSES = (PENDING, PROCESSING, READY, REJECTED)
TERMINAL = (READY, REJECTED)
# The most tags a record may carry, whatever IMAGESERVICE_MAX_TAGS says: the DynamoDB catalog
# writes a record and one item per tag in one TransactWriteItems (at most 100 items), and a put
# that swaps every tag deletes the old tags' items and writes the new ones in that same
# transaction: 1 + 2 x 48 = 97.
TAG_LIMIT = 48

# Fields the API shows, in the order the API documents them (docs/DESIGN.md "The record").
PUBLIC_FIELDS = (
    "image_id", "user_id", "status", "filename", "content_type", "size", "tags", "description",
    "created_at", "uploaded_at", "processed_at", "expires_at",
    "width", "height", "format", "mode", "frames", "animated", "sha256",
    "exif", "gps", "derivatives", "blurhash", "error", "shared_until",
)


@dataclass
class ImageRecord:
    image_id: str
    user_id: str
    status: str = PENDING
    filename: str = ""
    content_type: str | None = None
    size: int | None = None
    tags: list[str] = field(default_factory=list)
    description: str = ""
    created_at: str | None = None
    uploaded_at: str | None = None
    processed_at: str | None = None
    expires_at: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    frames: int | None = None
    animated: bool | None = None
    sha256: str | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    gps: dict[str, float] | None = None
    derivatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    blurhash: str | None = None
    error: dict[str, str] | None = None
    # When its last live share link ends (null: not shared); the catalog's link use cases set it.
    shared_until: str | None = None

    # Internal: never shown by the API.
    original_key: str = ""
    ephemeral: bool = False
    upload_expires_at: str | None = None
    lease_until: str | None = None
    attempts: int = 0
    request_id: str | None = None  # the API request that made the record (ops: log correlation)
    # Bytes of conversion outputs kept for this image: counted in the owner's usage, released
    # with the image. The catalog alone changes it (Catalog.add_bytes).
    extra_bytes: int = 0
    # The client address whose anonymous byte budget paid for the declared size: given back
    # if the upload is abandoned or rejected (admission.py).
    charged_client: str | None = None

    def to_api(self, include_gps: bool = True) -> dict[str, Any]:
        fields = self.__dict__
        data = {name: fields[name] for name in PUBLIC_FIELDS}
        data["tags"] = list(self.tags)
        if not include_gps:
            data["gps"] = None
        return data

    def to_dict(self) -> dict[str, Any]:
        """Every field, for storage. Shallow: the values are shared with the record (the
        catalogs serialise it at once); dataclasses.asdict's deep copy cost more than the SQL."""
        return {name: getattr(self, name) for name in _RECORD_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageRecord":
        """A record from a stored dict; unknown keys (fields since removed) are ignored, missing
        ones take their defaults.

        Every listed record comes through here, so it fills the instance's ``__dict__`` in one
        step from defaults computed once, instead of a 31-argument ``__init__`` call: a third of
        a list call's time before. The result equals ``cls(**data)``.
        """
        record = cls.__new__(cls)
        if data.keys() == _RECORD_FIELD_SET:  # as to_dict wrote it: the common case
            record.__dict__.update(data)
            return record
        values = dict(_PLAIN_DEFAULTS)
        values.update((k, v) for k, v in data.items() if k in _RECORD_FIELD_SET)
        for name, make in _MADE_DEFAULTS:
            if name not in values:
                values[name] = make()
        record.__dict__.update(values)
        return record

    def copy(self, **changes) -> "ImageRecord":
        return dataclasses.replace(self, **changes)


# Computed once: from_dict/to_dict run for every stored record read or written.
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(ImageRecord))
_RECORD_FIELD_SET = frozenset(_RECORD_FIELDS)
_PLAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ImageRecord) if f.default is not dataclasses.MISSING}
_MADE_DEFAULTS = tuple((f.name, f.default_factory) for f in dataclasses.fields(ImageRecord)
                       if f.default_factory is not dataclasses.MISSING)


@dataclass(frozen=True)
class ListQuery:
    """A page request for one owner's images, newest first."""

    user_id: str
    tag: str | None = None
    status: str | None = None
    since: str | None = None  # ISO 8601, inclusive, on created_at
    until: str | None = None  # ISO 8601, inclusive, on created_at
    limit: int = 50
    cursor: str | None = None  # opaque, from the previous Page


@dataclass(frozen=True)
class Page:
    images: list[ImageRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class ApiPage:
    """A page as the API sends it: each record's API JSON text, GPS included (a list is its
    owner's, or an admin's, who may see GPS), ready to be joined into the response."""

    images: list[str]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page) -> "ApiPage":
        """For catalogs that store no API text: the records rendered one by one."""
        return cls([json.dumps(r.to_api(), separators=(",", ":")) for r in page.images], page.next_cursor)


@dataclass(frozen=True)
class Token:
    user_id: str
    admin: bool = False


@dataclass(frozen=True)
class Usage:
    images: int
    bytes: int


@dataclass(frozen=True)
class OwnerLimits:
    """What one owner may hold and make: checked by Catalog.create in the same atomic write
    that counts the new record."""

    images: int  # records held
    bytes: int  # bytes held (originals + conversion outputs)
    per_minute: int  # records created in one fixed minute window (deletions do not give any back)

    def check_room(self, used: Usage, images: int, size: int) -> None:
        """Raise Conflict (``quota_exceeded``) when ``images`` more images of ``size`` bytes
        would take an owner who holds ``used`` past these limits."""
        if used.images + images > self.images:
            raise self.images_used_up()
        if used.bytes + size > self.bytes:
            raise self.bytes_used_up()

    def images_used_up(self) -> Conflict:
        return Conflict(f"The quota of {self.images} images is used up.", code="quota_exceeded")

    def bytes_used_up(self) -> Conflict:
        return Conflict(f"The quota of {self.bytes} bytes is used up.", code="quota_exceeded")

    def rate_limited(self, retry_after: int) -> TooManyRequests:
        return TooManyRequests(
            f"At most {self.per_minute} uploads a minute; try again in {retry_after} s.",
            code="rate_limited", retry_after=retry_after,
        )


# The fixed-window counter Catalog.create bumps for each new record (hit_rate callers use names
# of their own).
CREATE_RATE = "images_created"
CREATE_WINDOW_SECONDS = 60


def fixed_window(now: float, window_seconds: int) -> tuple[int, int]:
    """The window containing ``now`` (epoch seconds): its start, and the whole seconds (>= 1)
    until it ends, for Retry-After."""
    start = int(now // window_seconds) * window_seconds
    return start, max(1, math.ceil(start + window_seconds - now))


IN_FLIGHT = "in_flight"
DONE = "done"


@dataclass(frozen=True)
class IdempotencyEntry:
    """What the catalog holds for one (owner, Idempotency-Key): the request's fingerprint, and
    once the first request finished, its answer."""

    fingerprint: str
    state: str  # IN_FLIGHT | DONE
    response: dict[str, Any] | None = None
    image_id: str | None = None
    expires_at: str | None = field(default=None, compare=False)  # ISO 8601; then the key is free again


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    method: str
    headers: dict[str, str]
    expires_at: str


@dataclass(frozen=True)
class PresignedDownload:
    url: str
    expires_at: str


@dataclass(frozen=True)
class Job:
    """A unit of queued work. ``kind`` "process": process the uploaded original at storage key
    ``key``. ``kind`` "notify": deliver the event in ``payload`` (``{"target", "event"}``) to one
    target; ``key`` is then the event's id (for logs). ``kind`` "batch": pack the batch ``key``
    of the owner ``payload["user_id"]``."""

    key: str
    source: str = "app"  # "app" (upload/complete), "s3" (event notification), "drop", "pipeline"
    request_id: str | None = None  # the API request that queued it (ops: log correlation)
    kind: str = "process"  # JOB_KINDS
    payload: dict | None = None


PROCESS_JOB, NOTIFY_JOB, BATCH_JOB = "process", "notify", "batch"
JOB_KINDS = (PROCESS_JOB, NOTIFY_JOB, BATCH_JOB)


@dataclass(frozen=True)
class ReceivedJob:
    job: Job
    receipt: str
    attempts: int  # including this delivery
    visible_again_at: float | None = None  # epoch seconds when the queue hands the job out again
