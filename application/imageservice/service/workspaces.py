"""Workspaces' upkeep: the sweep of expired workspaces, abandoned uploads and ended batches, and
the refund of an anonymous charge when its upload ends without bytes or is rejected."""

from __future__ import annotations

from datetime import timedelta

from ..batching import archive_key
from ..core import keys
from ..core.records import ImageRecord
from ..core.timeutil import to_iso
from .base import ServiceBase


class Workspaces(ServiceBase):
    def refund_charge(self, record: ImageRecord) -> None:
        """Give back the anonymous bytes a record's declared size was charged, once its upload
        can no longer bring them (abandoned, refused or rejected)."""
        if self.admission is not None:
            self.admission.refund_upload(record)

    def sweep(self, batch: int = 100) -> dict[str, int]:
        """Remove expired session workspaces, pending uploads whose URL lapsed long ago, and
        quarantined files older than the quarantine days (where no lifecycle rule does it)."""
        now = self.clock()
        counts = {"expired": 0, "abandoned": 0}
        counts["quarantined"] = self.blobs.expire_prefix(
            keys.QUARANTINE, (now - timedelta(days=self.settings.quarantine_days)).timestamp())
        for name, finder, moment in (
            ("expired", self.catalog.expired, now),
            ("abandoned", self.catalog.abandoned, now - timedelta(seconds=self.settings.pending_grace)),
        ):
            while True:
                records = finder(to_iso(moment), limit=batch)
                for record in records:
                    # Only the sweep that removed it gives back its charge: never twice.
                    if self.remove(record) and name == "abandoned":
                        self.refund_charge(record)
                counts[name] += len(records)
                if len(records) < batch:
                    break
        counts["batches"] = self.sweep_batches(to_iso(now), batch)
        return counts

    def sweep_batches(self, now: str, batch: int = 100) -> int:
        """Cancel the batches past their end: their archives go and their bytes come back."""
        ended = self.catalog.ended_batches(now, limit=batch)
        for each in ended:
            self.catalog.cancel_batch(each.user_id, each.batch_id)
            self.blobs.delete(archive_key(each))
        return len(ended)
