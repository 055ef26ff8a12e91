"""Pixels: decode at scale, 8-bit sRGB, EXIF orientation, resampling and flattening."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from PIL import Image, ImageCms

from . import metadata
from .opening import rejecting_decode_errors, srgb_profile

if TYPE_CHECKING:
    from .opening import Source

RESAMPLE = Image.Resampling.LANCZOS
# Derivatives start from a DCT-scaled or box-reduced decode at most ~2x their size, where
# bicubic (Pillow's own thumbnail filter) looks the same as Lanczos at half the cost.
DERIVATIVE_RESAMPLE = Image.Resampling.BICUBIC
# Before the final Lanczos pass, shrink by an integer factor with a box filter as long as the
# result stays at least this many times the target (Pillow's thumbnail default).
REDUCING_GAP = 2.0


def decode_scaled(image: Image.Image, needed: tuple[int, int] | None) -> Image.Image:
    """Decode the current frame, as small as possible while still covering ``needed``.

    ``needed`` is the smallest size (in stored, not displayed, orientation) the caller will
    resample from; None means full size.  JPEG decodes straight to 1/2, 1/4 or 1/8 scale
    (DCT scaling, never below ``needed``); other formats decode fully and are shrunk at once by
    an integer box filter, keeping REDUCING_GAP times ``needed`` so the final resample stays sharp.
    """
    full_width, full_height = image.size
    if needed and image.format in ("JPEG", "MPO") and needed[0] < full_width and needed[1] < full_height:
        image.draft(None, (max(1, needed[0]), max(1, needed[1])))
    image.load()
    if not needed:
        return image
    factor = int(min(image.width / (needed[0] * REDUCING_GAP), image.height / (needed[1] * REDUCING_GAP)))
    if factor >= 2 and image.mode in ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"):
        return image.reduce(factor)
    return image


Box = tuple[float, float, float, float]  # x0, y0, x1, y1, as fractions of the image
WHOLE: Box = (0.0, 0.0, 1.0, 1.0)


def needed_size(displayed: tuple[int, int], target: tuple[int, int], region: Box) -> tuple[int, int]:
    """The full-image size (displayed orientation) at which ``region`` maps onto ``target`` 1:1.

    ``region`` is the part of the image that ends up in the output, as fractions (x0, y0, x1, y1).
    """
    region_width = (region[2] - region[0]) or 1.0
    region_height = (region[3] - region[1]) or 1.0
    return (
        min(displayed[0], math.ceil(target[0] / region_width)),
        min(displayed[1], math.ceil(target[1] / region_height)),
    )


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """A new 8-bit sRGB image, RGB or RGBA, carrying no metadata.

    The embedded ICC profile is applied when it fits the pixels; a broken profile is ignored
    (the pixels are then taken as sRGB, like browsers do).
    """
    image = _to_8bit(image)
    target = "RGBA" if _has_alpha(image) else "RGB"
    if icc_profile:
        transformed = _apply_icc(image, icc_profile, target)
        if transformed is not None:
            image = transformed
    converted = image.convert(target) if image.mode != target else image.copy()
    converted.info = {}
    return converted


def _to_8bit(image: Image.Image) -> Image.Image:
    """Bring 1-bit, 16-bit, 32-bit and float images to 8-bit L by scaling, not clipping."""
    mode = image.mode
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I;16"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if mode in ("I", "F"):
        low, high = image.getextrema()
        if mode == "F" and low >= 0 and high <= 1:
            return image.point(lambda v: v * 255).convert("L")
        if low >= 0 and high <= 255:
            return image.convert("L")
        if mode == "I" and low >= 0 and high <= 65535:
            return image.point(lambda v: v * (1 / 256)).convert("L")
        scale = 255 / (high - low) if high > low else 0
        return image.point(lambda v: (v - low) * scale).convert("L")
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )


_ICC_MODES = {"RGB": ("RGB", "RGBA"), "CMYK": ("CMYK",), "GRAY": ("L",)}


def _apply_icc(image: Image.Image, icc_profile: bytes, target: str) -> Image.Image | None:
    """The image converted from its embedded profile to sRGB, or None if the profile does not fit."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        space = source.profile.xcolor_space.strip()
        if space == "RGB" and image.mode in ("P", "PA", "RGBX", "RGBa"):
            image = image.convert(target)
        if image.mode not in _ICC_MODES.get(space, ()):
            return None
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(image, source, srgb_profile(), outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, KeyError):
        return None


def _apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    method = metadata.ORIENTATION_TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def upright_srgb(source: Source, needed: tuple[int, int] | None) -> Image.Image:
    """Decode the current frame of ``source`` at scale, as upright sRGB RGB(A)."""
    stored_needed = metadata.oriented_size(needed, source.orientation) if needed else None
    with rejecting_decode_errors():
        decoded = decode_scaled(source.image, stored_needed)
        icc = source.image.info.get("icc_profile")
        return _apply_orientation(to_srgb(decoded, icc), source.orientation)


def resize(image: Image.Image, size: tuple[int, int], box: Box | None = None,
            resample: Image.Resampling = RESAMPLE) -> Image.Image:
    """Resample to exactly ``size`` (after an integer pre-shrink when far larger)."""
    if image.size == size and box is None:
        return image
    return image.resize(size, resample, box=box, reducing_gap=REDUCING_GAP)


def fit_long_edge(size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    """``size`` scaled so its long side is ``long_edge`` at most (never enlarged)."""
    width, height = size
    scale = min(1.0, long_edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def drop_opaque_alpha(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        return image.convert("RGB")
    return image


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGB, with any transparency composited onto ``background``."""
    if image.mode != "RGBA":
        return image.convert("RGB") if image.mode != "RGB" else image
    flat = Image.new("RGB", image.size, background)
    flat.paste(image, mask=image.getchannel("A"))
    return flat
