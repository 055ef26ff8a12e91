"""The image records and the owner's usage they count in: each use case reads the record and
the counters, applies core's rules (quota, lease, rate window), and commits all at once."""

from __future__ import annotations

from typing import Iterable

from ..core import lease, quota, ratewindow
from ..core.records import CREATE_RATE, CREATE_WINDOW_SECONDS, ApiPage, ImageRecord, ListQuery, OwnerLimits, Page, Usage
from ..unit_of_work import UnitOfWork
from .book import Book
from .links import remove_links_of
from .usage import read_usage, write_usage


class ImageBook(Book):
    def create(self, record: ImageRecord, *, limits: OwnerLimits | None = None) -> None:
        """Store a new record and count it: +1 image and its bytes in the owner's usage, +1 in
        the owner's creation window. Raises Conflict (``exists``); with ``limits``, Conflict
        (``quota_exceeded``) and TooManyRequests (``rate_limited``, ``retry_after``), having
        stored and counted nothing."""
        now = self.clock()

        window_key = ratewindow.rate_key(record.user_id, CREATE_RATE)

        def work(uow: UnitOfWork) -> None:
            usage, window = read_usage(uow, record.user_id, window_key)
            charged = quota.charge(usage.value, record, limits)
            created = ratewindow.hit(ratewindow.Window.of(window.value), now, CREATE_WINDOW_SECONDS,
                                     limits.per_minute if limits else None)
            if created.window is None:
                raise limits.rate_limited(created.retry_after)  # type: ignore[union-attr, arg-type]
            uow.images.add(record)
            _put_usage(uow, record, charged, usage.version)
            uow.counters.put(window_key, created.window.as_counter(), window.version,
                             expires_at=ratewindow.expiry(created.window, CREATE_WINDOW_SECONDS))
            uow.commit()

        self.run("create record", work)

    def get(self, user_id: str, image_id: str) -> ImageRecord | None:
        return self.read().images.get(user_id, image_id).value

    def put(self, record: ImageRecord, *, expect_status: Iterable[str] | None = None) -> bool:
        """Replace the record, only while it exists (and with ``expect_status``, only while its
        status is one of those); its ``extra_bytes`` stay as stored (add_bytes alone moves
        them). A change of ``size`` moves the owner's usage by the difference. False when
        nothing was written."""
        statuses = None if expect_status is None else list(expect_status)

        def work(uow: UnitOfWork) -> bool:
            stored = uow.images.get(record.user_id, record.image_id)
            old = stored.value
            if old is None or (statuses is not None and old.status not in statuses):
                return False
            uow.images.replace(record.copy(extra_bytes=old.extra_bytes), stored.version)
            if (record.size or 0) != (old.size or 0):
                usage = read_usage(uow, record.user_id)
                _put_usage(uow, record, quota.resize(usage.value, old, record), usage.version)
            uow.commit()
            return True

        return self.run("put record", work)

    def claim(self, user_id: str, image_id: str, *, now: str, lease_until: str) -> ImageRecord | None:
        """Move a claimable record (core.lease) to ``processing`` under this lease; the claimed
        record, or None when someone else holds it, or it is terminal or gone."""

        def work(uow: UnitOfWork) -> ImageRecord | None:
            stored = uow.images.get(user_id, image_id)
            if stored.value is None or not lease.claimable(stored.value, now):
                return None
            record = lease.claimed(stored.value, lease_until)
            uow.images.replace(record, stored.version)
            uow.commit()
            return record

        return self.run("claim record", work)

    def delete(self, user_id: str, image_id: str) -> bool:
        """Remove the record and its share links, and give its image and bytes back to the
        owner's usage (the creation window keeps counting it). True when this call removed it: of two concurrent
        deletes, one."""

        def work(uow: UnitOfWork) -> bool:
            stored = uow.images.get(user_id, image_id)
            if stored.value is None:
                return False
            usage = read_usage(uow, user_id)
            uow.images.remove(stored.value, stored.version)
            remove_links_of(uow, user_id, image_id)  # every public URL of it ends with it
            _put_usage(uow, stored.value, quota.release(usage.value, stored.value), usage.version)
            uow.commit()
            return True

        return self.run("delete record", work)

    def add_bytes(self, user_id: str, image_id: str, delta: int, *, limit: int | None) -> bool:
        """Count ``delta`` bytes (a kept conversion output) on the image and in the owner's
        usage. False, nothing counted, past ``limit`` or when the image is gone."""

        def work(uow: UnitOfWork) -> bool:
            stored = uow.images.get(user_id, image_id)
            if stored.value is None:
                return False
            usage = read_usage(uow, user_id)
            grown = quota.grow(usage.value, delta, limit)
            if grown is None:
                return False
            record = stored.value.copy(extra_bytes=stored.value.extra_bytes + delta)
            uow.images.replace(record, stored.version)
            _put_usage(uow, record, grown, usage.version)
            uow.commit()
            return True

        return self.run("count conversion bytes", work)

    def usage(self, user_id: str) -> Usage:
        """How many images and bytes the owner holds: one counter read."""
        return read_usage(self.read(), user_id).value

    def list(self, query: ListQuery) -> Page:
        return self.read().images.list(query)

    def list_api(self, query: ListQuery) -> ApiPage:
        return self.read().images.list_api(query)

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        return self.read().images.expired(now, limit)

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        return self.read().images.abandoned(now, limit)


def _put_usage(uow: UnitOfWork, record: ImageRecord, usage: Usage, version: int | None) -> None:
    write_usage(uow, record.user_id, usage, version, quota.counter_expiry(record))
