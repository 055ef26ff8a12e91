"""What the use cases take and what they answer, each defined once.

Requests are pydantic models: the web layer validates query strings and JSON bodies into them
(type and shape; limits that are settings stay with the service), and ``web/api/openapi.py``
generates ``/api/openapi.json`` from these same classes, so the document and the checks cannot
drift apart. Results are plain dataclasses; their schemas are generated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, WithJsonSchema, field_validator, model_validator,
)

from .core.links import EXPIRES_IN_DEFAULT, EXPIRES_IN_MAX, EXPIRES_IN_MIN
from .core.records import STATUSES
from .core.timeutil import from_iso, to_iso

DOWNLOAD_VARIANTS = ("original", "thumb", "preview")


def _no_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; a flag where a number belongs is a client bug.
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    return value


def _split_tags(value: Any) -> Any:
    """Tags come as a JSON list or, in a query string or a form, as one comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return value.split(",")
    return value


def _iso_moment(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return to_iso(from_iso(value))
    except ValueError:
        raise ValueError("must be an ISO 8601 date or time") from None


Count = Annotated[int, BeforeValidator(_no_bool)]
Tags = Annotated[list[str], BeforeValidator(_split_tags), WithJsonSchema({
    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}, {"type": "null"}],
    "description": "A list, or one comma-separated string (null: none).",
})]
# A string in the document (JSON Schema has no "date or date-time" format that clients type well).
Moment = Annotated[str, WithJsonSchema({"type": "string", "examples": ["2026-01-31", "2026-01-31T12:00:00Z"]})]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ActingCommand(Command):
    user_id: str | None = Field(None, description="Your own user id, or any with an admin token.")


class UploadCommand(ActingCommand):
    """POST /api/images/upload (query parameters or a JSON body)."""

    size: Count = Field(..., ge=1, description="The file's exact length in bytes; signed into the upload URL.")
    content_type: str | None = Field(None, description="The declared type, e.g. image/jpeg (sniffed again later).",
                                     examples=["image/jpeg"])
    filename: str | None = Field(None, description="Shown and used for downloads; never part of a storage key.")
    tags: Tags = Field(default_factory=list)
    description: str | None = None


class ListCommand(ActingCommand):
    """GET /api/images (query parameters)."""

    tag: str | None = Field(None, description="Only images with this tag.")
    status: Literal[STATUSES] | None = Field(None, description="Only images in this state.")  # type: ignore[valid-type]
    since: Moment | None = Field(None, description="created_at on or after (ISO 8601 date or date-time).")
    until: Moment | None = Field(None, description="created_at on or before (ISO 8601 date or date-time).")
    limit: Count = Field(20, ge=1, description="Page size (at most the page_size_max setting).")
    cursor: str | None = Field(None, description="next_cursor of the previous page.")

    _moments = field_validator("since", "until")(_iso_moment)

    @model_validator(mode="after")
    def _ordered(self) -> "ListCommand":
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self


class UpdateCommand(Command):
    """PATCH /api/images/{image_id} (JSON body): only what is given changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tags: Tags | None = None
    description: str | None = None
    user_id: str | None = Field(None, description="Admin tokens only: act for this user.")

    @model_validator(mode="before")
    @classmethod
    def _null_tags_clear(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tags" in data and data["tags"] is None:
            return {**data, "tags": []}
        return data


class DownloadCommand(ActingCommand):
    """GET /api/images/{image_id}/download (query parameters)."""

    variant: Literal[DOWNLOAD_VARIANTS] = "original"  # type: ignore[valid-type]
    redirect: bool = Field(False, description="Answer 302 to the signed URL instead of JSON.")


class LinkCommand(Command):
    """POST /api/images/{image_id}/links (JSON body): a share link (docs/DESIGN.md "Share links")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expires_in: Count = Field(EXPIRES_IN_DEFAULT, ge=EXPIRES_IN_MIN, le=EXPIRES_IN_MAX,
                              description="Seconds the link lives (a browser workspace's never outlive it).")
    original: StrictBool = Field(False, description="Also share the original as uploaded, metadata and all.")
    user_id: str | None = Field(None, description="Admin tokens only: act for this user.")


class BatchCommand(Command):
    """POST /api/batches (JSON body): pack these images as one ZIP (docs/DESIGN.md "Batches")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_ids: list[str] = Field(min_length=1, description="The images, at most batch_max_images.")
    action: Literal["zip", "convert"] = Field(description="zip: the originals; convert: a conversion of each.")
    convert: dict[str, Any] | None = Field(None, description="For convert: the body of the convert call.")

    @model_validator(mode="after")
    def _convert_goes_with_its_action(self) -> "BatchCommand":
        if (self.action == "convert") != (self.convert is not None):
            raise ValueError("convert is given with action convert, and only then")
        return self


class BulkDeleteCommand(Command):
    """POST /api/images/delete (JSON body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_ids: list[str] = Field(min_length=1, description="The images, at most batch_max_images.")


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A share link as its owner sees it (docs/DESIGN.md "Share links")."""

    link_id: str
    image_id: str
    url: str  # the share page, absolute
    srcset: str  # absolute rendition URLs with width descriptors
    embed_html: str  # an <img> with src, srcset, sizes, width, height and alt
    original: bool
    created_at: str
    expires_at: str
    views: int


@dataclass(frozen=True)
class UploadTicket:
    image_id: str
    upload_url: str
    upload_method: Literal["PUT"]
    upload_headers: dict[str, str]
    expires_at: str
    status: str
    # The tags as stored (normalised, duplicates dropped): pages show them without a copy of
    # the rule. An idempotent replay of a ticket issued before this field answers [].
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Completion:
    image_id: str
    status: str


@dataclass(frozen=True)
class DownloadLink:
    download_url: str
    expires_at: str


@dataclass(frozen=True)
class Conversion:
    download_url: str
    expires_at: str
    format: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class UsageReport:
    images: int
    bytes: int = field(metadata={"description": "Originals plus conversion outputs."})
    quota_images: int = 0
    quota_bytes: int = 0


@dataclass(frozen=True)
class AccountLimits:
    """The limits a caller may plan around, as ``GET /api/me`` shows them (named as the settings)."""

    max_upload_bytes: int
    max_pixels: int
    max_frames: int
    convert_max_edge: int
    upload_url_ttl: int
    download_url_ttl: int
    session_ttl: int


@dataclass(frozen=True)
class Account:
    """``GET /api/me``: who is calling, what they use and the limits."""

    user_id: str
    admin: bool
    expires_at: str | None = field(metadata={"description": "A browser workspace's or a token's expiry."})
    usage: UsageReport
    limits: AccountLimits
