"""Fixed-window counters: the creation rate, conversions per minute and the anonymous budgets.

One counter per (bucket, name) holds the window it counts in and the count so far; a hit in
a later window starts over. A hit past the limit counts nothing; a refund gives back only in
the window it was charged in, and never below zero (docs/DESIGN.md "Rules and where they live").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .records import fixed_window

RATE_PREFIX = "rate#"


def rate_key(bucket: str, name: str) -> str:
    """The counter of ``bucket``'s (an owner id, or ``client:<address>``) ``name`` budget."""
    return f"{RATE_PREFIX}{bucket}#{name}"


@dataclass(frozen=True)
class Window:
    start: int  # epoch seconds
    count: int

    @classmethod
    def of(cls, counter: Mapping[str, int] | None) -> "Window | None":
        return None if counter is None else cls(start=int(counter["start"]), count=int(counter["count"]))

    def as_counter(self) -> dict[str, int]:
        return {"start": self.start, "count": self.count}


@dataclass(frozen=True)
class Hit:
    """A hit's outcome: the window to store when counted, else the seconds to wait."""

    window: Window | None
    retry_after: int | None

    @property
    def counted(self) -> bool:
        return self.window is not None


def hit(current: Window | None, now: float, window_seconds: int, limit: int | None, cost: int = 1) -> Hit:
    """``cost`` more in the window containing ``now``: counted while the window's count stays
    within ``limit`` (None: no limit), else refused with the seconds until the window ends."""
    start, left = fixed_window(now, window_seconds)
    held = current.count if current is not None and current.start == start else 0
    if limit is not None and held + cost > limit:
        return Hit(window=None, retry_after=left)
    return Hit(window=Window(start=start, count=held + cost), retry_after=None)


def refund(current: Window | None, charged_at: float, window_seconds: int, cost: int) -> Window | None:
    """The window once ``cost`` charged at ``charged_at`` is given back, or None when there is
    nothing to change: the window has ended (or never counted), or it holds nothing."""
    start, _ = fixed_window(charged_at, window_seconds)
    if current is None or current.start != start or current.count <= 0:
        return None
    return Window(start=start, count=max(0, current.count - cost))


def expiry(window: Window, window_seconds: int) -> float:
    """When a stored window may be dropped (epoch seconds): an hour after it ends."""
    return window.start + window_seconds + 3600
