"""convert_image: decode, make upright sRGB, resize to the asked box and encode to the asked format."""

from __future__ import annotations

from typing import Any

from PIL import Image

from ..conversions import CONVERT_FORMATS, FITS
from ..errors import BadRequest, Unprocessable
from . import encoding, pixels
from .model import EncodedImage, ImagingLimits
from .opening import Source, open_within_limits, rejecting_decode_errors

def convert_image(
    data: bytes,
    *,
    format: str,
    width: int | None = None,
    height: int | None = None,
    fit: str = "contain",
    quality: int | None = None,
    limits: ImagingLimits = ImagingLimits(),
) -> EncodedImage:
    """Convert (and optionally resize) an image; metadata is never carried over.

    Raises BadRequest(code="invalid_parameter") for bad parameters, Unprocessable
    (code="limit_exceeded") for outputs beyond the limits, ImageRejected for bad inputs.
    """
    fmt = _validate_convert_request(format, width, height, fit, quality, limits)
    with open_within_limits(data, limits) as source:
        target, region = _plan_output(source.displayed_size, width, height, fit, limits)
        if source.animated and fmt in encoding.ANIMATED_OUTPUTS:
            _check_animation_output(source.frames, target, limits)
            return _convert_animation(source, fmt, target, region, quality)
        needed = pixels.needed_size(source.displayed_size, target, region)
        upright = pixels.upright_srgb(source, needed)
        return encoding.encode(pixels.resize(upright, target, _box_in(upright, region)), fmt, quality)


def _validate_convert_request(
    fmt: Any, width: Any, height: Any, fit: Any, quality: Any, limits: ImagingLimits
) -> str:
    if not isinstance(fmt, str) or fmt.lower() not in CONVERT_FORMATS:
        raise BadRequest(f"format must be one of {', '.join(CONVERT_FORMATS)}", code="invalid_parameter")
    if fit not in FITS:
        raise BadRequest(f"fit must be one of {', '.join(FITS)}", code="invalid_parameter")
    for name, value in (("width", width), ("height", height)):
        if value is None:
            continue
        if not _is_int(value) or value < 1:
            raise BadRequest(f"{name} must be a positive integer", code="invalid_parameter")
        if value > limits.convert_max_edge:
            raise Unprocessable(f"{name} may be at most {limits.convert_max_edge}", code="limit_exceeded")
    if width is not None and height is not None and width * height > limits.max_pixels:
        raise Unprocessable(
            f"width x height may be at most {limits.max_pixels} pixels", code="limit_exceeded"
        )
    if quality is not None and not (_is_int(quality) and 1 <= quality <= 100):
        raise BadRequest("quality must be an integer from 1 to 100", code="invalid_parameter")
    return fmt.lower()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plan_output(
    size: tuple[int, int], width: int | None, height: int | None, fit: str, limits: ImagingLimits
) -> tuple[tuple[int, int], pixels.Box]:
    """The output size and the part of the (upright) source that goes into it, as fractions."""
    source_width, source_height = size
    region = pixels.WHOLE
    if width is None and height is None:
        target = pixels.fit_long_edge(size, limits.convert_max_edge)  # original size, within the limit
    elif height is None:
        target = (width, max(1, round(source_height * width / source_width)))
    elif width is None:
        target = (max(1, round(source_width * height / source_height)), height)
    elif fit == "fill":
        target = (width, height)
    elif fit == "contain":
        scale = min(width / source_width, height / source_height)
        target = (
            min(width, max(1, round(source_width * scale))),
            min(height, max(1, round(source_height * scale))),
        )
    else:  # cover: the centre of the source, cut to the box's aspect ratio
        target = (width, height)
        box_ratio, source_ratio = width / height, source_width / source_height
        if source_ratio > box_ratio:
            keep = box_ratio / source_ratio
            region = ((1 - keep) / 2, 0.0, (1 + keep) / 2, 1.0)
        else:
            keep = source_ratio / box_ratio
            region = (0.0, (1 - keep) / 2, 1.0, (1 + keep) / 2)
    if max(target) > limits.convert_max_edge or target[0] * target[1] > limits.max_pixels:
        raise Unprocessable(
            f"the output would be {target[0]}x{target[1]}, beyond the limit of "
            f"{limits.convert_max_edge} px a side and {limits.max_pixels} pixels",
            code="limit_exceeded",
        )
    return target, region


def _box_in(image: Image.Image, region: pixels.Box) -> pixels.Box | None:
    """``region`` (fractions) in pixel coordinates of ``image``; None for the whole image.

    Fractions, because the decoded image may be a DCT-scaled or reduced copy of the original.
    """
    if region == pixels.WHOLE:
        return None
    x0, y0, x1, y1 = region
    return (x0 * image.width, y0 * image.height, x1 * image.width, y1 * image.height)


def _check_animation_output(frames: int, target: tuple[int, int], limits: ImagingLimits) -> None:
    if frames * target[0] * target[1] > limits.max_animation_pixels:
        raise Unprocessable(
            f"{frames} frames of {target[0]}x{target[1]} exceed {limits.max_animation_pixels} pixels",
            code="limit_exceeded",
        )


def _convert_animation(
    source: Source, fmt: str, target: tuple[int, int], region: pixels.Box, quality: int | None
) -> EncodedImage:
    """Every frame decoded (Pillow composites them onto the canvas), resized and re-encoded."""
    image = source.image
    loop = image.info.get("loop")  # absent: play once (GIF without a NETSCAPE block)
    frames: list[Image.Image] = []
    durations: list[int] = []
    with rejecting_decode_errors():
        for index in range(source.frames):
            image.seek(index)
            upright = pixels.upright_srgb(source, None)
            durations.append(int(image.info.get("duration") or 100))  # known only once decoded (WebP)
            frames.append(pixels.resize(upright, target, _box_in(upright, region)))
    return encoding.encode_animation(frames, durations, loop, fmt, quality)
