"""Admission of anonymous work: who may make a new workspace, and how many bytes may go into
anonymous workspaces (DESIGN.md "Limits": made on the first write, limited per client address
and in total).

Every budget is a fixed-window counter in the catalog (``Catalog.hit_rate``), so it holds
across web workers and, in aws mode, across tasks:

- per client address, per ``anon_client_window``: ``anon_workspaces_per_client`` new
  workspaces and ``anon_bytes_per_client`` declared upload bytes;
- all clients together, per ``session_ttl`` window: ``anon_workspaces_total`` new workspaces
  and ``anon_storage_bytes`` bytes. Anonymous data lives at most one ``session_ttl``, so what is
  held at any moment was admitted in the current window or the one before: at most twice the
  window's budget. Half the cap is admitted per window, so the cap itself is never passed.

Refusals are 429 with the counter's wait as Retry-After; nothing that exists is ever evicted or
cut short to make room. Deletions give nothing back (the counters only count admissions), so
upload-delete churn cannot launder a budget.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Protocol

from .core.errors import TooManyRequests

log = logging.getLogger(__name__)

ALL_CLIENTS = "anonymous"  # the counters' bucket for the global budgets


class RateCounter(Protocol):
    def hit_rate(self, user_id_or_bucket: str, name: str, limit: int, window_seconds: int = 60,
                 cost: int = 1) -> int | None:
        """Count ``cost`` against ``limit`` in the current fixed window: None when it fits (and
        it is counted), else the seconds until the window ends (and nothing is counted)."""


@dataclass(frozen=True)
class AnonymousLimits:
    """The settings of the same names (see settings.py)."""

    anon_workspaces_per_client: int
    anon_bytes_per_client: int
    anon_client_window: int
    anon_workspaces_total: int
    anon_storage_bytes: int
    session_ttl: int

    @classmethod
    def from_settings(cls, settings) -> "AnonymousLimits":
        return settings.section(cls)


class AnonymousAdmission:
    def __init__(self, catalog: RateCounter, limits: AnonymousLimits):
        self.catalog = catalog  # the counters live in the catalog
        self.limits = limits

    def admit_workspace(self, client: str) -> None:
        """Count one new workspace for ``client``; raises TooManyRequests
        (``workspace_limit``) when the client's or everyone's budget is spent."""
        lim = self.limits
        # The client's own budget first: a flooding client is stopped before it eats the global one.
        self._take(f"client:{client}", "anon_workspaces", lim.anon_workspaces_per_client, lim.anon_client_window, 1,
                   "This address has made too many workspaces; try again later.")
        self._take(ALL_CLIENTS, "anon_workspaces", max(1, lim.anon_workspaces_total), lim.session_ttl, 1,
                   "The service is not taking new anonymous workspaces right now; try again later.")

    def admit_bytes(self, client: str, size: int) -> None:
        """Count ``size`` declared upload bytes into an anonymous workspace from ``client``;
        raises TooManyRequests (``anonymous_bytes_limit``) over either budget."""
        lim = self.limits
        self._take(f"client:{client}", "anon_bytes", lim.anon_bytes_per_client, lim.anon_client_window, size,
                   "This address has uploaded too many bytes anonymously; try again later, or use an API token.",
                   code="anonymous_bytes_limit")
        self._take(ALL_CLIENTS, "anon_bytes", max(1, lim.anon_storage_bytes // 2), lim.session_ttl, size,
                   "Anonymous storage is full right now; try again later, or use an API token.",
                   code="anonymous_bytes_limit")

    def _take(self, bucket: str, name: str, limit: int, window: int, cost: int, message: str,
              code: str = "workspace_limit") -> None:
        wait = self.catalog.hit_rate(bucket, name, limit, window, cost=cost)
        if wait is not None:
            log.warning("refused %s for %s (limit %d per %ds)", name, bucket, limit, window)
            raise TooManyRequests(message, code=code, retry_after=wait)


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The address a request came from, as far as it can be trusted.

    With ``trusted_proxies`` = 0 the socket peer. Behind N proxies that each append the address
    they saw (the ALB does), the client is the Nth entry from the right of X-Forwarded-For;
    anything left of it was written by the client and proves nothing. With fewer entries than
    proxies the header did not pass through them all: the socket peer again.
    IPv6 addresses count by their /64 (one subscriber's usual allocation), so rotating through
    one's own addresses does not multiply a budget.
    """
    address = remote_addr or "unknown"
    if trusted_proxies > 0 and forwarded_for:
        hops = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(hops) >= trusted_proxies:
            address = hops[-trusted_proxies]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
