"""Images: read, list, change, download and delete an owner's records."""

from __future__ import annotations

from typing import Any

from ..auth import Principal
from ..commands import (
    DOWNLOAD_VARIANTS,
    DownloadLink,
    ListCommand,
    UpdateCommand,
    UsageReport,
)
from ..core import keys
from ..core.errors import BadRequest, Conflict
from ..core.filenames import download_name, with_extension
from ..core.records import ApiPage, ImageRecord, ListQuery, Page
from ..core.text import normalise_tag
from .base import ServiceBase


class Images(ServiceBase):
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

    def delete(self, principal: Principal, image_id: str, user_id: str | None = None) -> None:
        self.remove(self._record(principal, image_id, user_id))
