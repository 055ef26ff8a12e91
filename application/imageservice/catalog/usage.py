"""The owner's usage counter, read and written inside a unit of work (core.quota's rules)."""

from __future__ import annotations

from typing import Any

from ..core import quota
from ..core.records import Usage
from ..core.timeutil import iso_to_epoch
from ..unit_of_work import UnitOfWork, Versioned


def read_usage(uow: UnitOfWork, user_id: str, *more: str) -> Any:
    """The owner's usage and its counter's version (an owner without a counter is counted
    from its records); with ``more`` counter keys, a tuple of the usage and those counters,
    all read at once."""
    stored, *others = uow.counters.get_many((quota.usage_key(user_id), *more))
    tally = uow.images.tally(user_id) if stored.version is None else None
    usage = Versioned(quota.usage_of(stored.value, tally), stored.version)
    return (usage, *others) if more else usage


def write_usage(uow: UnitOfWork, user_id: str, usage: Usage, version: int | None, ends: str | None) -> None:
    """Store the owner's usage; ``ends`` (ISO 8601): when its owner's workspace ends, after
    which the counter may be dropped (quota.COUNTER_SLACK_SECONDS later)."""
    uow.counters.put(quota.usage_key(user_id), quota.as_counter(usage), version,
                     expires_at=iso_to_epoch(ends) + quota.COUNTER_SLACK_SECONDS if ends else None)
