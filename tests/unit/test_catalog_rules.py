"""The rules of the stored state (core/quota.py, ratewindow.py, idempotency.py, lease.py), alone,
and the unit of work that applies them: a stale write commits nothing, and the catalog reads
again and decides again."""

from __future__ import annotations

import pytest
from fakes import FakeCatalog, FakeStore

from imageservice.catalog import Catalog
from imageservice.core import idempotency, lease, quota, ratewindow
from imageservice.core.errors import Conflict, TransientError
from imageservice.core.records import DONE, IN_FLIGHT, IdempotencyEntry, ImageRecord, OwnerLimits, Usage
from imageservice.unit_of_work import VersionConflict

LIMITS = OwnerLimits(images=2, bytes=1000, per_minute=5)


def record(size=100, extra=0, **fields) -> ImageRecord:
    return ImageRecord(image_id=fields.pop("image_id", "01J0000000000000000000000A"), user_id="alice", size=size,
                       extra_bytes=extra, **fields)


def test_a_charge_counts_the_image_and_its_bytes_and_refuses_past_either_limit():
    assert quota.charge(Usage(0, 0), record(100, extra=7), LIMITS) == Usage(1, 107)
    with pytest.raises(Conflict, match="2 images"):
        quota.charge(Usage(2, 0), record(), LIMITS)
    with pytest.raises(Conflict, match="1000 bytes"):
        quota.charge(Usage(0, 901), record(100), LIMITS)
    assert quota.charge(Usage(0, 900), record(100), LIMITS) == Usage(1, 1000)  # exactly full
    assert quota.charge(Usage(50, 10**9), record(100), None) == Usage(51, 10**9 + 100)


def test_release_resize_and_grow_never_go_below_zero_and_grow_stops_at_the_limit():
    assert quota.release(Usage(1, 150), record(100, extra=50)) == Usage(0, 0)
    assert quota.release(Usage(0, 10), record(100)) == Usage(0, 0)
    assert quota.resize(Usage(1, 100), record(100), record(80)) == Usage(1, 80)
    assert quota.grow(Usage(1, 900), 100, 1000) == Usage(1, 1000)
    assert quota.grow(Usage(1, 901), 100, 1000) is None
    assert quota.grow(Usage(1, 5000), -100, 1000) == Usage(1, 4900)  # giving back is never refused


def test_an_owner_without_a_counter_holds_what_its_records_tally():
    assert quota.usage_of(None, Usage(3, 30)) == Usage(3, 30)
    assert quota.usage_of(None) == Usage(0, 0)
    assert quota.usage_of({"images": 1, "bytes": 2}, Usage(3, 30)) == Usage(1, 2)


def test_a_fixed_window_counts_within_its_limit_and_starts_over_in_the_next():
    first = ratewindow.hit(None, now=120.5, window_seconds=60, limit=3, cost=2)
    assert first.window == ratewindow.Window(start=120, count=2)
    refused = ratewindow.hit(first.window, now=150.0, window_seconds=60, limit=3, cost=2)
    assert refused.window is None and refused.retry_after == 30
    assert ratewindow.hit(first.window, now=179.9, window_seconds=60, limit=3).window.count == 3
    assert ratewindow.hit(first.window, now=180.0, window_seconds=60, limit=3, cost=3).window == ratewindow.Window(180, 3)
    assert ratewindow.hit(None, now=0, window_seconds=60, limit=3, cost=4).window is None  # never fits


def test_a_refund_gives_back_in_its_own_window_only_and_never_below_zero():
    window = ratewindow.Window(start=120, count=3)
    assert ratewindow.refund(window, charged_at=130, window_seconds=60, cost=2) == ratewindow.Window(120, 1)
    assert ratewindow.refund(window, charged_at=130, window_seconds=60, cost=9) == ratewindow.Window(120, 0)
    assert ratewindow.refund(window, charged_at=60, window_seconds=60, cost=1) is None  # an ended window
    assert ratewindow.refund(None, charged_at=130, window_seconds=60, cost=1) is None


def test_an_idempotency_key_is_taken_once_until_it_expires():
    begun = idempotency.begin(None, "2024-01-01T00:00:00.000Z", "fp", "2024-01-02T00:00:00.000Z")
    assert begun.held is None and begun.take.state == IN_FLIGHT and begun.take.expires_at == "2024-01-02T00:00:00.000Z"
    again = idempotency.begin(begun.take, "2024-01-01T12:00:00.000Z", "other", "2024-01-03T00:00:00.000Z")
    assert again.take is None and again.held == begun.take
    later = idempotency.begin(begun.take, "2024-01-02T00:00:00.000Z", "other", "2024-01-03T00:00:00.000Z")
    assert later.held is None and later.take.fingerprint == "other"  # expired: free again
    done = idempotency.finish(begun.take, "img", {"a": 1})
    assert (done.state, done.image_id, done.response) == (DONE, "img", {"a": 1})
    assert idempotency.finish(None, "img", {}) is None
    assert idempotency.abandonable(begun.take) and not idempotency.abandonable(done)


def test_the_lease_lets_a_pending_or_lapsed_record_be_claimed_once():
    pending = record(status="pending")
    assert lease.claimable(pending, "2024-01-01T00:00:00.000Z")
    held = lease.claimed(pending, "2024-01-01T00:05:00.000Z")
    assert (held.status, held.lease_until, held.attempts) == ("processing", "2024-01-01T00:05:00.000Z", 1)
    assert not lease.claimable(held, "2024-01-01T00:04:59.999Z")
    assert lease.claimable(held, "2024-01-01T00:05:00.001Z")
    assert not lease.claimable(record(status="ready"), "2099-01-01T00:00:00.000Z")


def test_a_commit_naming_a_stale_version_writes_nothing():
    store = FakeStore()
    with store.unit_of_work() as setup:
        setup.counters.put("c", {"n": 1}, None)
        setup.commit()
    with store.unit_of_work() as first, store.unit_of_work() as second:
        read = first.counters.get("c")
        other = second.counters.get("c")
        second.counters.put("c", {"n": 5}, other.version)
        second.commit()
        first.counters.put("c", {"n": 2}, read.version)
        first.counters.put("d", {"n": 1}, None)
        with pytest.raises(VersionConflict):
            first.commit()
    assert store.unit_of_work().counters.get("c").value == {"n": 5}
    assert store.unit_of_work().counters.get("d").value is None


class RacingStore(FakeStore):
    """Another writer bumps the owner's usage between the catalog's read and its commit, the
    first ``races`` times."""

    def __init__(self, races: int):
        super().__init__()
        self.races = races

    def unit_of_work(self):
        uow = super().unit_of_work()
        commit = uow.commit

        def racing_commit():
            if self.races:
                self.races -= 1
                with super(RacingStore, self).unit_of_work() as other:
                    usage = other.counters.get(quota.usage_key("alice"))
                    other.counters.put(quota.usage_key("alice"), {"images": 1, "bytes": 900}, usage.version)
                    other.commit()
            commit()

        uow.commit = racing_commit
        return uow


def test_a_unit_of_work_that_lost_a_race_reads_again_and_applies_the_rule_to_what_it_finds():
    catalog = Catalog(RacingStore(races=1))
    with pytest.raises(Conflict, match="1000 bytes"):  # the racer took the room it saw at first
        catalog.create(record(200), limits=LIMITS)
    assert catalog.usage("alice") == Usage(1, 900) and catalog.get("alice", record().image_id) is None


def test_a_unit_of_work_that_keeps_losing_gives_up_with_a_transient_error(monkeypatch):
    monkeypatch.setattr("imageservice.catalog.book.ATTEMPTS", 3)
    monkeypatch.setattr("imageservice.catalog.book.BACKOFF", 0)
    catalog = Catalog(RacingStore(races=3))
    with pytest.raises(TransientError):
        catalog.create(record(10), limits=LIMITS)


def test_the_fake_catalog_is_the_real_rules_over_dicts():
    catalog = FakeCatalog()
    catalog.create(record(100), limits=LIMITS)
    assert catalog.usage("alice") == Usage(1, 100)
    assert catalog.idempotency_begin("alice", "k", "fp", "2999-01-01T00:00:00.000Z") is None
    assert catalog.idempotency_begin("alice", "k", "fp", "2999-01-01T00:00:00.000Z") == IdempotencyEntry("fp", IN_FLIGHT)
