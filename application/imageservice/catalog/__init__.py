"""The catalog: the use cases of the stored state (records, usage, rate windows, idempotency
keys, tokens, share links, batches), each a unit of work over the store's small repositories that applies a rule
of core once, whatever the backend (docs/DESIGN.md "Unit of work")."""

from __future__ import annotations

from .batches import BatchBook
from .images import ImageBook
from .keys import IdempotencyKeys, TokenBook
from .links import LinkBook
from .rates import RateWindows


class Catalog(ImageBook, RateWindows, IdempotencyKeys, TokenBook, LinkBook, BatchBook):
    """Every part over one store: what the service, the pipeline and admission are handed."""


__all__ = ["BatchBook", "Catalog", "IdempotencyKeys", "ImageBook", "LinkBook", "RateWindows", "TokenBook"]
