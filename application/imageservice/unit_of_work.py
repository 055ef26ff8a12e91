"""The store's ports: small versioned repositories, and the unit of work that commits what is
written through them at once (docs/DESIGN.md "Unit of work"), in the manner of cosmicpython's
``service_layer/unit_of_work.py``. Implemented by ``adapters/sqlite``, ``adapters/dynamodb`` and
the dict-backed fake in ``tests/fakes.py``; ``tests/integration/test_contract_catalog.py`` runs
the catalog's use cases over each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

from .core.records import ApiPage, IdempotencyEntry, ImageRecord, ListQuery, Page, Token, Usage

# Each repository is a versioned get/put with no rules in it: the rules (quota, rate windows,
# idempotency, the lease) live in core and are applied once, by the catalog's use cases
# (imageservice/catalog/), whatever the backend.

T = TypeVar("T")


class VersionConflict(Exception):
    """Something this unit of work read changed before it committed: run the work again."""


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A stored value and the version a write must name to replace it. ``version`` is None
    when nothing is stored (a write then creates it); 0 is a value stored before versions."""

    value: T | None
    version: int | None = None


@runtime_checkable
class ImageRepository(Protocol):
    def get(self, user_id: str, image_id: str) -> Versioned[ImageRecord]:
        """The owner's record (absent also when it belongs to someone else)."""

    def add(self, record: ImageRecord) -> None:
        """Store a new record; the commit raises Conflict (``exists``) when its id exists."""

    def replace(self, record: ImageRecord, version: int | None) -> None:
        """Store ``record`` over the one read at ``version`` in this unit of work."""

    def remove(self, record: ImageRecord, version: int | None) -> None:
        """Remove the record read at ``version`` in this unit of work."""

    def tally(self, user_id: str) -> Usage:
        """The owner's images and bytes counted from its records (an owner without a usage
        counter: new, or stored before counters)."""

    def list(self, query: ListQuery) -> Page:
        """One page of the owner's records, newest first, filtered as the query says. Raises
        BadRequest (``invalid_cursor``)."""

    def list_api(self, query: ListQuery) -> ApiPage:
        """The same page as ``list``, each record as the API's JSON text (``ApiPage.of`` when
        the store keeps none)."""

    def expired(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """Records whose ``expires_at`` is before ``now`` (session workspaces)."""

    def abandoned(self, now: str, limit: int = 100) -> list[ImageRecord]:
        """``pending`` records whose ``upload_expires_at`` is before ``now``."""


@runtime_checkable
class CounterRepository(Protocol):
    def get(self, key: str) -> Versioned[Mapping[str, int]]:
        """The counter stored under ``key`` (a small mapping of names to integers)."""

    def get_many(self, keys: Sequence[str]) -> list[Versioned[Mapping[str, int]]]:
        """The counters stored under ``keys``, in that order (one read where the store can)."""

    def put(self, key: str, value: Mapping[str, int], version: int | None, *, expires_at: float | None = None) -> None:
        """Store ``value`` over the counter read at ``version``; ``expires_at`` (epoch seconds)
        lets the store drop it after that."""


@runtime_checkable
class IdempotencyRepository(Protocol):
    def get(self, user_id: str, key: str) -> Versioned[IdempotencyEntry]:
        """The entry stored for (owner, key), expired or not."""

    def put(self, user_id: str, key: str, entry: IdempotencyEntry, version: int | None) -> None:
        """Store ``entry`` over the one read at ``version``."""

    def remove(self, user_id: str, key: str, version: int | None) -> None:
        """Remove the entry read at ``version``."""


@runtime_checkable
class TokenRepository(Protocol):
    def get(self, token_hash: str) -> Versioned[Token]:
        """The API token stored under the hash of its secret."""

    def put(self, token_hash: str, token: Token, version: int | None) -> None:
        """Store the token over the one read at ``version``."""


@runtime_checkable
class DocumentRepository(Protocol):
    """Small JSON documents of one kind (share links, batches) by key, each optionally filed
    under a parent key (a link under its image) so a parent's documents are one read."""

    def get(self, key: str) -> Versioned[dict[str, Any]]:
        """The document stored under ``key``."""

    def put(self, key: str, document: Mapping[str, Any], version: int | None, *, parent: str | None = None,
            expires_at: float | None = None) -> None:
        """Store ``document`` over the one read at ``version``, filed under ``parent``;
        ``expires_at`` (epoch seconds) lets the store drop it after that."""

    def remove(self, key: str, version: int | None) -> None:
        """Remove the document read at ``version`` in this unit of work."""

    def under(self, parent: str) -> list[tuple[str, Versioned[dict[str, Any]]]]:
        """The documents filed under ``parent``, each with its key, oldest key first."""

    def expiring(self, before: float, limit: int = 100) -> list[tuple[str, Versioned[dict[str, Any]]]]:
        """Documents the store may drop before ``before`` (epoch seconds), each with its key."""


@runtime_checkable
class UnitOfWork(Protocol):
    """The repositories, and one atomic commit of everything written through them.

    Reads outside ``with`` see what is committed; inside, ``commit()`` writes every change at
    once (SQLite: one ``BEGIN IMMEDIATE`` transaction; DynamoDB: one TransactWriteItems whose
    every item names the version it read) or raises VersionConflict, having written nothing.
    Leaving the block without a commit discards the changes.
    """

    images: ImageRepository
    counters: CounterRepository
    idempotency: IdempotencyRepository
    tokens: TokenRepository
    links: DocumentRepository
    batches: DocumentRepository

    def __enter__(self) -> "UnitOfWork": ...

    def __exit__(self, *exc_info: Any) -> None: ...

    def commit(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """Where the catalog keeps its state: hands out units of work."""

    def unit_of_work(self) -> UnitOfWork: ...

    def ping(self) -> None:
        """Raise when the store cannot be reached (readiness)."""
