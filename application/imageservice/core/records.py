"""The image record and the small value types the ports exchange."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
PROCESSING = "processing"
READY = "ready"
REJECTED = "rejected"
STATUSES = (PENDING, PROCESSING, READY, REJECTED)
TERMINAL = (READY, REJECTED)

# Fields the API shows, in the order DESIGN.md lists them.
PUBLIC_FIELDS = (
    "image_id", "user_id", "status", "filename", "content_type", "size", "tags", "description",
    "created_at", "uploaded_at", "processed_at", "expires_at",
    "width", "height", "format", "mode", "frames", "animated", "sha256",
    "exif", "gps", "derivatives", "blurhash", "error",
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

    # Internal: never shown by the API.
    original_key: str = ""
    ephemeral: bool = False
    upload_expires_at: str | None = None
    lease_until: str | None = None
    attempts: int = 0
    request_id: str | None = None  # the API request that made the record (ops: log correlation)

    def to_api(self, include_gps: bool = True) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        data["tags"] = list(self.tags)
        if not include_gps:
            data["gps"] = None
        return data

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageRecord":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def copy(self, **changes) -> "ImageRecord":
        return dataclasses.replace(self, **changes)


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
class Token:
    user_id: str
    admin: bool = False


@dataclass(frozen=True)
class Usage:
    images: int
    bytes: int


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
    target; ``key`` is then the event's id (for logs)."""

    key: str
    source: str = "app"  # "app" (upload/complete), "s3" (event notification), "drop", "pipeline"
    request_id: str | None = None  # the API request that queued it (ops: log correlation)
    kind: str = "process"  # JOB_KINDS
    payload: dict | None = None


PROCESS_JOB, NOTIFY_JOB = "process", "notify"
JOB_KINDS = (PROCESS_JOB, NOTIFY_JOB)


@dataclass(frozen=True)
class ReceivedJob:
    job: Job
    receipt: str
    attempts: int  # including this delivery
    visible_again_at: float | None = None  # epoch seconds when the queue hands the job out again
