"""Who is acting, and how API tokens are made and recognised (stored only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "isv_"


@dataclass(frozen=True)
class Principal:
    """Who is acting: a token's user, or an anonymous session workspace."""

    user_id: str
    admin: bool = False
    expires_at: str | None = None  # session workspaces only
    client: str | None = None  # session workspaces: the caller's address, for the anonymous budgets

    @property
    def ephemeral(self) -> bool:
        return self.expires_at is not None


def new_token() -> str:
    """A fresh bearer secret (shown once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the catalog stores and looks tokens up by: SHA-256 (the secret has 256 random bits,
    so a slow hash would add nothing)."""
    return hashlib.sha256(token.encode()).hexdigest()
