"""Fixed-window budgets (conversions per minute, the anonymous budgets): core.ratewindow's
rule over one stored counter per (bucket, name)."""

from __future__ import annotations

from ..core import ratewindow
from ..unit_of_work import UnitOfWork
from .book import Book


class RateWindows(Book):
    def hit_rate(self, user_id_or_bucket: str, name: str, limit: int, window_seconds: int = 60,
                 cost: int = 1) -> int | None:
        """None when ``cost`` more stays within ``limit`` in this window (and is counted), else
        the seconds until the window ends (nothing counted)."""
        now = self.clock()
        key = ratewindow.rate_key(user_id_or_bucket, name)

        def work(uow: UnitOfWork) -> int | None:
            stored = uow.counters.get(key)
            outcome = ratewindow.hit(ratewindow.Window.of(stored.value), now, window_seconds, limit, cost)
            if outcome.window is None:
                return outcome.retry_after
            uow.counters.put(key, outcome.window.as_counter(), stored.version,
                             expires_at=ratewindow.expiry(outcome.window, window_seconds))
            uow.commit()
            return None

        return self.run("count rate", work)

    def refund_rate(self, user_id_or_bucket: str, name: str, window_seconds: int, charged_at: float | None,
                    cost: int) -> None:
        """Give back ``cost`` charged at ``charged_at`` (epoch seconds; None: now), in that
        window only and never below zero."""
        when = self.clock() if charged_at is None else charged_at
        key = ratewindow.rate_key(user_id_or_bucket, name)

        def work(uow: UnitOfWork) -> None:
            stored = uow.counters.get(key)
            refunded = ratewindow.refund(ratewindow.Window.of(stored.value), when, window_seconds, cost)
            if refunded is not None:
                uow.counters.put(key, refunded.as_counter(), stored.version,
                                 expires_at=ratewindow.expiry(refunded, window_seconds))
                uow.commit()

        self.run("refund rate", work)
