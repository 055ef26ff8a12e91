"""Share links: made for a ready image within its live-link limit, opened in public while
live, counted per view, revoked by their owner, and removed with their image (core.links)."""

from __future__ import annotations

from ..core import links
from ..core.errors import Conflict, NotFound
from ..core.links import ShareLink
from ..core.records import READY
from ..core.timeutil import epoch_to_iso, iso_to_epoch
from ..unit_of_work import UnitOfWork
from .book import Book


class LinkBook(Book):
    def create_link(self, link: ShareLink, *, limit: int) -> ShareLink:
        """Store ``link`` for its image: NotFound when the image is gone, Conflict
        (``not_ready``) unless it is ready, Conflict (``link_limit``) at ``limit`` live links."""
        now = epoch_to_iso(self.clock())

        def work(uow: UnitOfWork) -> ShareLink:
            stored = uow.images.get(link.user_id, link.image_id)
            image = stored.value
            if image is None:
                raise NotFound("No such image.", code="image_not_found")
            if image.status != READY:
                raise Conflict("Only a ready image can be shared.", code="not_ready")
            made = uow.counters.get(links.made_key(link.user_id, link.image_id))
            filed = uow.links.under(links.image_parent(link.user_id, link.image_id))
            links.check_room(sum(ShareLink.from_dict(stored.value).live(now) for _, stored in filed if stored.value), limit)
            uow.links.put(link.link_id, link.to_dict(), None, parent=links.image_parent(link.user_id, link.image_id),
                          expires_at=iso_to_epoch(link.expires_at))
            uow.counters.put(links.made_key(link.user_id, link.image_id),
                             {"made": int((made.value or {}).get("made", 0)) + 1}, made.version)
            live = [ShareLink.from_dict(s.value) for _, s in filed if s.value] + [link]
            uow.images.replace(image.copy(shared_until=links.shared_until(live, now)), stored.version)
            uow.commit()
            return link

        return self.run("make share link", work)

    def links_of(self, user_id: str, image_id: str) -> list[tuple[ShareLink, int]]:
        """The image's live links, newest first, each with its views."""
        now = epoch_to_iso(self.clock())
        reader = self.read()
        found = [ShareLink.from_dict(stored.value)
                 for _, stored in reader.links.under(links.image_parent(user_id, image_id)) if stored.value]
        live = sorted((link for link in found if link.live(now)), key=lambda link: link.created_at, reverse=True)
        return [(link, int((reader.counters.get(links.views_key(link.link_id)).value or {}).get("views", 0)))
                for link in live]

    def open_link(self, link_id: str) -> ShareLink | None:
        """The live link of this id, or None (unknown, revoked and expired look the same)."""
        stored = self.read().links.get(link_id).value
        link = ShareLink.from_dict(stored) if stored else None
        return link if link is not None and link.live(epoch_to_iso(self.clock())) else None

    def count_view(self, link: ShareLink) -> None:
        def work(uow: UnitOfWork) -> None:
            views = uow.counters.get(links.views_key(link.link_id))
            uow.counters.put(links.views_key(link.link_id), {"views": int((views.value or {}).get("views", 0)) + 1},
                             views.version, expires_at=iso_to_epoch(link.expires_at))
            uow.commit()

        self.run("count a view", work)

    def revoke_link(self, user_id: str, link_id: str) -> ShareLink | None:
        """Remove the owner's link; None when there is no such link of this owner."""
        now = epoch_to_iso(self.clock())

        def work(uow: UnitOfWork) -> ShareLink | None:
            stored = uow.links.get(link_id)
            link = ShareLink.from_dict(stored.value) if stored.value else None
            if link is None or link.user_id != user_id:
                return None
            uow.links.remove(link_id, stored.version)
            image = uow.images.get(link.user_id, link.image_id)
            if image.value is not None:
                others = [ShareLink.from_dict(s.value) for key, s in uow.links.under(
                    links.image_parent(link.user_id, link.image_id)) if s.value and key != link_id]
                uow.images.replace(image.value.copy(shared_until=links.shared_until(others, now)), image.version)
            uow.commit()
            return link

        return self.run("revoke share link", work)


def remove_links_of(uow: UnitOfWork, user_id: str, image_id: str) -> list[str]:
    """Remove every link of the image in this unit of work; their ids."""
    removed = []
    for link_id, stored in uow.links.under(links.image_parent(user_id, image_id)):
        uow.links.remove(link_id, stored.version)
        removed.append(link_id)
    return removed
