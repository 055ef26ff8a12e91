"""Share links and the public side they open: an owner makes, lists and revokes links; anyone
holding one sees the share page, its renditions and (when the link says so) the original."""

from __future__ import annotations

from dataclasses import dataclass

from ..auth import Principal
from ..commands import Link
from ..core import keys, links, renditions
from ..core.errors import NotFound, TooManyRequests
from ..core.filenames import stem
from ..core.formats import BY_OUTPUT
from ..core.links import ShareLink
from ..core.records import READY, ImageRecord
from ..core.timeutil import to_iso
from ..pipeline import imaging_limits
from ..ports import BlobNotFound
from .base import ServiceBase

RENDITION_MISSES = "rendition_misses"  # the hit_rate counter of renditions made per link


def _unknown_link() -> NotFound:
    # Unknown, revoked and expired links answer alike: nothing tells which.
    return NotFound("No such share link.", code="link_not_found")


@dataclass(frozen=True)
class Shared:
    """What a live link shows: the link, its image, and the renditions the image has."""

    link: ShareLink
    image: ImageRecord
    base: str  # the link's absolute URL; renditions are under it
    sizes: renditions.Renditions


@dataclass(frozen=True)
class Rendition:
    data: bytes | None  # None: the client's copy is current (304)
    headers: dict[str, str]


class Links(ServiceBase):
    def share_base(self, link_id: str) -> str:
        return f"{(self.settings.share_url or self.settings.public_url).rstrip('/')}/s/{link_id}"

    def create_link(self, principal: Principal, image_id: str, expires_in: int, original: bool,
                    user_id: str | None = None) -> Link:
        """A new link to a ready image of the caller's; a browser workspace's never outlives it."""
        record = self._record(principal, image_id, user_id)
        now = self.clock()
        link = ShareLink(link_id=links.new_link_id(), user_id=record.user_id, image_id=record.image_id,
                         created_at=to_iso(now), expires_at=links.expiry(now, expires_in, record.expires_at),
                         original=original)
        made = self.catalog.create_link(link, limit=self.settings.share_links_per_image)
        return self._view(made, record, views=0)

    def list_links(self, principal: Principal, image_id: str, user_id: str | None = None) -> list[Link]:
        record = self._record(principal, image_id, user_id)
        return [self._view(link, record, views) for link, views in self.catalog.links_of(record.user_id, record.image_id)]

    def revoke_link(self, principal: Principal, link_id: str) -> None:
        """Revoke one of the caller's links (another owner's answers as unknown); the CDN drops
        what it kept of it."""
        if self.catalog.revoke_link(principal.user_id, link_id) is None:
            raise _unknown_link()
        self.edge_cache.invalidate_link(link_id)

    def _renditions(self, record: ImageRecord) -> renditions.Renditions:
        return renditions.Renditions(record.width or 0, record.height or 0, self.settings.convert_max_edge)

    def _view(self, link: ShareLink, record: ImageRecord, views: int) -> Link:
        base = self.share_base(link.link_id)
        sizes = self._renditions(record)
        return Link(link.link_id, link.image_id, base, renditions.srcset(base, sizes),
                    renditions.embed_html(base, sizes, stem(record.filename) or "image"),
                    link.original, link.created_at, link.expires_at, views)

    # -- the public side -----------------------------------------------------------------

    def shared(self, link_id: str, *, count_view: bool = False) -> Shared:
        """The live link and its ready image; NotFound (``link_not_found``) otherwise."""
        link = self.catalog.open_link(link_id)
        image = self.catalog.get(link.user_id, link.image_id) if link else None
        if link is None or image is None or image.status != READY:
            raise _unknown_link()
        if count_view:
            self.catalog.count_view(link)
        return Shared(link, image, self.share_base(link.link_id), self._renditions(image))

    def rendition(self, link_id: str, width: int | None, accept: str | None, forced: str | None,
                  if_none_match: str | None) -> Rendition:
        """The image at one of its rendition widths, in the negotiated (or forced) format, made
        once and kept beside its derivatives. NotFound for a width it does not have; a rendition
        not made yet costs one of the link's ``rendition_misses_per_minute`` (429)."""
        shared = self.shared(link_id)
        image = shared.image
        if width is None or not shared.sizes.allows(width):
            raise NotFound("No such rendition.", code="rendition_not_found")
        fmt = renditions.negotiate_format(accept, alpha=renditions.has_alpha(image.mode), forced=forced)
        tag = renditions.rendition_etag(image.image_id, width, fmt, image.sha256 or image.image_id)
        headers = renditions.rendition_headers(fmt=fmt, etag=tag, filename=image.filename or "image", width=width,
                                               expires_at=shared.link.expires_at, now=self.clock())
        if if_none_match and tag in [part.strip() for part in if_none_match.split(",")]:
            return Rendition(None, headers)
        key = keys.rendition_key(image.user_id, image.image_id, width, BY_OUTPUT[fmt].extensions[0], image.ephemeral)
        try:
            data = self.blobs.get(key, max_bytes=self.settings.max_upload_bytes)
        except BlobNotFound:
            data = self._make_rendition(shared, key, width, fmt)
        return Rendition(data, headers)

    def _make_rendition(self, shared: Shared, key: str, width: int, fmt: str) -> bytes:
        s = self.settings
        wait = self.catalog.hit_rate(f"link:{shared.link.link_id}", RENDITION_MISSES, s.rendition_misses_per_minute)
        if wait is not None:
            raise TooManyRequests(f"This link made its {s.rendition_misses_per_minute} renditions for this minute; "
                                  f"try again in {wait} s.", code="rate_limited", retry_after=wait)
        try:
            original = self.blobs.get(shared.image.original_key, max_bytes=s.max_upload_bytes)
        except BlobNotFound:
            raise _unknown_link() from None
        encoded = self.imaging.convert(original, renditions.rendition_request(width, fmt), imaging_limits(s),
                                       max_output_bytes=s.max_upload_bytes)
        self.blobs.put(key, encoded.data, encoded.content_type)
        if self.catalog.get(shared.image.user_id, shared.image.image_id) is None:
            self.blobs.delete(key)  # deleted meanwhile: what it made goes too
            raise _unknown_link()
        return encoded.data

    def shared_original(self, link_id: str) -> tuple[bytes, ImageRecord]:
        """The original as uploaded, only through a link made with ``original: true``."""
        shared = self.shared(link_id)
        if not shared.link.original:
            raise _unknown_link()
        try:
            return self.blobs.get(shared.image.original_key, max_bytes=self.settings.max_upload_bytes), shared.image
        except BlobNotFound:
            raise _unknown_link() from None
