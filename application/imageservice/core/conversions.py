"""What a conversion asks for, as one validated value: the web layer builds it, the imaging
module executes it, and its normalised form is the conversion's cache key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from .errors import BadRequest

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


# -- validation: the one place a conversion's parameters are checked ----------------------------
# (the API turns a JSON body into a ConversionRequest here; the OpenAPI document states the same
# bounds from these constants)

QUALITY_RANGE = (1, 100)
OPACITY_RANGE = (0.05, 1.0)
SCALE_RANGE = (0.05, 1.0)
WATERMARK_TEXT_MAX = 100
CONVERSION_FIELDS = frozenset({"format", "width", "height", "fit", "quality", "enlarge", "watermark"})
WATERMARK_FIELDS = frozenset({"text", "image_id", "position", "opacity", "scale"})


def conversion_request_from(params: Mapping[str, Any]) -> ConversionRequest:
    """A ConversionRequest from decoded JSON (``user_id`` and other keys are the caller's
    business). Raises BadRequest(code="invalid_parameter") naming the first bad field; limits
    that are settings (convert_max_edge, max_pixels) are the imaging code's, as 422."""
    fmt = params.get("format")
    if not isinstance(fmt, str) or _alias(fmt) not in CONVERT_FORMATS:
        raise _bad(f"format must be one of {', '.join(CONVERT_FORMATS)}.")
    fit = params.get("fit", "contain")
    if not isinstance(fit, str) or fit.lower() not in FITS:
        raise _bad(f"fit must be one of {', '.join(FITS)}.")
    enlarge = params.get("enlarge", False)
    if not isinstance(enlarge, bool):
        raise _bad("enlarge must be true or false.")
    watermark = params.get("watermark")
    return ConversionRequest(
        format=_alias(fmt),
        width=_whole(params, "width", 1, None),
        height=_whole(params, "height", 1, None),
        fit=fit.lower(),
        quality=_whole(params, "quality", *QUALITY_RANGE),
        enlarge=enlarge,
        watermark=None if watermark is None else watermark_from(watermark),
    )


def watermark_from(value: Any) -> WatermarkSpec:
    if not isinstance(value, Mapping):
        raise _bad("watermark must be an object.")
    unknown = set(value) - WATERMARK_FIELDS
    if unknown:
        raise _bad(f"watermark has no field {', '.join(sorted(unknown))}.")
    text, image_id = value.get("text"), value.get("image_id")
    if (text is None) == (image_id is None):
        raise _bad("watermark needs either text or image_id (not both).")
    if text is not None and (not isinstance(text, str) or not text.strip() or len(text) > WATERMARK_TEXT_MAX):
        raise _bad(f"watermark.text must be 1 to {WATERMARK_TEXT_MAX} characters.")
    if image_id is not None and (not isinstance(image_id, str) or not image_id):
        raise _bad("watermark.image_id must be an image id.")
    position = value.get("position", "bottom-right")
    if position not in WATERMARK_POSITIONS:
        raise _bad(f"watermark.position must be one of {', '.join(WATERMARK_POSITIONS)}.")
    return WatermarkSpec(
        text=text, image_id=image_id, position=position,
        opacity=_fraction(value, "opacity", 0.5, OPACITY_RANGE),
        scale=_fraction(value, "scale", 0.2, SCALE_RANGE),
    )


def _alias(fmt: str) -> str:
    fmt = fmt.lower()
    return {"jpg": "jpeg", "tif": "tiff"}.get(fmt, fmt)


def _whole(params: Mapping[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        raise _bad(f"{name} must be a whole number from {low}" + (f" to {high}." if high else " up."))
    return value


def _fraction(params: Mapping[str, Any], name: str, default: float, bounds: tuple[float, float]) -> float:
    value = params.get(name, default)
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _bad(f"watermark.{name} must be a number from {low} to {high}.")
    return float(value)


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_parameter")
