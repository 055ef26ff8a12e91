"""The DynamoDB store. A unit of work reads items as they are (strongly consistent) and keeps
its writes; ``commit`` sends them as one TransactWriteItems, every item conditional on the
version it read, so the whole commit happens or none of it (docs/DESIGN.md "Unit of work")."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ...core.errors import Conflict, TransientError
from ...unit_of_work import VersionConflict
from ..aws.errors import error_code, transient_errors
from .images import DynamoImages
from .reads import RecordReader
from .repositories import DynamoCounters, DynamoDocuments, DynamoIdempotency, DynamoTokens

TRANSACTION_CANCELLED = "TransactionCanceledException"
# Cancellation reasons that mean "what was read changed": run the unit of work again.
CHANGED = {"ConditionalCheckFailed", "TransactionConflict"}
MAX_ITEMS = 100  # DynamoDB's limit of items in one transaction


class DynamoUnitOfWork:
    def __init__(self, reader: RecordReader, abandoned_ttl: int):
        self._reader = reader
        self._writes: list[tuple[dict[str, Any], str | None]] = []
        self.images = DynamoImages(reader, self, abandoned_ttl)
        self.counters = DynamoCounters(reader, self)
        self.idempotency = DynamoIdempotency(reader, self)
        self.tokens = DynamoTokens(reader, self)
        self.links = DynamoDocuments(reader, self, "link")
        self.batches = DynamoDocuments(reader, self, "batch")

    def __enter__(self) -> "DynamoUnitOfWork":
        self._writes = []
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._writes = []

    def write(self, operation: str, request: dict[str, Any], refusal: str | None = None) -> None:
        """Keep one write (``Put``, ``Update``, ``Delete``) for the commit. ``refusal``: the
        error code its failed condition means (``exists``), instead of a VersionConflict."""
        self._writes.append(({operation: {"TableName": self._reader.table, **request}}, refusal))

    def commit(self) -> None:
        writes, self._writes = self._writes, []
        if not writes:
            return
        if len(writes) > MAX_ITEMS:
            raise TransientError(f"one unit of work wrote {len(writes)} items")
        with transient_errors("commit"):
            try:
                self._reader.db.transact_write_items(TransactItems=[item for item, _ in writes])
            except ClientError as exc:
                if error_code(exc) != TRANSACTION_CANCELLED:
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                for (_, refusal), reason in zip(writes, reasons):
                    if reason == "ConditionalCheckFailed" and refusal == "exists":
                        raise Conflict("the record exists", code="exists") from None
                if CHANGED & set(reasons):
                    raise VersionConflict(", ".join(str(r) for r in reasons)) from None
                raise TransientError(f"commit: {exc}") from exc


class DynamoStore:
    def __init__(self, dynamodb_client, table: str, *, abandoned_ttl: int = 24 * 3600):
        """``abandoned_ttl``: seconds after its upload URL lapsed that DynamoDB TTL removes a
        record still pending (a persistent owner's upload that never came)."""
        self.reader = RecordReader(dynamodb_client, table)
        self.abandoned_ttl = abandoned_ttl

    def unit_of_work(self) -> DynamoUnitOfWork:
        return DynamoUnitOfWork(self.reader, self.abandoned_ttl)

    def ping(self) -> None:
        self.reader.ping()
