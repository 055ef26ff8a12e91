"""What every use case shares: the ports, the settings, ownership, and the text rules of
tags and descriptions."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Callable

from ..admission import AnonymousAdmission
from ..auth import Principal
from ..core import keys
from ..core.errors import BadRequest, Conflict, Forbidden, NotFound
from ..core.formats import UPLOAD_MEDIA_TYPES
from ..core.records import READY, ImageRecord
from ..core.text import normalise_tag
from ..core.timeutil import utcnow
from ..catalog import Catalog
from ..ports import NO_EDGE_CACHE, NO_METRICS, BlobStore, EdgeCache, ImagingRunner, JobQueue, Metrics
from ..removal import remove_image_objects
from ..settings import Settings

# Declared types an upload may announce (core/formats.py); the processor sniffs the real type anyway.
UPLOAD_CONTENT_TYPES = UPLOAD_MEDIA_TYPES


def _image_gone() -> NotFound:
    return NotFound("No such image.", code="image_not_found")


def _bytes_quota(limit: int) -> Conflict:
    return Conflict(f"The quota of {limit} bytes is used up (conversions count too).", code="quota_exceeded")


class ServiceBase:
    def __init__(self, blobs: BlobStore, catalog: Catalog, queue: JobQueue, settings: Settings,
                 clock: Callable[[], datetime] = utcnow, metrics: Metrics = NO_METRICS,
                 admission: AnonymousAdmission | None = None, *, imaging: ImagingRunner,
                 edge_cache: EdgeCache = NO_EDGE_CACHE):
        self.admission = admission  # anonymous byte budgets (edge); None: not limited
        self.edge_cache = edge_cache  # the CDN in front of share links (aws), told when one ends
        self.blobs = blobs
        self.imaging = imaging
        self.catalog = catalog
        self.queue = queue
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self._known_tokens: dict[str, tuple[Principal, float]] = {}
        self._known_tokens_lock = threading.Lock()

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

    def _ready(self, principal: Principal, image_id: str, user_id: str | None) -> ImageRecord:
        record = self._record(principal, image_id, user_id)
        if record.status != READY:
            raise Conflict(f"The image is {record.status}, not ready.", code="not_ready")
        return record

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

    def remove(self, record: ImageRecord) -> bool:
        """Original, derivatives, conversions, then the record and its share links (so a
        failure can be retried), then the CDN's copies of those links. True when this call
        removed the record."""
        shared = [link for link, _ in self.catalog.links_of(record.user_id, record.image_id)] if record.shared_until else []
        remove_image_objects(self.blobs, record)
        removed = self.catalog.delete(record.user_id, record.image_id)
        for link in shared:
            self.edge_cache.invalidate_link(link.link_id)
        return removed
