"""What a conversion asks for, as one validated value: the web layer builds it, the imaging
module executes it, and its normalised form is the conversion's cache key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import BadRequest, Unprocessable
from .fieldrules import FieldRule, check_fields, read_fields, ruled, rules
from .formats import OUTPUT_ORDER

# The bounds below are the rules' one home: the fields' rules hold them, the checks and
# /api/openapi.json read them from there (core/fieldrules.py).
CONVERT_FORMATS = OUTPUT_ORDER  # core/formats.py
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
LOSSLESS_FORMATS = frozenset({"png", "gif", "tiff", "bmp"})
FITS = ("contain", "cover", "fill")
QUALITY_RANGE = (1, 100)
# How far ``enlarge`` may scale the source up (imgproxy's enlarge has no bound; ours has one so
# a tiny upload cannot ask for a huge output).
MAX_ENLARGEMENT = 2.0
WATERMARK_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
OPACITY_RANGE = (0.05, 1.0)
SCALE_RANGE = (0.05, 1.0)
WATERMARK_TEXT_MAX = 100
ONE_OF_TEXT_OR_IMAGE = "Give text or image_id, not both."
TEXT_OR_IMAGE_REFUSED = "watermark needs either text or image_id (not both)."


@dataclass(frozen=True)
class WatermarkSpec:
    """A text mark or another image of the same owner (``image_id``) used as a logo."""

    text: str | None = ruled(FieldRule(
        "string", min_length=1, max_length=WATERMARK_TEXT_MAX, not_blank=True,
        description=f"The mark's text. {ONE_OF_TEXT_OR_IMAGE}"), None)
    image_id: str | None = ruled(FieldRule(
        "string", min_length=1, description=f"Another ready image of yours, used as a logo. {ONE_OF_TEXT_OR_IMAGE}"),
        None)
    position: str = ruled(FieldRule("string", choices=WATERMARK_POSITIONS), "bottom-right")
    opacity: float = ruled(FieldRule("number", minimum=OPACITY_RANGE[0], maximum=OPACITY_RANGE[1],
                                     description="How opaque the mark is (1: fully)."), 0.5)
    scale: float = ruled(FieldRule("number", minimum=SCALE_RANGE[0], maximum=SCALE_RANGE[1],
                                   description="The mark's width as a fraction of the output's width."), 0.2)

    def __post_init__(self) -> None:
        """The one check of a watermark's values.  Raises BadRequest(code="invalid_parameter").

        A mark with neither text nor an image is refused where JSON becomes one (watermark_from)
        and draws nothing in the imaging code.
        """
        if self.text is not None and self.image_id is not None:
            raise _bad(TEXT_OR_IMAGE_REFUSED)
        check_fields(self, "watermark.")


@dataclass(frozen=True)
class ConversionRequest:
    """A conversion: the output's format, the box it fits in, its quality, and an optional mark."""

    format: str = ruled(FieldRule(
        "string", choices=CONVERT_FORMATS, aliases=FORMAT_ALIASES,
        description=f"{' and '.join(FORMAT_ALIASES)} are accepted as aliases."))
    width: int | None = ruled(FieldRule(
        "integer", minimum=1, description="At most the convert_max_edge limit (else 422 limit_exceeded)."), None)
    height: int | None = ruled(FieldRule(
        "integer", minimum=1, description="At most the convert_max_edge limit (else 422 limit_exceeded)."), None)
    fit: str = ruled(FieldRule(
        "string", choices=FITS, description="contain: inside the box, aspect kept; cover: exactly the box, "
                                           "centred crop; fill: exactly the box, stretched."), "contain")
    quality: int | None = ruled(FieldRule(
        "integer", minimum=QUALITY_RANGE[0], maximum=QUALITY_RANGE[1],
        description="Ignored (and not part of the cache key) for the lossless formats: "
                    f"{', '.join(f for f in CONVERT_FORMATS if f in LOSSLESS_FORMATS)}."), None)
    enlarge: bool = ruled(FieldRule(
        "boolean", description=f"Allow up to {MAX_ENLARGEMENT:g}x the source's long edge (default: never larger)."),
        False)
    watermark: WatermarkSpec | None = ruled(FieldRule("object", model=WatermarkSpec), None)

    def __post_init__(self) -> None:
        """The one check of a conversion's values, whoever builds it (the API through
        conversion_request_from, or code).  Raises BadRequest(code="invalid_parameter")."""
        check_fields(self)

    def normalised(self) -> ConversionRequest:
        """The same request with what cannot change the output removed (quality for lossless
        formats), so equal outputs share one cache entry."""
        if self.format in LOSSLESS_FORMATS and self.quality is not None:
            return replace(self, quality=None)
        return self

    def cache_key(self) -> str:
        canonical = json.dumps(asdict(self.normalised()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def conversion_request_from(params: Mapping[str, Any]) -> ConversionRequest:
    """A ConversionRequest from decoded JSON (``user_id`` and other keys are the caller's
    business). Only JSON's types are handled here (``"jpg"``, ``"PNG"``, ``300.0``); the values
    are checked where the request is constructed.  Raises BadRequest(code="invalid_parameter")
    naming the first bad field; limits that are settings (convert_max_edge, max_pixels) are the
    imaging code's, as 422 (check_within_limits)."""
    values = read_fields(ConversionRequest, params)
    if values.get("watermark") is not None:
        values["watermark"] = watermark_from(values["watermark"])
    return ConversionRequest(**values)


def check_within_limits(request: ConversionRequest, *, max_edge: int, max_pixels: int) -> None:
    """The bounds that are settings (``convert_max_edge``, ``max_pixels``): the imaging code
    calls this with its limits.  Raises Unprocessable(code="limit_exceeded")."""
    for name, value in (("width", request.width), ("height", request.height)):
        if value is not None and value > max_edge:
            raise Unprocessable(f"{name} may be at most {max_edge}.", code="limit_exceeded")
    if request.width is not None and request.height is not None and request.width * request.height > max_pixels:
        raise Unprocessable(f"width x height may be at most {max_pixels} pixels.", code="limit_exceeded")


def watermark_from(value: Any) -> WatermarkSpec:
    """A WatermarkSpec from decoded JSON, which must name no other field and give text or an
    image.  Raises BadRequest(code="invalid_parameter")."""
    if not isinstance(value, Mapping):
        raise _bad("watermark must be an object.")
    unknown = set(value) - {field.name for field, _ in rules(WatermarkSpec)}
    if unknown:
        raise _bad(f"watermark has no field {', '.join(sorted(unknown))}.")
    if value.get("text") is None and value.get("image_id") is None:
        raise _bad(TEXT_OR_IMAGE_REFUSED)
    return WatermarkSpec(**read_fields(WatermarkSpec, value))


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_parameter")
