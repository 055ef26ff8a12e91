"""Storage key layout, in one place for every blob store.

    [sessions/]originals/{user_id}/{image_id}
    [sessions/]derivatives/{user_id}/{image_id}/{variant}.webp
    [sessions/]conversions/{user_id}/{image_id}/{digest}.{ext}

Session workspaces live under ``sessions/`` so one lifecycle rule can expire them; derivatives
sit under ``derivatives/`` (and ``sessions/derivatives/``) so a CDN can serve just those. User
filenames never appear in keys.  Objects dropped straight into a bucket under an owner's
originals prefix (``originals/alice/holiday.jpg``) are recognised too: their last segment is
not an image id, and the pipeline adopts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ids import is_id

SESSION_PREFIX = "sessions/"
ORIGINALS = "originals/"
DERIVATIVES = "derivatives/"
CONVERSIONS = "conversions/"
SESSION_USER_PREFIX = "anon-"

USER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def valid_user_id(user_id: str) -> bool:
    return bool(USER_ID_RE.match(user_id or "")) and ".." not in user_id


def is_session_user(user_id: str) -> bool:
    return user_id.startswith(SESSION_USER_PREFIX)


def _root(ephemeral: bool) -> str:
    return SESSION_PREFIX if ephemeral else ""


def original_key(user_id: str, image_id: str, ephemeral: bool) -> str:
    return f"{_root(ephemeral)}{ORIGINALS}{user_id}/{image_id}"


def derivative_key(user_id: str, image_id: str, variant: str, ephemeral: bool) -> str:
    return f"{_root(ephemeral)}{DERIVATIVES}{user_id}/{image_id}/{variant}.webp"


def rendition_key(user_id: str, image_id: str, width: int, ext: str, ephemeral: bool) -> str:
    """A public rendition: beside the image's derivatives, so it goes with them."""
    return f"{_root(ephemeral)}{DERIVATIVES}{user_id}/{image_id}/renditions/{width}.{ext}"


def conversion_key(user_id: str, image_id: str, digest: str, ext: str, ephemeral: bool) -> str:
    return f"{_root(ephemeral)}{CONVERSIONS}{user_id}/{image_id}/{digest}.{ext}"


def batch_archive_key(user_id: str, batch_id: str, ephemeral: bool) -> str:
    """A batch's ZIP: under the owner's conversions (no image id is "batches"), so it expires
    with them and no image's removal touches it."""
    return f"{_root(ephemeral)}{CONVERSIONS}{user_id}/batches/{batch_id}.zip"


QUARANTINE = "quarantine/"


def quarantine_key(original_key: str) -> str:
    """Where a scanner-denied original is kept for review: a prefix no download URL names
    (downloads are presigned for originals, derivatives and conversions only) and that a
    lifecycle rule (aws) or the sweeper (local) empties after the quarantine days."""
    return f"{QUARANTINE}{original_key}"


def image_prefixes(user_id: str, image_id: str, ephemeral: bool) -> list[str]:
    """Prefixes holding everything made from one image (derivatives and conversions)."""
    root = _root(ephemeral)
    return [f"{root}{DERIVATIVES}{user_id}/{image_id}/", f"{root}{CONVERSIONS}{user_id}/{image_id}/"]


@dataclass(frozen=True)
class OriginalKey:
    key: str
    user_id: str
    ephemeral: bool
    image_id: str | None  # None: an object dropped into the bucket, not made by an upload URL
    name: str  # the last key segment


def parse_original_key(key: str) -> OriginalKey | None:
    """Recognise an originals key; None for any other key (derivatives, conversions, junk)."""
    ephemeral = key.startswith(SESSION_PREFIX)
    rest = key[len(SESSION_PREFIX):] if ephemeral else key
    if not rest.startswith(ORIGINALS):
        return None
    parts = rest[len(ORIGINALS):].split("/")
    if len(parts) != 2 or not parts[1] or not valid_user_id(parts[0]):
        return None
    user_id, name = parts
    if ephemeral != is_session_user(user_id):
        return None
    return OriginalKey(key, user_id, ephemeral, name if is_id(name) else None, name)
