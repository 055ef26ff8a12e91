"""Anonymous admission on a fake counter, and which address a request comes from."""

from __future__ import annotations

import dataclasses

import pytest

from imageservice.admission import ALL_CLIENTS, AnonymousAdmission, AnonymousLimits, client_address
from imageservice.core.errors import TooManyRequests


class FakeCounters:
    """The catalog's hit_rate / refund_rate contract in memory, on a clock the test moves."""

    def __init__(self):
        self.now = 1_000_000.0
        self.counts: dict[tuple[str, str, int], int] = {}

    def hit_rate(self, bucket, name, limit, window_seconds=60, cost=1):
        start = int(self.now // window_seconds) * window_seconds
        count = self.counts.get((bucket, name, start), 0)
        if count + cost > limit:
            return window_seconds
        self.counts[(bucket, name, start)] = count + cost
        return None

    def refund_rate(self, bucket, name, window_seconds, charged_at, cost):
        at = self.now if charged_at is None else charged_at
        key = (bucket, name, int(at // window_seconds) * window_seconds)
        if key in self.counts:
            self.counts[key] = max(0, self.counts[key] - cost)

    def current(self, bucket, name, window_seconds):
        return self.counts.get((bucket, name, int(self.now // window_seconds) * window_seconds), 0)


LIMITS = AnonymousLimits(anon_workspaces_per_client=2, anon_bytes_per_client=100, anon_client_window=3600,
                         anon_workspaces_total=3, anon_storage_bytes=300, session_ttl=86400, anon_client_share=1.0,
                         visitor_join_seconds=10)


def test_a_refused_client_does_not_spend_the_global_budget():
    counters = FakeCounters()
    admission = AnonymousAdmission(counters, LIMITS)
    admission.admit_workspace("a")
    admission.admit_workspace("a")
    for _ in range(5):
        with pytest.raises(TooManyRequests) as refused:
            admission.admit_workspace("a")
        assert refused.value.code == "workspace_limit" and refused.value.retry_after == 3600
    assert counters.current(ALL_CLIENTS, "anon_workspaces", 86400) == 2
    admission.admit_workspace("b")
    with pytest.raises(TooManyRequests) as refused:
        admission.admit_workspace("c")
    assert refused.value.retry_after == 86400


def test_bytes_per_client_and_half_the_storage_cap_per_lifetime():
    admission = AnonymousAdmission(FakeCounters(), LIMITS)
    admission.admit_bytes("a", 100)
    with pytest.raises(TooManyRequests) as refused:
        admission.admit_bytes("a", 1)
    assert refused.value.code == "anonymous_bytes_limit"
    admission.admit_bytes("b", 50)
    with pytest.raises(TooManyRequests):
        admission.admit_bytes("c", 1)  # 150 = 300 / 2 admitted in this lifetime window


def test_one_address_takes_at_most_its_share_of_each_global_budget():
    limits = dataclasses.replace(LIMITS, anon_bytes_per_client=10**9, anon_storage_bytes=2000,
                                 anon_workspaces_per_client=100, anon_workspaces_total=100, anon_client_share=0.1)
    admission = AnonymousAdmission(FakeCounters(), limits)
    admission.admit_bytes("a", 100)  # a tenth of the 1000 admitted per lifetime window
    with pytest.raises(TooManyRequests) as refused:
        admission.admit_bytes("a", 1)
    assert refused.value.code == "anonymous_bytes_limit"
    for _ in range(10):
        admission.admit_workspace("a")
    with pytest.raises(TooManyRequests):
        admission.admit_workspace("a")
    admission.admit_bytes("b", 100)  # everyone else still has the rest
    admission.admit_workspace("b")


def test_a_refused_charge_counts_nothing_anywhere():
    counters = FakeCounters()
    admission = AnonymousAdmission(counters, dataclasses.replace(LIMITS, anon_bytes_per_client=1000))
    admission.admit_bytes("a", 140)
    with pytest.raises(TooManyRequests):
        admission.admit_bytes("a", 20)  # fits the address's 1000, not the 150 admitted in total
    assert counters.current("client:a", "anon_bytes", 3600) == 140
    assert counters.current("client:a", "anon_bytes_share", 86400) == 140


def test_a_refund_gives_back_every_budget_the_charge_took_in_its_own_windows():
    counters = FakeCounters()
    admission = AnonymousAdmission(counters, LIMITS)
    charged_at = counters.now
    admission.admit_bytes("a", 100)
    with pytest.raises(TooManyRequests):
        admission.admit_bytes("a", 100)
    admission.refund_bytes("a", 100, charged_at)
    admission.admit_bytes("a", 100)  # the same hour: the budget is back
    # A refund for a charge from a window that has ended gives nothing to the current one.
    counters.now += 3600
    admission.admit_bytes("a", 40)
    admission.refund_bytes("a", 100, charged_at)
    assert counters.current("client:a", "anon_bytes", 3600) == 40
    assert counters.current(ALL_CLIENTS, "anon_bytes", 86400) == 40  # the day's: 200 - 100 - 100 + 40


@pytest.mark.parametrize("peer, forwarded, hops, expected", [
    ("192.0.2.1", None, 0, "192.0.2.1"),
    ("192.0.2.1", "6.6.6.6", 0, "192.0.2.1"),            # no trusted proxy: the header is ignored
    ("10.0.0.5", "198.51.100.7", 1, "198.51.100.7"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.7", 1, "198.51.100.7"),  # spoofed left entries ignored
    ("10.0.0.5", "198.51.100.7, 10.0.0.9", 2, "198.51.100.7"),
    ("10.0.0.5", "198.51.100.7", 2, "10.0.0.5"),          # fewer entries than proxies: the peer
    ("10.0.0.5", None, 1, "10.0.0.5"),
    ("2001:db8:1:2:3:4:5:6", None, 0, "2001:db8:1:2::/64"),  # IPv6 counts by its /64
    ("::ffff:192.0.2.1", None, 0, "192.0.2.1"),
    ("10.0.0.5", "not-an-address", 1, "not-an-address"),
])
def test_client_address(peer, forwarded, hops, expected):
    assert client_address(peer, forwarded, hops) == expected
