"""What every part of the catalog shares: the store, the clock, and running a unit of work
again when another one changed what it read."""

from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

from ..core.errors import TransientError
from ..unit_of_work import Store, UnitOfWork, VersionConflict

T = TypeVar("T")

# How many times a unit of work runs before the caller gets a TransientError. Only an
# optimistic store (DynamoDB) ever asks for a second run: 40 uploads racing for one owner's
# counter each lose at most once per upload that wins, and the quota bounds those.
ATTEMPTS = 40
# The pause before a run again grows from this (seconds), with jitter, so racers spread out.
BACKOFF = 0.005
BACKOFF_CAP = 0.2


class Book:
    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time):
        """``clock``: epoch seconds, for rate windows and idempotency expiry."""
        self.store = store
        self.clock = clock

    def read(self) -> UnitOfWork:
        """Repositories for reads of what is committed (no transaction)."""
        return self.store.unit_of_work()

    def run(self, what: str, work: Callable[[UnitOfWork], T]) -> T:
        """``work`` in a unit of work (it commits what it decides to write), run again from the
        start, reading afresh, while the commit meets a VersionConflict."""
        for attempt in range(ATTEMPTS):
            try:
                with self.store.unit_of_work() as uow:
                    return work(uow)
            except VersionConflict:
                time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF * 2 ** attempt)))
        raise TransientError(f"{what}: what it read kept changing")

    def ping(self) -> None:
        self.store.ping()
