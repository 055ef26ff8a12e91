"""What a conversion asks for, as one validated value: the web layer builds it, the imaging
module executes it, and its normalised form is the conversion's cache key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from .errors import BadRequest, Unprocessable
from .formats import OUTPUT_ORDER

CONVERT_FORMATS = OUTPUT_ORDER  # core/formats.py
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

    def __post_init__(self) -> None:
        """The one check of a watermark's values.  Raises BadRequest(code="invalid_parameter").

        ``WatermarkSpec()`` stays constructible (the pages read its defaults from it); a mark
        with neither text nor an image is refused where JSON becomes one (watermark_from) and
        draws nothing in the imaging code.
        """
        if self.text is not None and self.image_id is not None:
            raise _bad("watermark needs either text or image_id (not both).")
        if self.text is not None and (
            not isinstance(self.text, str) or not self.text.strip() or len(self.text) > WATERMARK_TEXT_MAX
        ):
            raise _bad(f"watermark.text must be 1 to {WATERMARK_TEXT_MAX} characters.")
        if self.image_id is not None and (not isinstance(self.image_id, str) or not self.image_id):
            raise _bad("watermark.image_id must be an image id.")
        if self.position not in WATERMARK_POSITIONS:
            raise _bad(f"watermark.position must be one of {', '.join(WATERMARK_POSITIONS)}.")
        for name, bounds in (("opacity", OPACITY_RANGE), ("scale", SCALE_RANGE)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not bounds[0] <= value <= bounds[1]:
                raise _bad(f"watermark.{name} must be a number from {bounds[0]} to {bounds[1]}.")


@dataclass(frozen=True)
class ConversionRequest:
    format: str
    width: int | None = None
    height: int | None = None
    fit: str = "contain"
    quality: int | None = None
    enlarge: bool = False
    watermark: WatermarkSpec | None = None

    def __post_init__(self) -> None:
        """The one check of a conversion's values, whoever builds it (the API through
        conversion_request_from, or code).  Raises BadRequest(code="invalid_parameter")."""
        if self.format not in CONVERT_FORMATS:
            raise _bad(f"format must be one of {', '.join(CONVERT_FORMATS)}.")
        if self.fit not in FITS:
            raise _bad(f"fit must be one of {', '.join(FITS)}.")
        for name, low, high in (("width", 1, None), ("height", 1, None), ("quality", *QUALITY_RANGE)):
            value = getattr(self, name)
            if value is not None and (
                not _is_whole(value) or value < low or (high is not None and value > high)
            ):
                raise _bad(f"{name} must be a whole number from {low}" + (f" to {high}." if high else " up."))
        if not isinstance(self.enlarge, bool):
            raise _bad("enlarge must be true or false.")
        if self.watermark is not None and not isinstance(self.watermark, WatermarkSpec):
            raise _bad("watermark must be an object.")

    def normalised(self) -> "ConversionRequest":
        """The same request with what cannot change the output removed (quality for lossless
        formats), so equal outputs share one cache entry."""
        if self.format in LOSSLESS_FORMATS and self.quality is not None:
            return replace(self, quality=None)
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
WATERMARK_FIELDS = frozenset({"text", "image_id", "position", "opacity", "scale"})


def conversion_request_from(params: Mapping[str, Any]) -> ConversionRequest:
    """A ConversionRequest from decoded JSON (``user_id`` and other keys are the caller's
    business). Only JSON's types are handled here (``"jpg"``, ``"PNG"``, ``300.0``); the values
    are checked where the request is constructed.  Raises BadRequest(code="invalid_parameter")
    naming the first bad field; limits that are settings (convert_max_edge, max_pixels) are the
    imaging code's, as 422 (check_within_limits)."""
    fmt, fit = params.get("format"), params.get("fit", "contain")
    watermark = params.get("watermark")
    return ConversionRequest(
        format=_alias(fmt) if isinstance(fmt, str) else fmt,
        width=_whole(params.get("width")),
        height=_whole(params.get("height")),
        fit=fit.lower() if isinstance(fit, str) else fit,
        quality=_whole(params.get("quality")),
        enlarge=params.get("enlarge", False),
        watermark=None if watermark is None else watermark_from(watermark),
    )


def check_within_limits(request: ConversionRequest, *, max_edge: int, max_pixels: int) -> None:
    """The bounds that are settings (``convert_max_edge``, ``max_pixels``): the imaging code
    calls this with its limits.  Raises Unprocessable(code="limit_exceeded")."""
    for name, value in (("width", request.width), ("height", request.height)):
        if value is not None and value > max_edge:
            raise Unprocessable(f"{name} may be at most {max_edge}.", code="limit_exceeded")
    if request.width is not None and request.height is not None and request.width * request.height > max_pixels:
        raise Unprocessable(f"width x height may be at most {max_pixels} pixels.", code="limit_exceeded")


def watermark_from(value: Any) -> WatermarkSpec:
    if not isinstance(value, Mapping):
        raise _bad("watermark must be an object.")
    unknown = set(value) - WATERMARK_FIELDS
    if unknown:
        raise _bad(f"watermark has no field {', '.join(sorted(unknown))}.")
    if value.get("text") is None and value.get("image_id") is None:
        raise _bad("watermark needs either text or image_id (not both).")
    return WatermarkSpec(
        text=value.get("text"), image_id=value.get("image_id"),
        position=value.get("position", "bottom-right"),
        opacity=value.get("opacity", 0.5), scale=value.get("scale", 0.2),
    )


def _alias(fmt: str) -> str:
    fmt = fmt.lower()
    return {"jpg": "jpeg", "tif": "tiff"}.get(fmt, fmt)


def _whole(value: Any) -> Any:
    """JSON has one number type: 300.0 is the whole number 300."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_parameter")
