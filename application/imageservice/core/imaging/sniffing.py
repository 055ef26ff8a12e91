"""Naming an upload's type from its magic bytes alone: pure bytes, no Pillow.

Never trusts a declared type or an extension.  Refuses anything outside the allow-list with
ImageRejected ``not_an_image`` or ``unsupported_format``.
"""

from __future__ import annotations

import re
import struct

from ..errors import ImageRejected

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


def webp_canvas_size(head: bytes) -> tuple[int, int] | None:
    """The canvas a WebP file declares in its first chunk (VP8X, VP8L or VP8), or None.

    Pillow's WebP plugin decodes as it opens, so a bomb meets libwebp before any size check
    unless the size is read here first.
    """
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", head, 21)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", head, 26)
        return width & 0x3FFF, height & 0x3FFF
    return None


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
