"""Use cases: what the API, the pages and the CLI do, over the ports.

Every method takes the acting ``Principal`` and a typed command (``commands.py``; the web layer
parses requests into them) and returns a record or a result dataclass. Ownership is enforced
here, once: an image of another owner is indistinguishable from a missing one (NotFound).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from .auth import Principal, hash_token, new_token
from .commands import (
    DOWNLOAD_VARIANTS,
    Completion,
    Conversion,
    DownloadLink,
    ListCommand,
    UpdateCommand,
    UploadCommand,
    UploadTicket,
    UsageReport,
)
from .core import keys
from .core.conversions import ConversionRequest
from .core.correlation import current_request_id
from .core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    TooManyRequests,
    Unprocessable,
    UnsupportedMediaType,
)
from .core.filenames import download_name, sanitize_filename, with_extension
from .core.formats import UPLOAD_MEDIA_TYPES
from .core.ids import is_id, new_id
from .pipeline import imaging_limits
from .removal import remove_image_objects
from .core.text import normalise_tag
from .core.records import DONE, PENDING, READY, ApiPage, ImageRecord, Job, ListQuery, OwnerLimits, Page, Token
from .core.timeutil import from_iso, iso_in, to_iso, utcnow
from .admission import AnonymousAdmission
from .ports import NO_METRICS, BlobNotFound, BlobStore, Catalog, ImagingRunner, JobQueue, Metrics
from .settings import Settings

log = logging.getLogger(__name__)

# Declared types an upload may announce (core/formats.py); the processor sniffs the real type anyway.
UPLOAD_CONTENT_TYPES = UPLOAD_MEDIA_TYPES
CONVERSION_RATE = "conversions"  # Catalog.hit_rate counter of new conversion outputs per owner
# Tokens found in the catalog are remembered this long, by this many: a token never changes
# and is never revoked, so the cache saves a catalog read per API call at no risk; the time
# bound keeps it honest should revocation ever come. Unknown tokens are never cached (a flood
# of made-up tokens must not push real ones out).
TOKEN_CACHE_SECONDS = 60
TOKEN_CACHE_SIZE = 10_000


def _image_gone() -> NotFound:
    return NotFound("No such image.", code="image_not_found")


def _bytes_quota(limit: int) -> Conflict:
    return Conflict(f"The quota of {limit} bytes is used up (conversions count too).", code="quota_exceeded")


__all__ = ["DOWNLOAD_VARIANTS", "ImageService", "Principal", "UPLOAD_CONTENT_TYPES", "hash_token"]


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
        self._known_tokens: dict[str, tuple[Principal, float]] = {}
        self._known_tokens_lock = threading.Lock()

    # -- ownership ----------------------------------------------------------------------------

    def owner_for(self, principal: Principal, user_id: str | None) -> str:
        """The user_id the call acts for: the caller's own, or any one for an admin."""
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
            raise _image_gone()
        return record

    # -- uploads ------------------------------------------------------------------------------

    def create_upload(self, principal: Principal, command: UploadCommand,
                      idempotency_key: str | None = None) -> UploadTicket:
        """A pending record and a presigned URL to PUT its bytes to.

        With an ``idempotency_key`` (per owner, for ``idempotency_ttl`` seconds): a repeat of
        the same command answers the same ticket (a fresh URL for the same record when the first
        expired unused); another command under the key is 422 ``idempotency_key_reused``; a
        repeat while the first is still running is 409 ``idempotency_key_in_flight``.
        """
        owner = self.owner_for(principal, command.user_id)
        if idempotency_key is None:
            return self._create_upload(principal, owner, command)
        fingerprint = hashlib.sha256(
            json.dumps([owner, command.model_dump(mode="json", exclude={"user_id"})], sort_keys=True).encode()
        ).hexdigest()
        for _ in range(2):  # a second round only when the first key's record is gone (see below)
            expires_at = iso_in(self.settings.idempotency_ttl, self.clock())
            entry = self.catalog.idempotency_begin(owner, idempotency_key, fingerprint, expires_at)
            if entry is None:  # this request owns the key
                try:
                    ticket = self._create_upload(principal, owner, command)
                except BaseException:
                    self.catalog.idempotency_abandon(owner, idempotency_key)  # a failure is not remembered
                    raise
                self.catalog.idempotency_finish(owner, idempotency_key, ticket.image_id, asdict(ticket))
                return ticket
            if entry.fingerprint != fingerprint:
                raise Unprocessable("This Idempotency-Key was used for another request.",
                                    code="idempotency_key_reused")
            if entry.state != DONE or entry.response is None:
                raise Conflict("A request with this Idempotency-Key is still running; repeat it shortly.",
                               code="idempotency_key_in_flight")
            replayed = self._replay_upload(owner, UploadTicket(**entry.response))
            if replayed is not None:
                return replayed
            # The record the key made was swept or deleted: nothing of it is left to answer
            # with, so the key starts over (still one live image per key).
            self.catalog.idempotency_abandon(owner, idempotency_key)
        raise Conflict("A request with this Idempotency-Key is still running; repeat it shortly.",
                       code="idempotency_key_in_flight")

    def _replay_upload(self, owner: str, ticket: UploadTicket) -> UploadTicket | None:
        """The first answer again; a fresh URL for the same record when the first one expired
        before anything was uploaded. None when the record is gone."""
        record = self.catalog.get(owner, ticket.image_id)
        if record is None:
            return None
        now = self.clock()
        if record.status != PENDING or from_iso(ticket.expires_at) > now or \
                self.blobs.size(record.original_key) is not None:
            return replace(ticket, status=record.status)
        s = self.settings
        upload = self.blobs.presign_upload(record.original_key, content_type=record.content_type,
                                           content_length=record.size, expires_in=s.upload_url_ttl)
        # The sweeper removes pending records whose URL lapsed: this one has a new URL.
        self.catalog.put(record.copy(upload_expires_at=iso_in(s.upload_url_ttl, now)), expect_status=[PENDING])
        return replace(ticket, upload_url=upload.url, upload_headers=upload.headers, expires_at=upload.expires_at)

    def _create_upload(self, principal: Principal, owner: str, command: UploadCommand) -> UploadTicket:
        s = self.settings
        content_type = command.content_type
        if content_type:
            content_type = content_type.split(";")[0].strip().lower()
            if content_type not in UPLOAD_CONTENT_TYPES:
                raise UnsupportedMediaType(
                    f"{content_type} is not a supported image type (JPEG, PNG, GIF, WebP, TIFF, BMP, ICO, HEIC, AVIF).",
                    code="unsupported_format",
                )
        size = command.size  # required and signed into the URL: the quota below counts real bytes
        if size > s.max_upload_bytes:
            raise PayloadTooLarge(f"The file is larger than the {s.max_upload_bytes} bytes allowed.", code="too_large")
        filename = sanitize_filename(command.filename)
        tags = self.normalize_tags(command.tags)
        description = self.normalize_description(command.description)
        charged_client = None
        if principal.ephemeral and self.admission is not None:
            charged_client = principal.client or "unknown"
            self.admission.admit_bytes(charged_client, size)

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
            charged_client=charged_client,
        )
        # Quota and per-minute rate are checked and counted with the insert, atomically.
        try:
            self.catalog.create(record, limits=OwnerLimits(s.quota_images, s.quota_bytes, s.uploads_per_minute))
        except ServiceError:
            self.refund_charge(record)  # refused: the declared bytes will never come
            raise
        log.debug("upload %s/%s created", owner, image_id, extra={"image_id": image_id, "user_id": owner})
        upload = self.blobs.presign_upload(
            record.original_key, content_type=content_type, content_length=size, expires_in=s.upload_url_ttl
        )
        return UploadTicket(image_id, upload.url, upload.method, upload.headers, upload.expires_at,  # type: ignore[arg-type]
                            record.status, list(record.tags))

    def complete(self, principal: Principal, image_id: str, user_id: str | None = None) -> Completion:
        """The client says its upload finished: queue processing (a no-op once processed)."""
        record = self._record(principal, image_id, user_id)
        if record.status == PENDING:
            if self.blobs.size(record.original_key) is None:
                raise Conflict("Nothing was uploaded for this image yet.", code="upload_missing")
            self.queue.send(Job(record.original_key, source="complete", request_id=current_request_id()))
        return Completion(record.image_id, record.status)

    def check_upload_open(self, key: str) -> None:
        """Upload URLs are single-use: only a ``pending`` record's original may take bytes.

        Raises Conflict (``already_uploaded``) otherwise (processed, rejected, or gone).
        """
        parsed = keys.parse_original_key(key)
        record = self.catalog.get(parsed.user_id, parsed.image_id) if parsed and parsed.image_id else None
        if record is None or record.status != PENDING:
            raise Conflict("This upload URL has been used; the image takes no more bytes.", code="already_uploaded")

    def upload_received(self, key: str) -> None:
        """The local blob endpoint stored an original: queue it, as S3 events do in aws mode."""
        if keys.parse_original_key(key) is not None:
            self.queue.send(Job(key, source="upload", request_id=current_request_id()))

    # -- reading ------------------------------------------------------------------------------

    def get(self, principal: Principal, image_id: str, user_id: str | None = None) -> ImageRecord:
        return self._record(principal, image_id, user_id)

    def list(self, principal: Principal, command: ListCommand) -> Page:
        return self.catalog.list(self._list_query(principal, command))

    def list_api(self, principal: Principal, command: ListCommand) -> ApiPage:
        """``list`` as the API's JSON text of each record. GPS is in it: a list is always the
        caller's own, or an admin's acting for an owner, and both may see GPS."""
        return self.catalog.list_api(self._list_query(principal, command))

    def _list_query(self, principal: Principal, command: ListCommand) -> ListQuery:
        owner = self.owner_for(principal, command.user_id)
        if command.limit > self.settings.page_size_max:
            raise BadRequest(f"limit must be at most {self.settings.page_size_max}.", code="invalid_parameter")
        return ListQuery(
            user_id=owner,
            tag=normalise_tag(command.tag or "") or None,
            status=command.status,
            since=command.since,
            until=command.until,
            limit=command.limit,
            cursor=command.cursor,
        )

    def update(self, principal: Principal, image_id: str, command: UpdateCommand,
               user_id: str | None = None) -> ImageRecord:
        record = self._record(principal, image_id, user_id or command.user_id)
        changes: dict[str, Any] = {}
        if command.tags is not None:
            changes["tags"] = self.normalize_tags(command.tags)
        if command.description is not None:
            changes["description"] = self.normalize_description(command.description)
        updated = record.copy(**changes)
        if not self.catalog.put(updated, expect_status=[record.status]):
            raise Conflict("The image changed meanwhile; try again.", code="concurrent_update")
        return updated

    def usage(self, principal: Principal) -> UsageReport:
        used = self.catalog.usage(principal.user_id)
        return UsageReport(used.images, used.bytes, self.settings.quota_images, self.settings.quota_bytes)

    # -- downloads and conversions ------------------------------------------------------------

    def download(self, principal: Principal, image_id: str, variant: str = "original",
                 user_id: str | None = None) -> DownloadLink:
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
        return DownloadLink(url.url, url.expires_at)

    def convert(self, principal: Principal, image_id: str, request: ConversionRequest,
                user_id: str | None = None) -> Conversion:
        """Convert (and watermark) a ready image, or answer the stored output of an equal request.

        Each new output costs the owner one of ``conversions_per_minute`` (429 with Retry-After),
        counts in their byte usage and quota (409 quota_exceeded) and may not exceed
        ``max_upload_bytes`` (422 output_too_large). A watermark ``image_id`` must name another
        ready image of the same owner (404 otherwise); its original is the logo.
        """
        s = self.settings
        record = self._ready(principal, image_id, user_id)
        digest = request.cache_key()  # normalised: requests that make equal outputs share one file
        meta_key = keys.conversion_key(record.user_id, record.image_id, digest, "json", record.ephemeral)
        meta = self._cached_conversion(meta_key)
        if meta is None:
            logo = self._logo(principal, request, record.user_id)
            wait = self.catalog.hit_rate(record.user_id, CONVERSION_RATE, s.conversions_per_minute)
            if wait is not None:
                raise TooManyRequests(f"At most {s.conversions_per_minute} new conversions a minute; "
                                      f"try again in {wait} s.", code="rate_limited", retry_after=wait)
            if self.catalog.usage(record.user_id).bytes >= s.quota_bytes:  # before spending the work
                raise _bytes_quota(s.quota_bytes)
            meta = self._make_conversion(record, request, digest, logo)
            self.blobs.put(meta_key, json.dumps(meta).encode(), "application/json")
            if self.catalog.get(record.user_id, record.image_id) is None:
                # Deleted while it was converted: the delete may have run before these files
                # were written, so they go now, and the caller hears what a later call would.
                for written in (meta["key"], meta_key):
                    self.blobs.delete(written)
                raise _image_gone()
        filename = with_extension(record.filename, meta["extension"], f"-{meta['width']}x{meta['height']}")
        url = self.blobs.presign_download(
            meta["key"], expires_in=s.download_url_ttl, filename=filename,
            content_type=meta["content_type"], attachment=True,
        )
        return Conversion(url.url, url.expires_at, meta["format"], meta["width"], meta["height"], meta["bytes"])

    def _make_conversion(self, record: ImageRecord, request: ConversionRequest, digest: str,
                         logo: bytes | None) -> dict[str, Any]:
        s = self.settings
        try:
            original = self.blobs.get(record.original_key, max_bytes=s.max_upload_bytes)
        except BlobNotFound:  # deleted since it was read as ready
            raise _image_gone() from None
        started = time.perf_counter()
        encoded = self.imaging.convert(original, request, imaging_limits(s), logo=logo,
                                       max_output_bytes=s.max_upload_bytes)
        self.metrics.timing("conversion_time", (time.perf_counter() - started) * 1000, format=encoded.format)
        self.metrics.increment("conversion_bytes", len(encoded.data), format=encoded.format)
        # Counted before it is stored, atomically against the quota: two racing conversions
        # cannot both squeeze under it. (Two racing equal requests may each count their copy
        # of one file until the image is deleted; the rate limit bounds how often.)
        if not self.catalog.add_bytes(record.user_id, record.image_id, len(encoded.data), limit=s.quota_bytes):
            # Refused for one of two reasons: the quota, or the image was deleted meanwhile
            # (and its bytes released), which is a 404 like any later call would get.
            if self.catalog.get(record.user_id, record.image_id) is None:
                raise _image_gone()
            raise _bytes_quota(s.quota_bytes)
        key = keys.conversion_key(record.user_id, record.image_id, digest, encoded.extension, record.ephemeral)
        self.blobs.put(key, encoded.data, encoded.content_type)
        return {
            "key": key, "format": encoded.format, "content_type": encoded.content_type,
            "extension": encoded.extension, "width": encoded.width, "height": encoded.height,
            "bytes": len(encoded.data),
        }

    def _logo(self, principal: Principal, request: ConversionRequest, owner: str) -> bytes | None:
        """The original bytes of the watermark's logo image: the same owner's, and ready."""
        mark = request.watermark
        if mark is None or mark.image_id is None:
            return None
        if not is_id(mark.image_id):
            raise NotFound("No such watermark image.", code="image_not_found")
        logo = self.catalog.get(owner, mark.image_id)
        if logo is None:
            raise NotFound("No such watermark image.", code="image_not_found")
        if logo.status != READY:
            raise Conflict(f"The watermark image is {logo.status}, not ready.", code="not_ready")
        return self.blobs.get(logo.original_key, max_bytes=self.settings.max_upload_bytes)

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

    def remove(self, record: ImageRecord) -> bool:
        """Original, derivatives, conversions, then the record (so a failure can be retried).
        True when this call removed the record."""
        remove_image_objects(self.blobs, record)
        return self.catalog.delete(record.user_id, record.image_id)

    def refund_charge(self, record: ImageRecord) -> None:
        """Give back the anonymous bytes a record's declared size was charged, once its upload
        can no longer bring them (abandoned, refused or rejected)."""
        if self.admission is not None:
            self.admission.refund_upload(record)

    def sweep(self, batch: int = 100) -> dict[str, int]:
        """Remove expired session workspaces, pending uploads whose URL lapsed long ago, and
        quarantined files older than the quarantine days (where no lifecycle rule does it)."""
        now = self.clock()
        counts = {"expired": 0, "abandoned": 0}
        counts["quarantined"] = self.blobs.expire_prefix(
            keys.QUARANTINE, (now - timedelta(days=self.settings.quarantine_days)).timestamp())
        for name, finder, moment in (
            ("expired", self.catalog.expired, now),
            ("abandoned", self.catalog.abandoned, now - timedelta(seconds=self.settings.pending_grace)),
        ):
            while True:
                records = finder(to_iso(moment), limit=batch)
                for record in records:
                    # Only the sweep that removed it gives back its charge: never twice.
                    if self.remove(record) and name == "abandoned":
                        self.refund_charge(record)
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
        token = new_token()
        self.catalog.save_token(hash_token(token), Token(user_id=user_id, admin=admin))
        return token

    def authenticate_token(self, token: str) -> Principal | None:
        token_hash = hash_token(token)
        now = self.clock().timestamp()
        known = self._known_tokens.get(token_hash)
        if known is not None and known[1] > now:
            return known[0]
        found = self.catalog.find_token(token_hash)
        if found is None:
            return None
        principal = Principal(found.user_id, admin=found.admin)
        with self._known_tokens_lock:
            if len(self._known_tokens) >= TOKEN_CACHE_SIZE:
                del self._known_tokens[next(iter(self._known_tokens))]  # the oldest entry
            self._known_tokens[token_hash] = (principal, now + TOKEN_CACHE_SECONDS)
        return principal

    # -- input normalisation ------------------------------------------------------------------

    def normalize_tags(self, items: list[str]) -> list[str]:
        """Tags as stored: each through the one normaliser, empty ones dropped, no repeats,
        within the max_tags / max_tag_length settings."""
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

    def normalize_description(self, value: str | None) -> str:
        value = value or ""
        if len(value) > self.settings.max_description_length:
            raise BadRequest(
                f"description has at most {self.settings.max_description_length} characters.", code="invalid_parameter"
            )
        return value.strip()
