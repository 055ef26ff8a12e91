"""Catalog.hit_rate with a cost, on both backends: the admission budgets' counter."""

from __future__ import annotations

import time


def test_hit_rate_counts_costs_within_the_limit(backend):
    hit = backend.catalog.hit_rate
    assert hit("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=600) is None
    wait = hit("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=600)
    assert wait is not None and 1 <= wait <= 3600  # refused, and nothing counted ...
    assert hit("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=400) is None  # ... so 400 still fits
    assert hit("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=1) is not None
    assert hit("client:192.0.2.2", "anon_bytes", 1000, 3600, cost=1000) is None  # buckets are separate
    assert hit("client:192.0.2.2", "anon_workspaces", 1, 3600) is None  # so are names
    assert hit("client:192.0.2.3", "anon_bytes", 10, 3600, cost=11) is not None


def test_hit_rate_counters_are_not_images(backend):
    backend.catalog.hit_rate("anonymous", "anon_workspaces", 5, 60)
    assert backend.catalog.usage("anonymous").images == 0


def test_refund_rate_gives_back_to_the_charges_window_only_and_never_below_zero(backend):
    catalog = backend.catalog
    now = time.time()
    assert catalog.hit_rate("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=1000) is None
    catalog.refund_rate("client:192.0.2.1", "anon_bytes", 3600, now, 600)
    assert catalog.hit_rate("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=600) is None
    assert catalog.hit_rate("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=1) is not None
    # A charge from an hour that has ended: nothing to give back to this one.
    catalog.refund_rate("client:192.0.2.1", "anon_bytes", 3600, now - 3600, 1000)
    assert catalog.hit_rate("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=1) is not None
    # More than was counted: down to zero, not below (no budget is made).
    catalog.refund_rate("client:192.0.2.1", "anon_bytes", 3600, None, 5000)
    assert catalog.hit_rate("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=1000) is None
    assert catalog.hit_rate("client:192.0.2.1", "anon_bytes", 1000, 3600, cost=1) is not None
    catalog.refund_rate("client:192.0.2.9", "anon_bytes", 3600, None, 10)  # a counter never made
    assert catalog.hit_rate("client:192.0.2.9", "anon_bytes", 10, 3600, cost=10) is None
