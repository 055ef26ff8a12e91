"""Imaging: the only module that touches Pillow (and pillow_heif).

What it does, in the order an upload meets it:

1. ``sniff`` names the type from magic bytes alone and refuses anything outside the allow-list.
2. ``_open_within_limits`` opens the bytes with Pillow restricted to the sniffed format and
   refuses pixel and frame bombs from the headers, before a single pixel is decoded.  Both
   ``process_image`` and ``convert_image`` go through it.
3. ``process_image`` decodes the first frame once, at the smallest scale that still serves the
   largest derivative (libjpeg DCT scaling for JPEG, an integer ``reduce`` for the rest), turns
   it into upright 8-bit sRGB, makes the derivatives largest-first, each from the previous one,
   encodes them as WebP without any metadata, and reads EXIF, GPS and a blurhash on the side.
4. ``convert_image`` does the same decode -> sRGB -> upright steps, then resizes to the asked box
   (contain / cover / fill) and encodes to the asked format; animations stay animated when the
   output format can hold them.

Nothing happens at import time: the HEIF plugin is registered on first use.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import re
import struct
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from .errors import BadRequest, ImageRejected, Unprocessable

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
]


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
    """One derivative to make: a WebP whose long edge is at most ``long_edge`` (never upscaled)."""

    name: str
    long_edge: int
    quality: int = 80

    def __post_init__(self) -> None:
        if self.long_edge < 1 or not 1 <= self.quality <= 100:
            raise ValueError(f"invalid derivative spec {self!r}")


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
SUPPORTED_INPUT_FORMATS: tuple[str, ...] = (
    "JPEG", "MPO", "PNG", "GIF", "WEBP", "TIFF", "BMP", "ICO", "CUR", "HEIF", "AVIF",
)
CONVERT_FORMATS = ("jpeg", "png", "webp", "avif", "gif", "tiff", "bmp")
FITS = ("contain", "cover", "fill")

# The sniffed MIME type decides which single Pillow plugin may open the bytes.
_PILLOW_FORMATS_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("JPEG", "MPO"),
    "image/png": ("PNG",),
    "image/gif": ("GIF",),
    "image/webp": ("WEBP",),
    "image/tiff": ("TIFF",),
    "image/bmp": ("BMP",),
    "image/x-icon": ("ICO", "CUR"),
    "image/heic": ("HEIF",),
    "image/heif": ("HEIF", "AVIF"),  # generic mif1/msf1 brand: either codec may be inside
    "image/avif": ("AVIF",),
}

# Inputs whose extra frames are an animation (MPO stereo pairs, TIFF pages and HEIF collections
# are multi-frame but not animated).
_ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP", "AVIF"})
# Output formats that can carry an animation.
_ANIMATED_OUTPUTS = frozenset({"gif", "webp", "png"})

# Pillow's TIFF plugin applies the Orientation tag itself while loading (and reports the
# displayed size from the start), so we must not rotate those a second time.
_ORIENTED_BY_DECODER = frozenset({"TIFF"})

# Everything a broken or hostile file can make Pillow or pillow_heif raise while opening or
# decoding.  RuntimeError is here because libheif failures surface as RuntimeError.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    RuntimeError,
    UserWarning,  # Pillow warns about damaged tags; where warnings are errors they arrive here
)
# Reading metadata must never reject an image: these are swallowed and the field left out.
_METADATA_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError,
    ZeroDivisionError, OverflowError, UnicodeError, UserWarning,
)

_RESAMPLE = Image.Resampling.LANCZOS
# Derivatives start from a DCT-scaled or box-reduced decode at most ~2x their size, where
# bicubic (Pillow's own thumbnail filter) looks the same as Lanczos at half the cost.
_DERIVATIVE_RESAMPLE = Image.Resampling.BICUBIC
# Before the final Lanczos pass, shrink by an integer factor with a box filter as long as the
# result stays at least this many times the target (Pillow's thumbnail default).
_REDUCING_GAP = 2.0
# libwebp's effort ("method", 0 fastest .. 6 smallest; libwebp's and libvips' default is 4).
# Measured on a 1440x1080 photo: method 2 encodes in less than half the time of 4 for files
# about 3% larger; 3 costs as much as 4.  bench/bench_pipeline.py compares at this same effort.
_WEBP_METHOD = 2
_DEFAULT_QUALITY = 80
_BLURHASH_EDGE = 32


# --------------------------------------------------------------------------------------------
# Lazy set-up
# --------------------------------------------------------------------------------------------

_setup_lock = threading.Lock()
_setup_done = False
_srgb_profile: ImageCms.ImageCmsProfile | None = None


def _ensure_setup() -> None:
    """Register the HEIF opener and quiet Pillow's bomb warning, once, on first use."""
    global _setup_done, _srgb_profile
    if _setup_done:
        return
    with _setup_lock:
        if _setup_done:
            return
        import pillow_heif

        # No embedded thumbnails, depth maps or auxiliary images: we decode the primary image only.
        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        # Our own per-image limits replace Pillow's global warning threshold (~89 MP), which is
        # below our 100 MP default.  Pillow's hard error (~179 MP) stays and maps to
        # too_many_pixels.  Image.MAX_IMAGE_PIXELS itself is left alone.
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        _setup_done = True


# --------------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------------

# (signature, offset, MIME type) of the supported formats with fixed magic numbers.
_SUPPORTED_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"II+\x00", 0, "image/tiff"),  # BigTIFF
    (b"MM\x00+", 0, "image/tiff"),
)

# (signature, offset, name) of real image formats we recognise and refuse.
_UNSUPPORTED_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"8BPS", 0, "Photoshop (PSD)"),
    (b"\xc5\xd0\xd3\xc6", 0, "EPS"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"),
    (b"\xffO\xffQ", 0, "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEG XL"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"qoif", 0, "QOI"),
    (b"DDS ", 0, "DirectDraw Surface (DDS)"),
    (b"icns", 0, "Apple icon (ICNS)"),
    (b"SIMPLE  =", 0, "FITS"),
    (b"/* XPM */", 0, "XPM"),
    (b"\xd7\xcd\xc6\x9a", 0, "Windows Metafile (WMF)"),
    (b"\x01\x00\x09\x00\x00\x03", 0, "Windows Metafile (WMF)"),
    (b"\x02\x00\x09\x00\x00\x03", 0, "Windows Metafile (WMF)"),
    (b" EMF", 40, "Enhanced Metafile (EMF)"),
    (b"BPG\xfb", 0, "BPG"),
    (b"DICM", 128, "DICOM"),
    (b"\x01\xda", 0, "SGI"),
    (b"BLP1", 0, "BLP"),
    (b"BLP2", 0, "BLP"),
    (b"\xaf\x11", 4, "FLI animation"),
    (b"\xaf\x12", 4, "FLC animation"),
    (b"AT&TFORM", 0, "DjVu"),
    (b"gimp xcf", 0, "GIMP XCF"),
    (b"#?RADIANCE", 0, "Radiance HDR"),
    (b"#?RGBE", 0, "Radiance HDR"),
    (b"v/1\x01", 0, "OpenEXR"),
    (b"SDPX", 0, "DPX"),
    (b"XPDS", 0, "DPX"),
    (b"\x80\x2a\x5f\xd7", 0, "Cineon"),
    (b"farbfeld", 0, "farbfeld"),
    (b"\x59\xa6\x6a\x95", 0, "Sun raster"),
    (b"IIRO", 0, "Olympus RAW"),
    (b"IIU\x00", 0, "Panasonic RAW"),
    (b"FUJIFILMCCD-RAW", 0, "Fujifilm RAW"),
    (b"GKSM", 0, "GKS metafile"),
)

# ISO-BMFF (ftyp) brands.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_UNSUPPORTED_BRANDS = {
    b"jxl ": "JPEG XL", b"jp2 ": "JPEG 2000", b"jpx ": "JPEG 2000", b"jpm ": "JPEG 2000",
    b"crx ": "Canon RAW (CR3)", b"avci": "AVC image", b"avcs": "AVC image sequence",
    b"vvic": "VVC image", b"j2ki": "JPEG 2000 in HEIF", b"jpeg": "JPEG in HEIF",
}

# For messages only: what common non-images look like.
_NON_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 (Office) document"),
    (b"%!", "a PostScript document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
    (b"#!", "a script"),
    (b"<?php", "a PHP script"),
)

_NETPBM = re.compile(rb"P[1-7F][ \t\r\n]")
_TGA_FOOTER = b"TRUEVISION-XFILE.\x00"
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def sniff(head: bytes) -> str:
    """The MIME type of a supported image, from its magic bytes alone.

    ``head`` should be the whole object when available (TGA is only recognisable by its footer);
    the first few KB are enough for everything else.  Raises ImageRejected("not_an_image") for
    anything that is not an image and ImageRejected("unsupported_format") for images in formats
    outside the allow-list (SVG, PSD, JPEG 2000, ...).
    """
    if not head:
        raise ImageRejected("not_an_image", "the file is empty")
    for magic, offset, mime in _SUPPORTED_MAGIC:
        if head.startswith(magic, offset):
            return mime
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    if head.startswith(b"BM") and _looks_like_bmp(head):
        return "image/bmp"
    if _looks_like_ico(head):
        return "image/x-icon"
    unsupported = _recognise_unsupported(head)
    if unsupported:
        raise ImageRejected("unsupported_format", f"{unsupported} images are not supported")
    raise ImageRejected("not_an_image", f"the file is {_describe_non_image(head)}")


def _sniff_iso_bmff(head: bytes) -> str:
    """HEIF or AVIF by the ftyp box's brands; anything else in an ISO-BMFF box is refused."""
    box_end = min(len(head), max(16, int.from_bytes(head[0:4], "big")))
    major = head[8:12]
    brands = [major] + [head[i : i + 4] for i in range(16, box_end - 3, 4)]
    for brand in brands:  # the major brand first, then the compatible brands in order
        if brand in _AVIF_BRANDS:
            return "image/avif"
        if brand in _HEIC_BRANDS:
            return "image/heic"
    if any(brand in _HEIF_GENERIC_BRANDS for brand in brands):
        return "image/heif"
    for brand in brands:
        if brand in _UNSUPPORTED_BRANDS:
            name = _UNSUPPORTED_BRANDS[brand]
            raise ImageRejected("unsupported_format", f"{name} images are not supported")
    raise ImageRejected("not_an_image", f"the file is an ISO media file (brand {major!r}), not an image")


def _looks_like_bmp(head: bytes) -> bool:
    """'BM' is only two bytes: also require a known DIB header size."""
    return len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES


def _looks_like_ico(head: bytes) -> bool:
    """ICO/CUR: reserved 0, type 1 or 2, and a plausible first directory entry.

    The directory check keeps uncompressed TGA headers (which can begin 00 00 02 00) out.
    """
    if len(head) < 22 or head[0:2] != b"\x00\x00" or head[2:4] not in (b"\x01\x00", b"\x02\x00"):
        return False
    count = int.from_bytes(head[4:6], "little")
    first_size = int.from_bytes(head[14:18], "little")
    first_offset = int.from_bytes(head[18:22], "little")
    return count >= 1 and first_size > 0 and first_offset >= 6 + 16 * count


def _recognise_unsupported(head: bytes) -> str | None:
    """The name of a recognised image format we do not accept, or None."""
    for magic, offset, name in _UNSUPPORTED_MAGIC:
        if head.startswith(magic, offset):
            return name
    text = _leading_text(head)
    if text.startswith("<svg") or (
        text.startswith(("<?xml", "<!doctype svg", "<!--")) and "<svg" in text
    ):
        return "SVG"
    if text.startswith("%!ps-adobe-") and "epsf" in text.split("\n", 1)[0]:
        return "EPS"
    if text.startswith("#define ") and "_width" in text:
        return "XBM"
    if head.startswith(b"FORM") and head[8:12] in (b"ILBM", b"PBM "):
        return "IFF ILBM"
    if _NETPBM.match(head):
        return "Netpbm"
    if _looks_like_pcx(head):
        return "PCX"
    if head.endswith(_TGA_FOOTER) or _looks_like_tga(head):
        return "TGA"
    return None


def _leading_text(head: bytes) -> str:
    """The first 4 KB as lower-case text without a BOM or leading white space (for SVG & co)."""
    text = head[:4096].decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return text.lower()


def _looks_like_pcx(head: bytes) -> bool:
    return (
        len(head) >= 128
        and head[0] == 0x0A
        and head[1] in (0, 2, 3, 4, 5)
        and head[2] in (0, 1)
        and head[3] in (1, 2, 4, 8)
    )


def _looks_like_tga(head: bytes) -> bool:
    """TGA has no magic number: accept only a fully plausible 18-byte header."""
    if len(head) < 19:
        return False
    colour_map_type, image_type, depth = head[1], head[2], head[16]
    width, height = struct.unpack_from("<HH", head, 12)
    return (
        colour_map_type in (0, 1)
        and image_type in (1, 2, 3, 9, 10, 11)
        and depth in (8, 15, 16, 24, 32)
        and width > 0
        and height > 0
    )


def _describe_non_image(head: bytes) -> str:
    for magic, description in _NON_IMAGE_MAGIC:
        if head.startswith(magic):
            return description
    text = _leading_text(head)
    if text.startswith(("<!doctype html", "<html", "<head", "<body", "<script", "<")):
        return "markup (HTML/XML), not an image"
    if text.startswith(("push graphic-context", "viewbox")):
        return "an ImageMagick vector script (MVG), not an image"
    return "not a recognised image format"


# --------------------------------------------------------------------------------------------
# Opening within limits (used by process_image and convert_image)
# --------------------------------------------------------------------------------------------


@dataclass
class _Source:
    """An opened, limit-checked image whose pixels have not been decoded yet."""

    image: Image.Image
    content_type: str
    format: str
    mode: str
    size: tuple[int, int]  # as Pillow reports it before any draft
    displayed_size: tuple[int, int]  # after orientation
    orientation: int  # the EXIF orientation still to apply after decoding (1 = none)
    exif: Image.Exif | None
    frames: int
    animated: bool


@contextmanager
def _open_within_limits(data: bytes, limits: ImagingLimits) -> Iterator[_Source]:
    """Sniff, open with Pillow restricted to that format, and refuse bombs before decoding.

    The one gate every caller goes through.  Raises ImageRejected with not_an_image,
    unsupported_format, corrupt, too_many_pixels or too_many_frames.
    """
    content_type = sniff(data)
    _ensure_setup()
    with _rejecting_decode_errors():
        image = Image.open(io.BytesIO(data), formats=list(_PILLOW_FORMATS_FOR_TYPE[content_type]))
    try:
        if image.format not in SUPPORTED_INPUT_FORMATS:  # defence in depth: plugins can return subclasses
            raise ImageRejected("unsupported_format", f"{image.format} images are not supported")
        _check_frame_pixels(image.size, limits)
        with _rejecting_decode_errors():
            frames = _count_frames(image, data, limits)
        _check_frame_count(frames, image.size, limits)
        exif = _read_exif(image)
        orientation = _orientation(exif)
        if image.format in _ORIENTED_BY_DECODER:
            orientation = 1
        yield _Source(
            image=image,
            content_type=content_type,
            format=image.format,
            mode=image.mode,
            size=image.size,
            displayed_size=_oriented_size(image.size, orientation),
            orientation=orientation,
            exif=exif,
            frames=frames,
            animated=frames > 1 and image.format in _ANIMATED_FORMATS,
        )
    finally:
        image.close()


@contextmanager
def _rejecting_decode_errors() -> Iterator[None]:
    """Turn whatever a hostile file makes the decoders raise into a clean ImageRejected."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning only arrives here as an exception when warnings are turned into errors.
        raise ImageRejected("too_many_pixels", f"the image is too large to decode safely: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise _rejection_for(exc) from exc


def _rejection_for(exc: BaseException) -> ImageRejected:
    message = str(exc)
    if isinstance(exc, ValueError) and "Decompressed data too large" in message:
        # A compressed PNG text chunk that inflates beyond Pillow's cap: a decompression bomb.
        return ImageRejected(
            "too_many_pixels", "a compressed chunk inflates beyond the safe limit (decompression bomb)"
        )
    if isinstance(exc, UnidentifiedImageError):
        return ImageRejected("corrupt", "the file has an image signature but its structure is invalid")
    if isinstance(exc, MemoryError):
        return ImageRejected("corrupt", "the image needs more memory to decode than is allowed")
    reason = message.split(" at 0x")[0][:200] or type(exc).__name__
    return ImageRejected("corrupt", f"the image could not be decoded: {reason}")


def _check_frame_pixels(size: tuple[int, int], limits: ImagingLimits) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageRejected("corrupt", f"the image declares an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"{width}x{height} is {width * height} pixels, more than the limit of {limits.max_pixels}",
        )


def _check_frame_count(frames: int, size: tuple[int, int], limits: ImagingLimits) -> None:
    if frames > limits.max_frames:
        raise ImageRejected("too_many_frames", f"more than {limits.max_frames} frames")
    total = frames * size[0] * size[1]
    if frames > 1 and total > limits.max_animation_pixels:
        raise ImageRejected(
            "too_many_frames",
            f"{frames} frames of {size[0]}x{size[1]} exceed the limit of "
            f"{limits.max_animation_pixels} pixels in total",
        )


def _frame_cap(size: tuple[int, int], limits: ImagingLimits) -> int:
    """Counting further than this is pointless: one more frame already breaks a limit.

    At least 2, so a still image is always told apart from an animation.
    """
    return max(2, min(limits.max_frames, limits.max_animation_pixels // (size[0] * size[1])) + 1)


def _count_frames(image: Image.Image, data: bytes, limits: ImagingLimits) -> int:
    """How many frames the file has, without decoding any and never counting past the limits.

    GIF and TIFF have no frame count in a header (Pillow's n_frames walks the whole file,
    however long), so those are walked here with a cap.  The other formats declare the count.
    """
    cap = _frame_cap(image.size, limits)
    if image.format == "GIF":
        return _count_gif_frames(data, cap, limits)
    if image.format == "TIFF":
        return _count_by_seeking(image, cap)
    return int(getattr(image, "n_frames", 1))


def _count_by_seeking(image: Image.Image, cap: int) -> int:
    """Seek frame by frame (TIFF seeks read the page directory only) up to ``cap``."""
    frames = 1
    try:
        while frames < cap:
            image.seek(frames)
            frames += 1
    except EOFError:
        pass
    image.seek(0)
    return frames


_GIF_BLOCK_START = re.compile(rb"[!,;]")


def _count_gif_frames(data: bytes, cap: int, limits: ImagingLimits) -> int:
    """Count GIF image descriptors by walking the block structure; stop at ``cap``.

    Pillow grows the canvas to fit a frame that overflows it and decodes every frame at the
    canvas size, so the canvas is tracked here too: it must stay within the pixel limit, and
    the canvases of all frames within the animation limit.
    """
    canvas_width, canvas_height = struct.unpack_from("<HH", data, 6)
    position = 13
    flags = data[10]
    if flags & 0x80:  # global colour table
        position += 3 << ((flags & 7) + 1)
    frames = total_pixels = 0
    while position < len(data) and frames < cap:
        block = data[position]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            position = _skip_gif_sub_blocks(data, position + 2)
        elif block == 0x2C:  # image descriptor
            if position + 10 > len(data):  # truncated: count what is there
                break
            left, top, width, height = struct.unpack_from("<HHHH", data, position + 1)
            canvas_width, canvas_height = max(canvas_width, left + width), max(canvas_height, top + height)
            _check_frame_pixels((canvas_width, canvas_height), limits)
            frames += 1
            total_pixels += canvas_width * canvas_height
            if frames > 1 and total_pixels > limits.max_animation_pixels:
                raise ImageRejected(
                    "too_many_frames", f"the GIF's frames exceed {limits.max_animation_pixels} pixels in total"
                )
            packed = data[position + 9]
            position += 10
            if packed & 0x80:  # local colour table
                position += 3 << ((packed & 7) + 1)
            position = _skip_gif_sub_blocks(data, position + 1)  # +1: LZW minimum code size
        else:  # stray byte: Pillow skips those too; jump to the next plausible block start
            found = _GIF_BLOCK_START.search(data, position + 1)
            if not found:
                break
            position = found.start()
    return max(frames, 1)


def _skip_gif_sub_blocks(data: bytes, position: int) -> int:
    while position < len(data):
        length = data[position]
        position += 1 + length
        if length == 0:
            break
    return position


# --------------------------------------------------------------------------------------------
# Metadata: EXIF, GPS, orientation
# --------------------------------------------------------------------------------------------

# Tags that are file structure, binary blobs or pointers rather than facts about the photo.
_EXIF_SKIP = frozenset({
    "ExifOffset", "GPSInfo", "ExifInteroperabilityOffset", "MakerNote", "PrintImageMatching",
    "XMLPacket", "InterColorProfile", "IPTCNAA", "ImageResources", "StripOffsets",
    "StripByteCounts", "TileOffsets", "TileByteCounts", "JPEGInterchangeFormat",
    "JPEGInterchangeFormatLength", "SubIFDs",
})
_EXIF_MAX_JSON = 1024  # characters of JSON per value
_USER_COMMENT_CHARSETS = {b"ASCII\x00\x00\x00": "ascii", b"UNICODE\x00": "utf-16", b"\x00" * 8: "ascii"}

_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _read_exif(image: Image.Image) -> Image.Exif | None:
    try:
        return image.getexif()
    except _METADATA_ERRORS:
        return None


def _orientation(exif: Image.Exif | None) -> int:
    """EXIF (or XMP, which Pillow folds in) orientation 1-8; anything invalid counts as 1."""
    if exif is None:
        return 1
    try:
        value = exif.get(ExifTags.Base.Orientation)
    except _METADATA_ERRORS:
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_TRANSPOSE else 1


def _oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _exif_to_json(exif: Image.Exif | None) -> dict[str, Any]:
    """IFD0 and Exif sub-IFD tags by Pillow's names, as JSON-native values (GPS left out)."""
    if exif is None:
        return {}
    result: dict[str, Any] = {}
    for ifd in (exif, _sub_ifd(exif, ExifTags.IFD.Exif)):
        try:
            items = list(ifd.items())
        except _METADATA_ERRORS:
            continue
        for tag, raw in items:
            name = ExifTags.TAGS.get(tag)
            if name is None or name in _EXIF_SKIP or name in result:
                continue
            decode = _TEXT_DECODERS.get(name, _json_value)
            value = decode(raw)
            if value is not None and len(json.dumps(value)) <= _EXIF_MAX_JSON:
                result[name] = value
    return result


def _sub_ifd(exif: Image.Exif, ifd: int) -> dict:
    try:
        return exif.get_ifd(ifd)
    except _METADATA_ERRORS:
        return {}


def _json_value(value: Any) -> Any:
    """A JSON-native form of one EXIF value, or None to leave it out."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, (float, numbers.Rational)):  # Pillow's IFDRational is a numbers.Rational
        return _number(value)
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, bytes):
        return _printable_bytes(value)
    if isinstance(value, (tuple, list)):
        items = [_json_value(item) for item in value]
        return None if not items or any(item is None for item in items) else items
    return None


def _number(value: Any) -> int | float | None:
    try:
        number = float(value)
    except (ZeroDivisionError, ValueError, TypeError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _clean_text(text: str) -> str | None:
    """Cut at the first NUL (C strings), drop padding and control characters."""
    text = text.split("\x00", 1)[0]
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text or None


def _printable_bytes(raw: bytes) -> str | None:
    """Bytes that are plain ASCII text up to the first NUL, as text; None for binary data."""
    body = raw.split(b"\x00", 1)[0]
    if body and all(32 <= byte < 127 or byte in (9, 10, 13) for byte in body):
        return _clean_text(body.decode("ascii"))
    return None


def _user_comment(raw: Any) -> str | None:
    """UserComment is 8 bytes of charset then text; keep it only when it is readable text."""
    if isinstance(raw, str):
        return _clean_text(raw)
    if not isinstance(raw, bytes) or len(raw) <= 8:
        return None
    charset = _USER_COMMENT_CHARSETS.get(raw[:8])
    if charset is None:
        return None
    try:
        return _clean_text(raw[8:].decode(charset))
    except UnicodeError:
        return None


def _windows_text(raw: Any) -> str | None:
    """The XP* tags (Windows Explorer's title, comment, ...) hold UTF-16LE text in a byte array."""
    if isinstance(raw, tuple) and all(isinstance(v, int) and 0 <= v < 256 for v in raw):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        return _json_value(raw)
    try:
        return _clean_text(raw.decode("utf-16-le"))
    except UnicodeError:
        return None


_TEXT_DECODERS = {
    "UserComment": _user_comment,
    **{name: _windows_text for name in ("XPTitle", "XPComment", "XPAuthor", "XPKeywords", "XPSubject")},
}


def _gps(exif: Image.Exif | None) -> dict | None:
    """Signed decimal degrees (south and west negative) and metres (below sea level negative)."""
    if exif is None:
        return None
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        tag = ExifTags.GPS
        latitude = _signed_degrees(gps.get(tag.GPSLatitude), gps.get(tag.GPSLatitudeRef), "S", 90)
        longitude = _signed_degrees(gps.get(tag.GPSLongitude), gps.get(tag.GPSLongitudeRef), "W", 180)
        if latitude is None or longitude is None:
            return None
        altitude = _altitude(gps.get(tag.GPSAltitude), gps.get(tag.GPSAltitudeRef))
    except _METADATA_ERRORS:
        return None
    return {"latitude": latitude, "longitude": longitude, "altitude": altitude}


def _signed_degrees(value: Any, ref: Any, negative_ref: str, bound: float) -> float | None:
    if value is None:
        return None
    parts = list(value) if isinstance(value, (tuple, list)) else [value]
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    degrees = sum(number / 60**i for i, number in enumerate(numbers))
    if _text_ref(ref) == negative_ref:
        degrees = -abs(degrees)
    if not math.isfinite(degrees) or abs(degrees) > bound:
        return None
    return round(degrees, 7)


def _altitude(value: Any, ref: Any) -> float | None:
    metres = _number(value) if value is not None else None
    if metres is None:
        return None
    below_sea_level = ref in (1, b"\x01", "1") or _text_ref(ref) == "1"
    return round(-abs(metres) if below_sea_level else float(metres), 2)


def _text_ref(ref: Any) -> str:
    if isinstance(ref, bytes):
        ref = ref.decode("latin-1")
    return ref.strip("\x00 ").upper() if isinstance(ref, str) else ""


# --------------------------------------------------------------------------------------------
# Pixels: decode at scale, sRGB, orientation, resize
# --------------------------------------------------------------------------------------------


def _decode_scaled(image: Image.Image, needed: tuple[int, int] | None) -> Image.Image:
    """Decode the current frame, as small as possible while still covering ``needed``.

    ``needed`` is the smallest size (in stored, not displayed, orientation) the caller will
    resample from; None means full size.  JPEG decodes straight to 1/2, 1/4 or 1/8 scale
    (DCT scaling, never below ``needed``); other formats decode fully and are shrunk at once by
    an integer box filter, keeping _REDUCING_GAP times ``needed`` so the final resample stays sharp.
    """
    full_width, full_height = image.size
    if needed and image.format in ("JPEG", "MPO") and needed[0] < full_width and needed[1] < full_height:
        image.draft(None, (max(1, needed[0]), max(1, needed[1])))
    image.load()
    if not needed:
        return image
    factor = int(min(image.width / (needed[0] * _REDUCING_GAP), image.height / (needed[1] * _REDUCING_GAP)))
    if factor >= 2 and image.mode in ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"):
        return image.reduce(factor)
    return image


_Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def _needed_size(displayed: tuple[int, int], target: tuple[int, int], region: _Box) -> tuple[int, int]:
    """The full-image size (displayed orientation) at which ``region`` maps onto ``target`` 1:1.

    ``region`` is the part of the image that ends up in the output, as fractions (x0, y0, x1, y1).
    """
    region_width = (region[2] - region[0]) or 1.0
    region_height = (region[3] - region[1]) or 1.0
    return (
        min(displayed[0], math.ceil(target[0] / region_width)),
        min(displayed[1], math.ceil(target[1] / region_height)),
    )


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
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
        return ImageCms.profileToProfile(image, source, _srgb_profile, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, KeyError):
        return None


def _apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    method = _ORIENTATION_TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def _upright_srgb(source: _Source, needed: tuple[int, int] | None) -> Image.Image:
    """Decode the current frame of ``source`` at scale, as upright sRGB RGB(A)."""
    stored_needed = _oriented_size(needed, source.orientation) if needed else None
    with _rejecting_decode_errors():
        decoded = _decode_scaled(source.image, stored_needed)
        icc = source.image.info.get("icc_profile")
        return _apply_orientation(_to_srgb(decoded, icc), source.orientation)


def _resize(image: Image.Image, size: tuple[int, int], box: _Box | None = None,
            resample: Image.Resampling = _RESAMPLE) -> Image.Image:
    """Resample to exactly ``size`` (after an integer pre-shrink when far larger)."""
    if image.size == size and box is None:
        return image
    return image.resize(size, resample, box=box, reducing_gap=_REDUCING_GAP)


def _fit_long_edge(size: tuple[int, int], long_edge: int) -> tuple[int, int]:
    """``size`` scaled so its long side is ``long_edge`` at most (never enlarged)."""
    width, height = size
    scale = min(1.0, long_edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _drop_opaque_alpha(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        return image.convert("RGB")
    return image


def _flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGB, with any transparency composited onto ``background``."""
    if image.mode != "RGBA":
        return image.convert("RGB") if image.mode != "RGB" else image
    flat = Image.new("RGB", image.size, background)
    flat.paste(image, mask=image.getchannel("A"))
    return flat


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

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
    image = _drop_opaque_alpha(image)
    if fmt in ("jpeg", "bmp"):
        image = _flatten(image)
    image.info = {}  # nothing from the input may reach the output (EXIF, XMP, ICC, comments)
    return image


def _save_options(fmt: str, quality: int | None) -> dict[str, Any]:
    """Encoder options.  Metadata is never passed, and ``info`` is emptied by _prepare_for."""
    q = quality if quality is not None else _DEFAULT_QUALITY
    if fmt == "jpeg":
        return {"quality": q}
    if fmt == "webp":
        return {"quality": q, "method": _WEBP_METHOD}
    if fmt == "avif":
        return {"quality": q}
    if fmt == "png":
        return {"compress_level": 6}
    if fmt == "tiff":
        return {"compression": "tiff_deflate"}
    return {}


def _encode(image: Image.Image, fmt: str, quality: int | None) -> EncodedImage:
    pillow_format, content_type, extension = _OUTPUTS[fmt]
    prepared = _prepare_for(fmt, image)
    buffer = io.BytesIO()
    with _rejecting_encode_errors(fmt):
        prepared.save(buffer, pillow_format, **_save_options(fmt, quality))
    return EncodedImage(buffer.getvalue(), fmt, content_type, extension, prepared.width, prepared.height)


def _encode_animation(
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


# --------------------------------------------------------------------------------------------
# Blurhash (https://blurha.sh), 4x3 components
# --------------------------------------------------------------------------------------------

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _srgb_to_linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    return int(v * 12.92 * 255 + 0.5) if v <= 0.0031308 else int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _blurhash(image: Image.Image, x_components: int = 4, y_components: int = 3) -> str:
    """Encode a blurhash from a small copy of ``image`` (transparency shown on white)."""
    small = _flatten(_resize(image, _fit_long_edge(image.size, _BLURHASH_EDGE)))
    width, height = small.size
    pixels = small.tobytes()
    linear = [_srgb_to_linear(v) for v in range(256)]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    factors = []
    for j in range(y_components):
        for i in range(x_components):
            r = g = b = 0.0
            for y in range(height):
                row = y * width * 3
                cy = cos_y[j][y]
                for x in range(width):
                    basis = cos_x[i][x] * cy
                    offset = row + 3 * x
                    r += basis * linear[pixels[offset]]
                    g += basis * linear[pixels[offset + 1]]
                    b += basis * linear[pixels[offset + 2]]
            scale = (1 if i == j == 0 else 2) / (width * height)
            factors.append((r * scale, g * scale, b * scale))

    dc, ac = factors[0], factors[1:]
    result = _base83((x_components - 1) + (y_components - 1) * 9, 1)
    max_ac = max((abs(c) for factor in ac for c in factor), default=0.0)
    quantised_max = max(0, min(82, math.floor(max_ac * 166 - 0.5)))
    ac_scale = (quantised_max + 1) / 166
    result += _base83(quantised_max, 1)
    red, green, blue = (_linear_to_srgb(c) for c in dc)
    result += _base83((red << 16) + (green << 8) + blue, 4)
    for factor in ac:
        quantised = [
            max(0, min(18, math.floor(math.copysign(abs(c / ac_scale) ** 0.5, c) * 9 + 9.5))) for c in factor
        ]
        result += _base83(quantised[0] * 19 * 19 + quantised[1] * 19 + quantised[2], 2)
    return result


# --------------------------------------------------------------------------------------------
# process_image
# --------------------------------------------------------------------------------------------

_WHOLE = (0.0, 0.0, 1.0, 1.0)


def process_image(
    data: bytes, derivatives: Sequence[DerivativeSpec], limits: ImagingLimits = ImagingLimits()
) -> ProcessedImage:
    """Validate an upload, read its metadata and make its WebP derivatives in one decode.

    Animated inputs get derivatives of their first frame.  Raises ImageRejected.
    """
    specs = sorted(derivatives, key=lambda spec: spec.long_edge, reverse=True)
    with _open_within_limits(data, limits) as source:
        displayed = source.displayed_size
        largest = specs[0].long_edge if specs else _BLURHASH_EDGE
        needed = _needed_size(displayed, _fit_long_edge(displayed, largest), _WHOLE)
        exif, gps = _exif_to_json(source.exif), _gps(source.exif)  # before decoding changes tags
        current = _upright_srgb(source, needed)

        # Largest first, each one resampled from the previous (cascade). Pillow releases the GIL
        # while encoding, so each WebP encode runs beside the next resize on another core.
        pending: dict[str, Future[EncodedImage]] = {}
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="encode") as encoders:
            for spec in specs:
                current = _resize(current, _fit_long_edge(displayed, spec.long_edge), resample=_DERIVATIVE_RESAMPLE)
                pending[spec.name] = encoders.submit(_encode, current, "webp", spec.quality)
            blurhash = _blurhash(current)
            encoded = {name: future.result() for name, future in pending.items()}

        info = ImageInfo(
            format=source.format,
            content_type=source.content_type,
            width=displayed[0],
            height=displayed[1],
            mode=source.mode,
            frames=source.frames,
            animated=source.animated,
            exif=exif,
            gps=gps,
            blurhash=blurhash,
        )
    return ProcessedImage(info=info, derivatives={spec.name: encoded[spec.name] for spec in derivatives})


# --------------------------------------------------------------------------------------------
# convert_image
# --------------------------------------------------------------------------------------------


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
    with _open_within_limits(data, limits) as source:
        target, region = _plan_output(source.displayed_size, width, height, fit, limits)
        if source.animated and fmt in _ANIMATED_OUTPUTS:
            _check_animation_output(source.frames, target, limits)
            return _convert_animation(source, fmt, target, region, quality)
        needed = _needed_size(source.displayed_size, target, region)
        upright = _upright_srgb(source, needed)
        return _encode(_resize(upright, target, _box_in(upright, region)), fmt, quality)


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
) -> tuple[tuple[int, int], _Box]:
    """The output size and the part of the (upright) source that goes into it, as fractions."""
    source_width, source_height = size
    region = _WHOLE
    if width is None and height is None:
        target = _fit_long_edge(size, limits.convert_max_edge)  # original size, within the limit
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


def _box_in(image: Image.Image, region: _Box) -> _Box | None:
    """``region`` (fractions) in pixel coordinates of ``image``; None for the whole image.

    Fractions, because the decoded image may be a DCT-scaled or reduced copy of the original.
    """
    if region == _WHOLE:
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
    source: _Source, fmt: str, target: tuple[int, int], region: _Box, quality: int | None
) -> EncodedImage:
    """Every frame decoded (Pillow composites them onto the canvas), resized and re-encoded."""
    image = source.image
    loop = image.info.get("loop")  # absent: play once (GIF without a NETSCAPE block)
    frames: list[Image.Image] = []
    durations: list[int] = []
    with _rejecting_decode_errors():
        for index in range(source.frames):
            image.seek(index)
            upright = _upright_srgb(source, None)
            durations.append(int(image.info.get("duration") or 100))  # known only once decoded (WebP)
            frames.append(_resize(upright, target, _box_in(upright, region)))
    return _encode_animation(frames, durations, loop, fmt, quality)
