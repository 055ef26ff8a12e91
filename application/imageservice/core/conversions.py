"""What a conversion asks for, as one validated value: the web layer builds it, the imaging
module executes it, and its normalised form is the conversion's cache key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

CONVERT_FORMATS = ("jpeg", "png", "webp", "avif", "gif", "tiff", "bmp")
LOSSLESS_FORMATS = frozenset({"png", "gif", "tiff", "bmp"})
FITS = ("contain", "cover", "fill")
WATERMARK_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")


@dataclass(frozen=True)
class WatermarkSpec:
    """A text mark or another image of the same owner (``image_id``) used as a logo."""

    text: str | None = None
    image_id: str | None = None
    position: str = "bottom-right"
    opacity: float = 0.5
    scale: float = 0.2


@dataclass(frozen=True)
class ConversionRequest:
    format: str
    width: int | None = None
    height: int | None = None
    fit: str = "contain"
    quality: int | None = None
    enlarge: bool = False
    watermark: WatermarkSpec | None = None

    def normalised(self) -> "ConversionRequest":
        """The same request with what cannot change the output removed (quality for lossless
        formats), so equal outputs share one cache entry."""
        if self.format in LOSSLESS_FORMATS and self.quality is not None:
            return ConversionRequest(self.format, self.width, self.height, self.fit, None,
                                     self.enlarge, self.watermark)
        return self

    def cache_key(self) -> str:
        canonical = json.dumps(asdict(self.normalised()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]
