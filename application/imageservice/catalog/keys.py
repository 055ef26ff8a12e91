"""Idempotency keys and API tokens: core.idempotency's steps over one stored entry per
(owner, key), and tokens stored by the hash of their secret."""

from __future__ import annotations

from typing import Any

from ..core import idempotency
from ..core.records import IdempotencyEntry, Token
from ..core.timeutil import epoch_to_iso
from ..unit_of_work import UnitOfWork
from .book import Book


class IdempotencyKeys(Book):
    def idempotency_begin(self, user_id: str, key: str, fingerprint: str, expires_at: str) -> IdempotencyEntry | None:
        """None: the caller owns ``key`` now (an in-flight entry is stored until ``expires_at``);
        else the live entry someone stored before."""
        now = epoch_to_iso(self.clock())

        def work(uow: UnitOfWork) -> IdempotencyEntry | None:
            stored = uow.idempotency.get(user_id, key)
            outcome = idempotency.begin(stored.value, now, fingerprint, expires_at)
            if outcome.take is None:
                return outcome.held
            uow.idempotency.put(user_id, key, outcome.take, stored.version)
            uow.commit()
            return None

        return self.run("take idempotency key", work)

    def idempotency_finish(self, user_id: str, key: str, image_id: str, response: dict[str, Any]) -> None:
        """Store the answer of the request that owns ``key``; repeats get it back."""

        def work(uow: UnitOfWork) -> None:
            stored = uow.idempotency.get(user_id, key)
            finished = idempotency.finish(stored.value, image_id, response)
            if finished is not None:
                uow.idempotency.put(user_id, key, finished, stored.version)
                uow.commit()

        self.run("finish idempotency key", work)

    def idempotency_abandon(self, user_id: str, key: str) -> None:
        """The owner of an in-flight key failed: free the key (a finished one stays)."""

        def work(uow: UnitOfWork) -> None:
            stored = uow.idempotency.get(user_id, key)
            if idempotency.abandonable(stored.value):
                uow.idempotency.remove(user_id, key, stored.version)
                uow.commit()

        self.run("free idempotency key", work)


class TokenBook(Book):
    def save_token(self, token_hash: str, token: Token) -> None:
        """Store an API token by the hash of its secret (a second save replaces the first)."""

        def work(uow: UnitOfWork) -> None:
            uow.tokens.put(token_hash, token, uow.tokens.get(token_hash).version)
            uow.commit()

        self.run("save token", work)

    def find_token(self, token_hash: str) -> Token | None:
        return self.read().tokens.get(token_hash).value
