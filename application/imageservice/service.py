"""Use cases: what the API, the pages and the CLI do, over the ports.

Every method takes the acting ``Principal`` and enforces ownership here, once: an image of
another owner is indistinguishable from a missing one (NotFound).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from .core import imaging, keys
from .core.conversions import ConversionRequest
from .core.correlation import current_request_id
from .core.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, TooManyRequests, UnsupportedMediaType
from .core.filenames import download_name, sanitize_filename, with_extension
from .core.ids import new_id
from .pipeline import imaging_limits
from .core.text import normalise_tag
from .core.records import PENDING, READY, STATUSES, ImageRecord, Job, ListQuery, Page, Token
from .core.timeutil import from_iso, iso_in, to_iso, utcnow
from .admission import AnonymousAdmission
from .ports import NO_METRICS, BlobNotFound, BlobStore, Catalog, ImagingRunner, JobQueue, Metrics
from .settings import Settings

log = logging.getLogger(__name__)

# Declared types an upload may announce; the processor sniffs the real type anyway.
UPLOAD_CONTENT_TYPES = frozenset({
    "image/jpeg", "image/pjpeg", "image/png", "image/apng", "image/gif", "image/webp", "image/tiff",
    "image/bmp", "image/x-ms-bmp", "image/x-icon", "image/vnd.microsoft.icon", "image/heic",
    "image/heif", "image/heic-sequence", "image/heif-sequence", "image/avif", "image/avif-sequence",
})
DOWNLOAD_VARIANTS = ("original", "thumb", "preview")
TOKEN_PREFIX = "isv_"


@dataclass(frozen=True)
class Principal:
    """Who is acting: a token's user, or an anonymous session workspace."""

    user_id: str
    admin: bool = False
    expires_at: str | None = None  # session workspaces only
    client: str | None = None  # session workspaces: the caller's address, for the anonymous budgets

    @property
    def ephemeral(self) -> bool:
        return self.expires_at is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ImageService:
    def __init__(self, blobs: BlobStore, catalog: Catalog, queue: JobQueue, settings: Settings,
                 clock: Callable[[], datetime] = utcnow, metrics: Metrics = NO_METRICS,
                 admission: AnonymousAdmission | None = None, *, imaging: ImagingRunner):
        self.admission = admission  # anonymous byte budgets (edge); None: not limited
        self.blobs = blobs
        self.imaging = imaging
        self.catalog = catalog
        self.queue = queue
        self.settings = settings
        self.clock = clock
        self.metrics = metrics

    # -- ownership ----------------------------------------------------------------------------

    def owner_for(self, principal: Principal, user_id: str | None) -> str:
        """The user_id the call acts for: the caller's own, or any one for an admin."""
        if user_id is not None and not isinstance(user_id, str):
            raise BadRequest("user_id must be a string.", code="invalid_parameter")
        if not user_id or user_id == principal.user_id:
            return principal.user_id
        if not principal.admin:
            raise Forbidden("user_id must be your own.", code="forbidden_user")
        if not keys.valid_user_id(user_id):
            raise BadRequest("user_id is not a valid user id.", code="invalid_parameter")
        return user_id

    def _record(self, principal: Principal, image_id: str, user_id: str | None = None) -> ImageRecord:
        record = self.catalog.get(self.owner_for(principal, user_id), image_id)
        if record is None:
            raise NotFound("No such image.", code="image_not_found")
        return record

    # -- uploads ------------------------------------------------------------------------------

    def create_upload(self, principal: Principal, params: Mapping[str, Any]) -> dict[str, Any]:
        s = self.settings
        owner = self.owner_for(principal, _optional_str(params, "user_id"))
        content_type = _optional_str(params, "content_type")
        if content_type:
            content_type = content_type.split(";")[0].strip().lower()
            if content_type not in UPLOAD_CONTENT_TYPES:
                raise UnsupportedMediaType(
                    f"{content_type} is not a supported image type (JPEG, PNG, GIF, WebP, TIFF, BMP, ICO, HEIC, AVIF).",
                    code="unsupported_format",
                )
        size = _optional_int(params, "size", minimum=1)
        if size is not None and size > s.max_upload_bytes:
            raise PayloadTooLarge(f"The file is larger than the {s.max_upload_bytes} bytes allowed.", code="too_large")
        filename = sanitize_filename(_optional_str(params, "filename"))
        tags = self.normalize_tags(params.get("tags"))
        description = self.normalize_description(params.get("description"))
        self._check_quota_and_rate(owner, size or 0)
        if principal.ephemeral and self.admission is not None:
            # An undeclared size may still be anything up to the upload limit.
            self.admission.admit_bytes(principal.client or "unknown", size or s.max_upload_bytes)

        now = self.clock()
        image_id = new_id()
        ephemeral = keys.is_session_user(owner)
        record = ImageRecord(
            image_id=image_id,
            user_id=owner,
            status=PENDING,
            filename=filename,
            content_type=content_type,
            size=size,
            tags=tags,
            description=description,
            created_at=to_iso(now),
            expires_at=principal.expires_at if ephemeral else None,
            original_key=keys.original_key(owner, image_id, ephemeral),
            ephemeral=ephemeral,
            upload_expires_at=iso_in(s.upload_url_ttl, now),
            request_id=current_request_id(),
        )
        self.catalog.create(record)
        log.info("upload %s/%s created", owner, image_id, extra={"image_id": image_id, "user_id": owner})
        upload = self.blobs.presign_upload(
            record.original_key, content_type=content_type, content_length=size, expires_in=s.upload_url_ttl
        )
        return {
            "image_id": image_id,
            "upload_url": upload.url,
            "upload_method": upload.method,
            "upload_headers": upload.headers,
            "expires_at": upload.expires_at,
            "status": record.status,
        }

    def _check_quota_and_rate(self, owner: str, incoming_bytes: int) -> None:
        s = self.settings
        usage = self.catalog.usage(owner)
        if usage.images >= s.quota_images:
            raise Conflict(f"The quota of {s.quota_images} images is used up.", code="quota_exceeded")
        if usage.bytes + incoming_bytes > s.quota_bytes:
            raise Conflict(f"The quota of {s.quota_bytes} bytes is used up.", code="quota_exceeded")
        minute_ago = to_iso(self.clock() - timedelta(minutes=1))
        recent = self.catalog.list(ListQuery(owner, since=minute_ago, limit=s.uploads_per_minute))
        if len(recent.images) >= s.uploads_per_minute:
            raise TooManyRequests(
                f"At most {s.uploads_per_minute} uploads a minute; try again shortly.", code="rate_limited"
            )

    def complete(self, principal: Principal, image_id: str, user_id: str | None = None) -> dict[str, Any]:
        """The client says its upload finished: queue processing (a no-op once processed)."""
        record = self._record(principal, image_id, user_id)
        if record.status == PENDING:
            if self.blobs.size(record.original_key) is None:
                raise Conflict("Nothing was uploaded for this image yet.", code="upload_missing")
            self.queue.send(Job(record.original_key, source="complete", request_id=current_request_id()))
        return {"image_id": record.image_id, "status": record.status}

    def upload_received(self, key: str) -> None:
        """The local blob endpoint stored an original: queue it, as S3 events do in aws mode."""
        if keys.parse_original_key(key) is not None:
            self.queue.send(Job(key, source="upload", request_id=current_request_id()))

    # -- reading ------------------------------------------------------------------------------

    def get(self, principal: Principal, image_id: str, user_id: str | None = None) -> ImageRecord:
        return self._record(principal, image_id, user_id)

    def list(self, principal: Principal, params: Mapping[str, Any]) -> Page:
        owner = self.owner_for(principal, _optional_str(params, "user_id"))
        limit = _optional_int(params, "limit", minimum=1) or 20
        if limit > self.settings.page_size_max:
            raise BadRequest(f"limit must be at most {self.settings.page_size_max}.", code="invalid_parameter")
        status = _optional_str(params, "status")
        if status and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}.", code="invalid_parameter")
        tag = _optional_str(params, "tag")
        since = _optional_moment(params, "since")
        until = _optional_moment(params, "until")
        if since and until and since > until:
            raise BadRequest("since must not be after until.", code="invalid_parameter")
        return self.catalog.list(ListQuery(
            user_id=owner,
            tag=normalise_tag(tag or "") or None,
            status=status,
            since=since,
            until=until,
            limit=limit,
            cursor=_optional_str(params, "cursor"),
        ))

    def update(self, principal: Principal, image_id: str, body: Mapping[str, Any], user_id: str | None = None) -> ImageRecord:
        unknown = set(body) - {"tags", "description", "user_id"}
        if unknown:
            raise BadRequest(f"Only tags and description can be changed, not {', '.join(sorted(unknown))}.",
                             code="invalid_parameter")
        record = self._record(principal, image_id, user_id)
        changes: dict[str, Any] = {}
        if "tags" in body:
            changes["tags"] = self.normalize_tags(body["tags"])
        if "description" in body:
            changes["description"] = self.normalize_description(body["description"])
        updated = record.copy(**changes)
        if not self.catalog.put(updated, expect_status=[record.status]):
            raise Conflict("The image changed meanwhile; try again.", code="concurrent_update")
        return updated

    def usage(self, principal: Principal) -> dict[str, int]:
        used = self.catalog.usage(principal.user_id)
        return {
            "images": used.images, "bytes": used.bytes,
            "quota_images": self.settings.quota_images, "quota_bytes": self.settings.quota_bytes,
        }

    # -- downloads and conversions ------------------------------------------------------------

    def download(self, principal: Principal, image_id: str, variant: str = "original",
                 user_id: str | None = None) -> dict[str, Any]:
        if variant not in DOWNLOAD_VARIANTS:
            raise BadRequest(f"variant must be one of {', '.join(DOWNLOAD_VARIANTS)}.", code="invalid_parameter")
        record = self._ready(principal, image_id, user_id)
        if variant == "original":
            key, content_type, attachment = record.original_key, record.content_type or "application/octet-stream", True
            filename = download_name(record.filename, record.content_type)
        else:
            key = keys.derivative_key(record.user_id, record.image_id, variant, record.ephemeral)
            content_type, attachment = "image/webp", False
            filename = with_extension(record.filename, "webp", f"-{variant}")
        url = self.blobs.presign_download(
            key, expires_in=self.settings.download_url_ttl, filename=filename,
            content_type=content_type, attachment=attachment,
        )
        return {"download_url": url.url, "expires_at": url.expires_at}

    def convert(self, principal: Principal, image_id: str, params: Mapping[str, Any],
                user_id: str | None = None) -> dict[str, Any]:
        request = _conversion_request(params)
        record = self._ready(principal, image_id, user_id)
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:32]
        meta_key = keys.conversion_key(record.user_id, record.image_id, digest, "json", record.ephemeral)
        meta = self._cached_conversion(meta_key)
        if meta is None:
            original = self.blobs.get(record.original_key, max_bytes=self.settings.max_upload_bytes)
            started = time.perf_counter()
            encoded = self.imaging.convert(original, ConversionRequest(**request), imaging_limits(self.settings))
            self.metrics.timing("conversion_time", (time.perf_counter() - started) * 1000, format=encoded.format)
            self.metrics.increment("conversion_bytes", len(encoded.data), format=encoded.format)
            meta = {
                "key": keys.conversion_key(record.user_id, record.image_id, digest, encoded.extension, record.ephemeral),
                "format": encoded.format, "content_type": encoded.content_type, "extension": encoded.extension,
                "width": encoded.width, "height": encoded.height, "bytes": len(encoded.data),
            }
            self.blobs.put(meta["key"], encoded.data, encoded.content_type)
            self.blobs.put(meta_key, json.dumps(meta).encode(), "application/json")
        filename = with_extension(record.filename, meta["extension"], f"-{meta['width']}x{meta['height']}")
        url = self.blobs.presign_download(
            meta["key"], expires_in=self.settings.download_url_ttl, filename=filename,
            content_type=meta["content_type"], attachment=True,
        )
        return {
            "download_url": url.url, "expires_at": url.expires_at, "format": meta["format"],
            "width": meta["width"], "height": meta["height"], "bytes": meta["bytes"],
        }

    def _cached_conversion(self, meta_key: str) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.blobs.get(meta_key, max_bytes=64 * 1024))
        except (BlobNotFound, ValueError):
            return None
        return meta if self.blobs.size(meta["key"]) == meta["bytes"] else None

    def _ready(self, principal: Principal, image_id: str, user_id: str | None) -> ImageRecord:
        record = self._record(principal, image_id, user_id)
        if record.status != READY:
            raise Conflict(f"The image is {record.status}, not ready.", code="not_ready")
        return record

    # -- deletion and housekeeping ------------------------------------------------------------

    def delete(self, principal: Principal, image_id: str, user_id: str | None = None) -> None:
        self.remove(self._record(principal, image_id, user_id))

    def remove(self, record: ImageRecord) -> None:
        """Original, derivatives, conversions, then the record (so a failure can be retried)."""
        self.blobs.delete(record.original_key)
        for prefix in keys.image_prefixes(record.user_id, record.image_id, record.ephemeral):
            self.blobs.delete_prefix(prefix)
        self.catalog.delete(record.user_id, record.image_id)

    def sweep(self, batch: int = 100) -> dict[str, int]:
        """Remove expired session workspaces and pending uploads whose URL lapsed long ago."""
        now = self.clock()
        counts = {"expired": 0, "abandoned": 0}
        for name, finder, moment in (
            ("expired", self.catalog.expired, now),
            ("abandoned", self.catalog.abandoned, now - timedelta(seconds=self.settings.pending_grace)),
        ):
            while True:
                records = finder(to_iso(moment), limit=batch)
                for record in records:
                    self.remove(record)
                counts[name] += len(records)
                if len(records) < batch:
                    break
        return counts

    # -- tokens -------------------------------------------------------------------------------

    def create_token(self, user_id: str, admin: bool = False) -> str:
        if not keys.valid_user_id(user_id) or keys.is_session_user(user_id):
            raise BadRequest(
                f"{user_id!r} is not a valid user id (letters, digits, . _ @ -; not starting with "
                f"{keys.SESSION_USER_PREFIX!r}).", code="invalid_parameter")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.catalog.save_token(hash_token(token), Token(user_id=user_id, admin=admin))
        return token

    def authenticate_token(self, token: str) -> Principal | None:
        found = self.catalog.find_token(hash_token(token))
        return Principal(found.user_id, admin=found.admin) if found else None

    # -- input normalisation ------------------------------------------------------------------

    def normalize_tags(self, value: Any) -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            items = value
        else:
            raise BadRequest("tags must be a list of strings or a comma-separated string.", code="invalid_parameter")
        tags: list[str] = []
        for item in items:
            tag = normalise_tag(item)
            if not tag:
                continue
            if len(tag) > self.settings.max_tag_length:
                raise BadRequest(f"A tag has at most {self.settings.max_tag_length} characters.", code="invalid_parameter")
            if tag not in tags:
                tags.append(tag)
        if len(tags) > self.settings.max_tags:
            raise BadRequest(f"At most {self.settings.max_tags} tags.", code="invalid_parameter")
        return tags

    def normalize_description(self, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise BadRequest("description must be a string.", code="invalid_parameter")
        if len(value) > self.settings.max_description_length:
            raise BadRequest(
                f"description has at most {self.settings.max_description_length} characters.", code="invalid_parameter"
            )
        return value.strip()


def _optional_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string.", code="invalid_parameter")
    return value


def _optional_int(params: Mapping[str, Any], name: str, minimum: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a whole number.", code="invalid_parameter")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise BadRequest(f"{name} must be a whole number.", code="invalid_parameter")
    if minimum is not None and number < minimum:
        raise BadRequest(f"{name} must be at least {minimum}.", code="invalid_parameter")
    return number


def _optional_moment(params: Mapping[str, Any], name: str) -> str | None:
    value = _optional_str(params, name)
    if value is None:
        return None
    try:
        return to_iso(from_iso(value))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or time.", code="invalid_parameter") from None


def _conversion_request(params: Mapping[str, Any]) -> dict[str, Any]:
    fmt = (_optional_str(params, "format") or "").lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in imaging.CONVERT_FORMATS:
        raise BadRequest(f"format must be one of {', '.join(imaging.CONVERT_FORMATS)}.", code="invalid_parameter")
    fit = (_optional_str(params, "fit") or "contain").lower()
    if fit not in imaging.FITS:
        raise BadRequest(f"fit must be one of {', '.join(imaging.FITS)}.", code="invalid_parameter")
    return {
        "format": fmt,
        "width": _optional_int(params, "width", minimum=1),
        "height": _optional_int(params, "height", minimum=1),
        "fit": fit,
        "quality": _optional_int(params, "quality", minimum=1),
    }
