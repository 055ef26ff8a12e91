"""API tokens: made for a user, found by their hash, remembered a while."""

from __future__ import annotations

from ..auth import Principal, hash_token, new_token
from ..core import keys
from ..core.errors import BadRequest
from ..core.records import Token
from .base import ServiceBase

# Tokens found in the catalog are remembered this long, by this many: a token never changes
# and is never revoked, so the cache saves a catalog read per API call at no risk; the time
# bound keeps it honest should revocation ever come. Unknown tokens are never cached (a flood
# of made-up tokens must not push real ones out).
TOKEN_CACHE_SECONDS = 60
TOKEN_CACHE_SIZE = 10_000


class Tokens(ServiceBase):
    def create_token(self, user_id: str, admin: bool = False) -> str:
        if not keys.valid_user_id(user_id) or keys.is_session_user(user_id):
            raise BadRequest(
                f"{user_id!r} is not a valid user id (letters, digits, . _ @ -; not starting with "
                f"{keys.SESSION_USER_PREFIX!r}).", code="invalid_parameter")
        token = new_token()
        self.catalog.save_token(hash_token(token), Token(user_id=user_id, admin=admin))
        return token

    def authenticate_token(self, token: str) -> Principal | None:
        token_hash = hash_token(token)
        now = self.clock().timestamp()
        known = self._known_tokens.get(token_hash)
        if known is not None and known[1] > now:
            return known[0]
        found = self.catalog.find_token(token_hash)
        if found is None:
            return None
        principal = Principal(found.user_id, admin=found.admin)
        with self._known_tokens_lock:
            if len(self._known_tokens) >= TOKEN_CACHE_SIZE:
                del self._known_tokens[next(iter(self._known_tokens))]  # the oldest entry
            self._known_tokens[token_hash] = (principal, now + TOKEN_CACHE_SECONDS)
        return principal
