"""The processing lease: who may work on a record (docs/DESIGN.md "Rules and where they live").

A ``pending`` record may be claimed; so may a ``processing`` one whose lease lapsed (its
processor died). A claim moves it to ``processing`` with the claimer's lease and counts one
more attempt, so two processors never both hold it.
"""

from __future__ import annotations

from .records import PENDING, PROCESSING, ImageRecord


def claimable(record: ImageRecord, now: str) -> bool:
    if record.status == PENDING:
        return True
    return record.status == PROCESSING and (record.lease_until is None or record.lease_until < now)


def claimed(record: ImageRecord, lease_until: str) -> ImageRecord:
    return record.copy(status=PROCESSING, lease_until=lease_until, attempts=record.attempts + 1)
