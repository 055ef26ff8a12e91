"""Encoding: pixels to bytes of an output format, never carrying any input metadata."""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import Any, Iterator

from PIL import Image

from ..errors import ImageRejected
from . import pixels
from .model import EncodedImage

# Output formats that can carry an animation.
ANIMATED_OUTPUTS = frozenset({"gif", "webp", "png"})
# libwebp's effort ("method", 0 fastest .. 6 smallest; libwebp's and libvips' default is 4).
# Measured on a 1440x1080 photo: method 2 encodes in less than half the time of 4 for files
# about 3% larger; 3 costs as much as 4.  bench/bench_pipeline.py compares at this same effort.
WEBP_METHOD = 2
_DEFAULT_QUALITY = 80

# output format -> (Pillow format, content type, file extension)
_OUTPUTS: dict[str, tuple[str, str, str]] = {
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "png": ("PNG", "image/png", "png"),
    "webp": ("WEBP", "image/webp", "webp"),
    "avif": ("AVIF", "image/avif", "avif"),
    "gif": ("GIF", "image/gif", "gif"),
    "tiff": ("TIFF", "image/tiff", "tif"),
    "bmp": ("BMP", "image/bmp", "bmp"),
}


def _prepare_for(fmt: str, image: Image.Image) -> Image.Image:
    """The pixels the encoder for ``fmt`` should get, with no metadata attached."""
    image = pixels.drop_opaque_alpha(image)
    if fmt in ("jpeg", "bmp"):
        image = pixels.flatten(image)
    image.info = {}  # nothing from the input may reach the output (EXIF, XMP, ICC, comments)
    return image


def _save_options(fmt: str, quality: int | None) -> dict[str, Any]:
    """Encoder options.  Metadata is never passed, and ``info`` is emptied by _prepare_for."""
    q = quality if quality is not None else _DEFAULT_QUALITY
    if fmt == "jpeg":
        return {"quality": q}
    if fmt == "webp":
        return {"quality": q, "method": WEBP_METHOD}
    if fmt == "avif":
        return {"quality": q}
    if fmt == "png":
        return {"compress_level": 6}
    if fmt == "tiff":
        return {"compression": "tiff_deflate"}
    return {}


def encode(image: Image.Image, fmt: str, quality: int | None) -> EncodedImage:
    pillow_format, content_type, extension = _OUTPUTS[fmt]
    prepared = _prepare_for(fmt, image)
    buffer = io.BytesIO()
    with _rejecting_encode_errors(fmt):
        prepared.save(buffer, pillow_format, **_save_options(fmt, quality))
    return EncodedImage(buffer.getvalue(), fmt, content_type, extension, prepared.width, prepared.height)


def encode_animation(
    frames: list[Image.Image], durations: list[int], loop: int | None, fmt: str, quality: int | None
) -> EncodedImage:
    pillow_format, content_type, extension = _OUTPUTS[fmt]
    prepared = [_prepare_for(fmt, frame) for frame in frames]
    options = _save_options(fmt, quality)
    if loop is not None:
        options["loop"] = int(loop)
    if fmt == "gif" and any(frame.mode == "RGBA" for frame in prepared):
        options["disposal"] = 2  # restore to background so transparent areas stay transparent
    buffer = io.BytesIO()
    with _rejecting_encode_errors(fmt):
        prepared[0].save(
            buffer, pillow_format, save_all=True, append_images=prepared[1:], duration=durations, **options
        )
    width, height = prepared[0].size
    return EncodedImage(buffer.getvalue(), fmt, content_type, extension, width, height)


@contextmanager
def _rejecting_encode_errors(fmt: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, KeyError, MemoryError) as exc:
        raise ImageRejected("processing_failed", f"could not encode {fmt}: {exc}") from exc
