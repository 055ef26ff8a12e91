"""Admission of anonymous work: who may make a new workspace, and how many bytes may go into
anonymous workspaces: made on the first write, limited per client address and in total
(docs/SERVER.md, "Anonymous budgets").

Every budget is a fixed-window counter in the catalog (``Catalog.hit_rate``, core/ratewindow.py), so it holds
across web workers and, in aws mode, across tasks:

- per client address, per ``anon_client_window``: ``anon_workspaces_per_client`` new
  workspaces and ``anon_bytes_per_client`` declared upload bytes;
- all clients together, per ``session_ttl`` window: ``anon_workspaces_total`` new workspaces
  and ``anon_storage_bytes`` bytes. Anonymous data lives at most one ``session_ttl``, so what is
  held at any moment was admitted in the current window or the one before: at most twice the
  window's budget. Half the cap is admitted per window, so the cap itself is never passed;
- per client address, per ``session_ttl`` window: at most ``anon_client_share`` of each global
  budget, so a handful of addresses cannot spend everyone's (with 2 %, it takes 50).

Refusals are 429 with the counter's wait as Retry-After; nothing that exists is ever evicted or
cut short to make room. A declared size that never became stored bytes is given back: the
upload was abandoned (its URL lapsed with nothing uploaded) or rejected. Deletions give nothing
back (the counters count admissions), so upload-delete churn cannot launder a budget.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from .catalog import Catalog
from .core.errors import Forbidden, TooManyRequests
from .core.records import ImageRecord
from .core.timeutil import from_iso, to_iso

log = logging.getLogger(__name__)

ALL_CLIENTS = "anonymous"  # the counters' bucket for the global budgets
# The idempotency entry that records a workspace's creation: outside the printable ASCII an
# Idempotency-Key header may hold, so no request's key can meet it.
WORKSPACE_CREATION_KEY = "\x1fworkspace"


@dataclass(frozen=True)
class AnonymousLimits:
    """The settings of the same names (see settings.py)."""

    anon_workspaces_per_client: int
    anon_bytes_per_client: int
    anon_client_window: int
    anon_workspaces_total: int
    anon_storage_bytes: int
    session_ttl: int
    anon_client_share: float
    visitor_join_seconds: int

    @classmethod
    def from_settings(cls, settings) -> "AnonymousLimits":
        return settings.section(cls)


class AnonymousAdmission:
    def __init__(self, catalog: Catalog, limits: AnonymousLimits):
        self.catalog = catalog  # its rate windows and idempotency keys hold the counters
        self.limits = limits

    def open_workspace(self, workspace_id: str, client: str, now: datetime) -> None:
        """A visitor's first write, into the workspace ``workspace_id`` its cookie stands for.

        The first one makes the workspace: admitted (``admit_workspace``) and recorded. A
        page's first writes run at once (three files dropped together), each with the visitor
        cookie alone: those arriving within ``visitor_join_seconds`` of the first join it,
        uncharged. After that the cookie is spent: whoever still holds a copy of it gets
        Forbidden (``visitor_spent``), never the workspace.
        """
        expires_at = to_iso(now + timedelta(seconds=self.limits.session_ttl))
        made = self.catalog.idempotency_begin(workspace_id, WORKSPACE_CREATION_KEY, WORKSPACE_CREATION_KEY, expires_at)
        if made is None:
            try:
                self.admit_workspace(client)
            except TooManyRequests:
                self.catalog.idempotency_abandon(workspace_id, WORKSPACE_CREATION_KEY)
                raise
            self.catalog.idempotency_finish(workspace_id, WORKSPACE_CREATION_KEY, "", {"created_at": to_iso(now)})
            return
        created_at = (made.response or {}).get("created_at")  # None: being made right now
        if created_at and (now - from_iso(created_at)).total_seconds() > self.limits.visitor_join_seconds:
            log.warning("refused a spent visitor cookie from %s", client)
            raise Forbidden("This page's visitor cookie was already used to make a workspace; reload the page.",
                            code="visitor_spent")

    def admit_workspace(self, client: str) -> None:
        """Count one new workspace for ``client``; raises TooManyRequests
        (``workspace_limit``) when the client's or everyone's budget is spent."""
        lim = self.limits
        # The client's own budget first: a flooding client is stopped before it eats the global one.
        self._take(f"client:{client}", "anon_workspaces", lim.anon_workspaces_per_client, lim.anon_client_window, 1,
                   "This address has made too many workspaces; try again later.")
        self._take(f"client:{client}", "anon_workspaces_share", self._share(lim.anon_workspaces_total),
                   lim.session_ttl, 1, "This address has made too many workspaces today; try again later.")
        self._take(ALL_CLIENTS, "anon_workspaces", max(1, lim.anon_workspaces_total), lim.session_ttl, 1,
                   "The service is not taking new anonymous workspaces right now; try again later.")

    def admit_bytes(self, client: str, size: int) -> None:
        """Count ``size`` declared upload bytes into an anonymous workspace from ``client``;
        raises TooManyRequests (``anonymous_bytes_limit``) over any budget, having counted
        nothing (a budget passed takes back what the ones before it counted)."""
        taken: list[tuple[str, str, int]] = []
        try:
            for bucket, name, limit, window, message in self._byte_budgets(client):
                self._take(bucket, name, limit, window, size, message, code="anonymous_bytes_limit")
                taken.append((bucket, name, window))
        except TooManyRequests:
            self._give_back(taken, size, None)
            raise

    def refund_bytes(self, client: str, size: int, charged_at: float) -> None:
        """Give back ``size`` bytes admitted for ``client`` at ``charged_at`` (epoch seconds),
        in whichever of their windows have not ended yet."""
        self._give_back([(bucket, name, window) for bucket, name, _, window, _ in self._byte_budgets(client)],
                        size, charged_at)
        log.info("gave back %d anonymous bytes to %s", size, client)

    def refund_upload(self, record: ImageRecord) -> None:
        """Give back what ``record``'s declared size was charged, if anything was."""
        if record.charged_client and record.size:
            self.refund_bytes(record.charged_client, record.size, from_iso(record.created_at).timestamp())

    def _byte_budgets(self, client: str) -> list[tuple[str, str, int, int, str]]:
        """(bucket, counter, limit, window, refusal) of each byte budget, the client's first: a
        flooding client is stopped before it eats the global one."""
        lim = self.limits
        mine = "This address has uploaded too many bytes anonymously; try again later, or use an API token."
        return [
            (f"client:{client}", "anon_bytes", lim.anon_bytes_per_client, lim.anon_client_window, mine),
            (f"client:{client}", "anon_bytes_share", self._share(lim.anon_storage_bytes // 2), lim.session_ttl, mine),
            (ALL_CLIENTS, "anon_bytes", max(1, lim.anon_storage_bytes // 2), lim.session_ttl,
             "Anonymous storage is full right now; try again later, or use an API token."),
        ]

    def _give_back(self, taken: list[tuple[str, str, int]], size: int, charged_at: float | None) -> None:
        for bucket, name, window in taken:
            self.catalog.refund_rate(bucket, name, window, charged_at, size)

    def _share(self, budget: int) -> int:
        return max(1, int(budget * self.limits.anon_client_share))

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
