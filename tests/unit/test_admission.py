"""Anonymous admission on a fake counter, and which address a request comes from."""

from __future__ import annotations

import pytest

from imageservice.admission import ALL_CLIENTS, AnonymousAdmission, AnonymousLimits, client_address
from imageservice.core.errors import TooManyRequests


class FakeCounters:
    """The catalog's hit_rate contract in memory: one window that never ends."""

    def __init__(self):
        self.counts: dict[tuple[str, str], int] = {}

    def hit_rate(self, bucket, name, limit, window_seconds=60, cost=1):
        count = self.counts.get((bucket, name), 0)
        if count + cost > limit:
            return window_seconds
        self.counts[(bucket, name)] = count + cost
        return None


LIMITS = AnonymousLimits(anon_workspaces_per_client=2, anon_bytes_per_client=100, anon_client_window=3600,
                         anon_workspaces_total=3, anon_storage_bytes=300, session_ttl=86400)


def test_a_refused_client_does_not_spend_the_global_budget():
    counters = FakeCounters()
    admission = AnonymousAdmission(counters, LIMITS)
    admission.admit_workspace("a")
    admission.admit_workspace("a")
    for _ in range(5):
        with pytest.raises(TooManyRequests) as refused:
            admission.admit_workspace("a")
        assert refused.value.code == "workspace_limit" and refused.value.retry_after == 3600
    assert counters.counts[(ALL_CLIENTS, "anon_workspaces")] == 2
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
