"""The imaging package's value types: limits in, specs to make, images and facts out."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..conversions import WatermarkSpec
from ..formats import PILLOW_INPUTS


# --------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagingLimits:
    max_pixels: int = 100_000_000  # per frame, width * height
    max_animation_pixels: int = 1_000_000_000  # width * height summed over all frames
    max_frames: int = 1000
    convert_max_edge: int = 8192  # longest side a conversion may produce


@dataclass(frozen=True)
class DerivativeSpec:
    """One derivative to make: a WebP whose long edge is at most ``long_edge`` (never upscaled),
    with an optional text ``watermark`` (a logo needs another image's bytes: conversions only)."""

    name: str
    long_edge: int
    quality: int = 80
    watermark: WatermarkSpec | None = None

    def __post_init__(self) -> None:
        if self.long_edge < 1 or not 1 <= self.quality <= 100:
            raise ValueError(f"invalid derivative spec {self!r}")
        if self.watermark is not None and self.watermark.text is None:
            raise ValueError(f"a derivative's watermark is a text: {self!r}")


@dataclass(frozen=True)
class EncodedImage:
    data: bytes = field(repr=False)
    format: str  # lower-case output format: "webp", "jpeg", ...
    content_type: str
    extension: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's name for the input format: "JPEG", "PNG", "HEIF", ...
    content_type: str  # the sniffed MIME type
    width: int  # as displayed, i.e. after EXIF orientation, at full resolution
    height: int
    mode: str  # Pillow mode of the input: "RGB", "CMYK", "I;16", "P", ...
    frames: int
    animated: bool
    exif: dict  # {Pillow tag name: JSON-native value}; never GPS (see ``gps``)
    gps: dict | None  # {"latitude", "longitude", "altitude"} in signed decimal degrees / metres
    blurhash: str


@dataclass(frozen=True)
class ProcessedImage:
    info: ImageInfo
    derivatives: dict[str, EncodedImage]


# Pillow format names we let Image.open use.  MPO is what Pillow calls a multi-picture JPEG;
# CUR (cursor) is the ICO container with another type number.
SUPPORTED_INPUT_FORMATS: tuple[str, ...] = PILLOW_INPUTS  # core/formats.py
