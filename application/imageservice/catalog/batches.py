"""Batches in the store: made within the owner's hourly window, advanced by their job only while
not cancelled, finished with their archive counted in the owner's bytes, cancelled with those
bytes given back (core.batches, core.quota, core.ratewindow)."""

from __future__ import annotations

from ..core import batches, keys, quota, ratewindow
from ..core.batches import Batch
from ..core.errors import TooManyRequests
from ..core.timeutil import iso_to_epoch
from ..unit_of_work import UnitOfWork
from .book import Book
from .usage import read_usage, write_usage


def batch_key(user_id: str, batch_id: str) -> str:
    return f"{user_id}/{batch_id}"


class BatchBook(Book):
    def create_batch(self, batch: Batch, *, per_hour: int) -> Batch:
        """Store a new batch, counted in its owner's hourly window: TooManyRequests
        (``rate_limited``, ``retry_after``) past ``per_hour``, having stored nothing."""
        now = self.clock()
        window_key = ratewindow.rate_key(batch.user_id, batches.BATCH_RATE)

        def work(uow: UnitOfWork) -> Batch:
            window = uow.counters.get(window_key)
            made = ratewindow.hit(ratewindow.Window.of(window.value), now, batches.BATCH_WINDOW_SECONDS, per_hour)
            if made.window is None:
                raise TooManyRequests(f"At most {per_hour} batches an hour; try again in {made.retry_after} s.",
                                      code="rate_limited", retry_after=made.retry_after)
            uow.counters.put(window_key, made.window.as_counter(), window.version,
                             expires_at=ratewindow.expiry(made.window, batches.BATCH_WINDOW_SECONDS))
            uow.batches.put(batch_key(batch.user_id, batch.batch_id), batch.to_dict(), None, parent=batch.user_id,
                            expires_at=_kept_until(batch))
            uow.commit()
            return batch

        return self.run("make batch", work)

    def get_batch(self, user_id: str, batch_id: str) -> Batch | None:
        """The owner's batch (another owner's is None, as a missing one)."""
        stored = self.read().batches.get(batch_key(user_id, batch_id)).value
        return Batch.from_dict(stored) if stored else None

    def save_batch(self, batch: Batch) -> bool:
        """Store the job's progress, only while the batch is not cancelled or gone."""

        def work(uow: UnitOfWork) -> bool:
            key = batch_key(batch.user_id, batch.batch_id)
            stored = uow.batches.get(key)
            if stored.value is None or Batch.from_dict(stored.value).status == batches.CANCELLED:
                return False
            uow.batches.put(key, batch.to_dict(), stored.version, parent=batch.user_id,
                            expires_at=_kept_until(batch))
            uow.commit()
            return True

        return self.run("save batch", work)

    def finish_batch(self, batch: Batch, size: int, *, limit: int | None) -> bool:
        """Mark the batch ready with its archive's ``size`` counted in the owner's bytes; False,
        nothing changed, past ``limit`` or when it was cancelled meanwhile."""

        def work(uow: UnitOfWork) -> bool:
            key = batch_key(batch.user_id, batch.batch_id)
            stored = uow.batches.get(key)
            if stored.value is None or Batch.from_dict(stored.value).status != batches.RUNNING:
                return False
            usage = read_usage(uow, batch.user_id)
            grown = quota.grow(usage.value, size, limit)
            if grown is None:
                return False
            ready = Batch.from_dict({**batch.to_dict(), "status": batches.READY, "bytes": size})
            uow.batches.put(key, ready.to_dict(), stored.version, parent=batch.user_id,
                            expires_at=_kept_until(batch))
            write_usage(uow, batch.user_id, grown, usage.version, _workspace_end(batch))
            uow.commit()
            return True

        return self.run("finish batch", work)

    def ended_batches(self, now: str, limit: int = 100) -> list[Batch]:
        """Batches past their end that still hold something (core.batches.ended), for the sweep."""
        moment = iso_to_epoch(now) + batches.KEEP_AFTER_END_SECONDS + 1  # "before": those ending by now too
        found = [Batch.from_dict(stored.value) for _, stored in self.read().batches.expiring(moment, limit) if stored.value]
        return [batch for batch in found if batches.ended(batch, now)]

    def cancel_batch(self, user_id: str, batch_id: str) -> Batch | None:
        """Cancel the owner's batch (its archive's bytes, if counted, given back); the batch as
        it was, or None when there is no such batch of this owner."""

        def work(uow: UnitOfWork) -> Batch | None:
            key = batch_key(user_id, batch_id)
            stored = uow.batches.get(key)
            if stored.value is None:
                return None
            batch = Batch.from_dict(stored.value)
            if not batches.cancellable(batch):
                return batch
            held = batches.counted_bytes(batch)
            cancelled = Batch.from_dict({**batch.to_dict(), "status": batches.CANCELLED, "bytes": 0})
            uow.batches.put(key, cancelled.to_dict(), stored.version, parent=user_id,
                            expires_at=_kept_until(batch))
            if held:
                usage = read_usage(uow, user_id)
                write_usage(uow, user_id, quota.grow(usage.value, -held, None), usage.version,  # type: ignore[arg-type]
                            _workspace_end(batch))
            uow.commit()
            return batch

        return self.run("cancel batch", work)


def _kept_until(batch: Batch) -> float:
    """When the store may drop the batch: a while after its end, once the sweep has given back
    what it held."""
    return iso_to_epoch(batch.expires_at) + batches.KEEP_AFTER_END_SECONDS


def _workspace_end(batch: Batch) -> str | None:
    """A browser workspace's batch ends no later than the workspace: its owner's counter may go
    then (a persistent owner's stays)."""
    return batch.expires_at if keys.is_session_user(batch.user_id) else None
