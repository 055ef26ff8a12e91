"""Encoding: pixels to bytes of an output format, never carrying any input metadata."""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import Any, Iterator

from PIL import Image

from ..errors import ImageRejected, Unprocessable
from ..formats import BY_OUTPUT
from . import pixels
from .model import EncodedImage

# Output formats that can carry an animation.
ANIMATED_OUTPUTS = frozenset({"gif", "webp", "png"})
# libwebp's effort ("method", 0 fastest .. 6 smallest; libwebp's and libvips' default is 4).
# Measured on a 1440x1080 photo: method 2 encodes in less than half the time of 4 for files
# about 3% larger; 3 costs as much as 4.  bench/bench_pipeline.py compares at this same effort.
WEBP_METHOD = 2
# libavif's speed (0 slowest .. 10 fastest; Pillow's default is 6), measured on 1920 and 3840 px
# renditions (docs/RENDITIONS.md): at 6 a 3840 px encode takes 4.4-4.7 s, at 5 and below 10-16 s,
# too long for the imaging budget's two jobs at once on two cores; 9 takes about 1 s, for files
# 2-8 % larger than 6's on real photos. With libaom, 10 is the same as 9.
AVIF_SPEED = 9
_DEFAULT_QUALITY = 80

# output format -> (Pillow format, content type, file extension)
_OUTPUTS: dict[str, tuple[str, str, str]] = {
    name: (f.pillow[0], f.media_type, f.extensions[0]) for name, f in BY_OUTPUT.items()}


def prepare_for(fmt: str, image: Image.Image) -> Image.Image:
    """The pixels the encoder for ``fmt`` should get, with no metadata attached."""
    image = pixels.drop_opaque_alpha(image)
    if fmt in ("jpeg", "bmp"):
        image = pixels.flatten(image)
    image.info = {}  # nothing from the input may reach the output (EXIF, XMP, ICC, comments)
    return image


def _save_options(fmt: str, quality: int | None) -> dict[str, Any]:
    """Encoder options.  Metadata is never passed, and ``info`` is emptied by prepare_for."""
    q = quality if quality is not None else _DEFAULT_QUALITY
    if fmt == "jpeg":
        return {"quality": q}
    if fmt == "webp":
        return {"quality": q, "method": WEBP_METHOD}
    if fmt == "avif":
        return {"quality": q, "speed": AVIF_SPEED}
    if fmt == "png":
        return {"compress_level": 6}
    if fmt == "tiff":
        return {"compression": "tiff_deflate"}
    return {}


def encode(image: Image.Image, fmt: str, quality: int | None, *, max_bytes: int | None = None) -> EncodedImage:
    """``image`` as ``fmt``.  Raises Unprocessable("output_too_large") past ``max_bytes``."""
    pillow_format, content_type, extension = _OUTPUTS[fmt]
    prepared = prepare_for(fmt, image)
    buffer = _CappedBuffer(max_bytes)
    with _rejecting_encode_errors(fmt):
        prepared.save(buffer, pillow_format, **_save_options(fmt, quality))
    return EncodedImage(buffer.getvalue(), fmt, content_type, extension, prepared.width, prepared.height)


def encode_animation(
    frames: Image.Image, durations: list[int], loop: int | None, fmt: str, quality: int | None,
    *, max_bytes: int | None = None,
) -> EncodedImage:
    """Every frame of the multi-frame image ``frames`` (already prepared with prepare_for).

    The encoder reads the frames by seeking, so a lazy sequence is encoded one frame at a time:
    Pillow's WebP encoder holds only the frame it is adding; its GIF and APNG writers keep
    their own copies of the frames until the end.  ``durations`` may grow while frames are read.
    """
    pillow_format, content_type, extension = _OUTPUTS[fmt]
    options = _save_options(fmt, quality)
    if loop is not None:
        options["loop"] = int(loop)
    if fmt == "gif" and frames.mode == "RGBA":
        options["disposal"] = 2  # restore to background so transparent areas stay transparent
    buffer = _CappedBuffer(max_bytes)
    with _rejecting_encode_errors(fmt):
        frames.save(buffer, pillow_format, save_all=True, duration=durations, **options)
    return EncodedImage(buffer.getvalue(), fmt, content_type, extension, frames.width, frames.height)


class _CappedBuffer(io.BytesIO):
    """An in-memory output that refuses to grow past ``limit`` bytes, so an encoder writing
    an oversized file stops at the limit instead of finishing it first."""

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data) -> int:  # type: ignore[override]
        if self.limit is not None and self.tell() + len(data) > self.limit:
            raise Unprocessable(
                f"the converted image would be larger than {self.limit} bytes", code="output_too_large"
            )
        return super().write(data)


@contextmanager
def _rejecting_encode_errors(fmt: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, KeyError, MemoryError) as exc:
        raise ImageRejected("processing_failed", f"could not encode {fmt}: {exc}") from exc
