"""Share links: a revocable capability to see one image in public, until it expires
(docs/DESIGN.md "Share links").

The rules: a link's lifetime is bounded (and a browser workspace's links never outlive the
workspace); an image has at most a given number of live links; a link id is random (at least
128 bits, URL-safe) and reveals neither owner nor image.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from .errors import BadRequest, Conflict
from .timeutil import from_iso, to_iso

EXPIRES_IN_DEFAULT = 7 * 24 * 3600
EXPIRES_IN_MIN = 60
EXPIRES_IN_MAX = 30 * 24 * 3600
LINK_ID_BYTES = 18  # 144 bits; 24 URL-safe characters
VIEWS_PREFIX = "views#"
MADE_PREFIX = "links#"


@dataclass(frozen=True)
class ShareLink:
    link_id: str
    user_id: str
    image_id: str
    created_at: str
    expires_at: str
    original: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ShareLink":
        return cls(**{name: data[name] for name in ("link_id", "user_id", "image_id", "created_at", "expires_at")},
                   original=bool(data.get("original", False)))

    def live(self, now: str) -> bool:
        return now < self.expires_at


def new_link_id() -> str:
    return secrets.token_urlsafe(LINK_ID_BYTES)


def expiry(now: datetime, expires_in: int, workspace_ends: str | None) -> str:
    """When a link made at ``now`` for ``expires_in`` seconds ends: never after its
    workspace. Raises BadRequest outside EXPIRES_IN_MIN .. EXPIRES_IN_MAX."""
    if not EXPIRES_IN_MIN <= expires_in <= EXPIRES_IN_MAX:
        raise BadRequest(f"expires_in must be {EXPIRES_IN_MIN} to {EXPIRES_IN_MAX} seconds.", code="invalid_parameter")
    ends = now + timedelta(seconds=expires_in)
    if workspace_ends is not None:
        ends = min(ends, from_iso(workspace_ends))
    return to_iso(ends)


def check_room(live: int, limit: int) -> None:
    """Raise Conflict (``link_limit``) when an image holding ``live`` live links may make no more."""
    if live >= limit:
        raise Conflict(f"An image has at most {limit} live share links; revoke one first.", code="link_limit")


def shared_until(live: list["ShareLink"], now: str) -> str | None:
    """When the last of an image's links ends (None: none is live): its record says so."""
    return max((link.expires_at for link in live if link.live(now)), default=None)


def image_parent(user_id: str, image_id: str) -> str:
    """What an image's links are filed under."""
    return f"{user_id}/{image_id}"


def views_key(link_id: str) -> str:
    """The counter of a link's page views."""
    return VIEWS_PREFIX + link_id


def made_key(user_id: str, image_id: str) -> str:
    """The counter every link made for an image moves: two makers of links for one image meet on
    it, so the live-link limit holds under concurrency on every store."""
    return f"{MADE_PREFIX}{user_id}/{image_id}"
