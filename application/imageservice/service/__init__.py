"""Use cases: what the API, the pages and the CLI do, over the ports, one module per use case
(uploads, images, conversions, workspaces, tokens, share links, batches) over a shared base.

Every method takes the acting ``Principal`` and a typed command (``commands.py``; the web layer
parses requests into them) and returns a record or a result dataclass. Ownership is enforced
here, once: an image of another owner is indistinguishable from a missing one (NotFound).
"""

from __future__ import annotations

from ..auth import Principal, hash_token
from ..commands import DOWNLOAD_VARIANTS
from .base import UPLOAD_CONTENT_TYPES
from .batches import Batches
from .conversions import CONVERSION_RATE, Conversions
from .images import Images
from .links import Links
from .tokens import Tokens
from .uploads import Uploads
from .workspaces import Workspaces

__all__ = ["CONVERSION_RATE", "DOWNLOAD_VARIANTS", "ImageService", "Principal", "UPLOAD_CONTENT_TYPES", "hash_token"]


class ImageService(Uploads, Images, Conversions, Workspaces, Tokens, Links, Batches):
    """Every use case, over one set of ports (bootstrap.py builds it once)."""
