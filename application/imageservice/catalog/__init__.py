"""The catalog: the use cases of the stored state (records, usage, rate windows, idempotency
keys, tokens, share links), each a unit of work over the store's small repositories that applies a rule
of core once, whatever the backend (docs/DESIGN.md "Unit of work")."""

from __future__ import annotations

from .images import ImageBook
from .keys import IdempotencyKeys, TokenBook
from .links import LinkBook
from .rates import RateWindows


class Catalog(ImageBook, RateWindows, IdempotencyKeys, TokenBook, LinkBook):
    """Every part over one store: what the service, the pipeline and admission are handed."""


__all__ = ["Catalog", "IdempotencyKeys", "ImageBook", "LinkBook", "RateWindows", "TokenBook"]
