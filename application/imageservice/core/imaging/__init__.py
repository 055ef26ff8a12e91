"""Imaging: the only package that touches Pillow (and pillow_heif).

What it does, in the order an upload meets it, one module a step:

1. ``sniffing``: ``sniff`` names the type from magic bytes alone (pure bytes, no Pillow) and
   refuses anything outside the allow-list.
2. ``opening``: ``open_within_limits`` opens the bytes with Pillow restricted to the sniffed
   format and refuses pixel and frame bombs from the headers, before a single pixel is decoded
   (the GIF and TIFF frame walkers live there).  Both operations go through it.
3. ``metadata``: EXIF, GPS and orientation.
4. ``pixels``: decode at the smallest useful scale, 8-bit sRGB, upright, resample.
5. ``encoding``: output formats, never carrying input metadata.  ``blurhash``: the placeholder.
6. ``process``: ``process_image`` decodes the first frame once, makes the derivatives
   largest-first, each from the previous one, as WebP, and reads EXIF, GPS and a blurhash on
   the side.  ``convert``: ``convert_image`` resizes to the asked box (contain / cover / fill)
   and encodes to the asked format; animations stay animated when the output can hold them.

Callers import the public names from here.  Nothing happens at import time: the HEIF plugin is
registered on first use.
"""

from ..conversions import CONVERT_FORMATS, FITS
from .convert import convert_image
from .model import (
    SUPPORTED_INPUT_FORMATS,
    DerivativeSpec,
    EncodedImage,
    ImageInfo,
    ImagingLimits,
    ProcessedImage,
)
from .process import process_image, warm_up
from .sniffing import sniff

__all__ = [
    "CONVERT_FORMATS",
    "FITS",
    "SUPPORTED_INPUT_FORMATS",
    "DerivativeSpec",
    "EncodedImage",
    "ImageInfo",
    "ImagingLimits",
    "ProcessedImage",
    "convert_image",
    "process_image",
    "sniff",
    "warm_up",
]
