"""Uploads: a ticket (presigned PUT) with its record, charged against quota, rate and the
anonymous budgets, idempotent under a key; then the upload's completion queues its processing."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, replace

from ..auth import Principal
from ..commands import (
    Completion,
    UploadCommand,
    UploadTicket,
)
from ..core import keys
from ..core.correlation import current_request_id
from ..core.errors import Conflict, PayloadTooLarge, ServiceError, Unprocessable, UnsupportedMediaType
from ..core.filenames import sanitize_filename
from ..core.ids import new_id
from ..core.records import DONE, PENDING, ImageRecord, Job, OwnerLimits
from ..core.timeutil import from_iso, iso_in, to_iso
from .base import UPLOAD_CONTENT_TYPES, ServiceBase

log = logging.getLogger(__name__)


class Uploads(ServiceBase):
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
