"""Test fixtures made on the fly with Pillow: every function returns the bytes of one file.

Used by unit, integration and e2e tests alike, so no test ever needs a binary checked in.

The drawn pattern makes orientation testable: in the *displayed* image the top-left quadrant is
red, the top-right quadrant green, and the bottom half blue (``RED``, ``GREEN``, ``BLUE``).
For ``jpeg_bytes(w, h, orientation=N)`` the file's stored pixels are ``w`` x ``h`` and carry
EXIF Orientation N; for N in 5-8 the image therefore *displays* as ``h`` x ``w``.
"""

from __future__ import annotations

import io
import math
import struct
import unittest
import zipfile
import zlib
from typing import Iterable

from PIL import ExifTags, Image, ImageDraw, TiffImagePlugin

RED = (220, 30, 30)
GREEN = (30, 200, 60)
BLUE = (40, 80, 200)

CAMERA = {
    "Make": "Testcam",
    "Model": "TC-1 Mark II",
    "LensModel": "TC 24-70mm f/2.8",
    "DateTimeOriginal": "2024:05:17 10:30:00",
    "ExposureTime": 1 / 250,
    "FNumber": 2.8,
    "ISOSpeedRatings": 200,
    "FocalLength": 50,
}

# The inverse of what a viewer does for each EXIF orientation: applied to the displayed image
# it gives the pixels to store.  (Viewers apply: 6 -> ROTATE_270, 8 -> ROTATE_90; the rest are
# their own inverse.)
_STORE_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# ---------------------------------------------------------------------------------------------
# Pixels and metadata
# ---------------------------------------------------------------------------------------------


def pattern(width: int, height: int, *, color: tuple[int, int, int] = BLUE) -> Image.Image:
    """RGB image: red top-left quadrant, green top-right quadrant, ``color`` bottom half."""
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    half_w, half_h = max(1, width // 2), max(1, height // 2)
    draw.rectangle((0, 0, half_w - 1, half_h - 1), fill=RED)
    if width > 1:
        draw.rectangle((half_w, 0, width - 1, half_h - 1), fill=GREEN)
    return image


def stored_pattern(width: int, height: int, orientation: int | None, *, color=BLUE) -> Image.Image:
    """Pixels of size ``width`` x ``height`` that display as ``pattern`` under ``orientation``."""
    transpose = _STORE_TRANSPOSE.get(orientation or 1)
    if transpose is None:
        return pattern(width, height, color=color)
    displayed = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return pattern(*displayed, color=color).transpose(transpose)


def make_exif(
    *,
    orientation: int | None = None,
    camera: bool = True,
    gps: tuple[float, float, float | None] | None = None,
) -> Image.Exif:
    """An Exif block with the CAMERA values (IFD0 + Exif IFD), orientation and GPS as asked."""
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if camera:
        exif[ExifTags.Base.Make] = CAMERA["Make"]
        exif[ExifTags.Base.Model] = CAMERA["Model"]
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        sub[ExifTags.Base.LensModel] = CAMERA["LensModel"]
        sub[ExifTags.Base.DateTimeOriginal] = CAMERA["DateTimeOriginal"]
        sub[ExifTags.Base.ExposureTime] = TiffImagePlugin.IFDRational(1, 250)
        sub[ExifTags.Base.FNumber] = TiffImagePlugin.IFDRational(28, 10)
        sub[ExifTags.Base.ISOSpeedRatings] = CAMERA["ISOSpeedRatings"]
        sub[ExifTags.Base.FocalLength] = TiffImagePlugin.IFDRational(50, 1)
    if gps is not None:
        latitude, longitude, altitude = gps
        info = exif.get_ifd(ExifTags.IFD.GPSInfo)
        info[ExifTags.GPS.GPSLatitudeRef] = "S" if latitude < 0 else "N"
        info[ExifTags.GPS.GPSLatitude] = _dms(latitude)
        info[ExifTags.GPS.GPSLongitudeRef] = "W" if longitude < 0 else "E"
        info[ExifTags.GPS.GPSLongitude] = _dms(longitude)
        if altitude is not None:
            info[ExifTags.GPS.GPSAltitudeRef] = b"\x01" if altitude < 0 else b"\x00"
            info[ExifTags.GPS.GPSAltitude] = TiffImagePlugin.IFDRational(round(abs(altitude) * 100), 100)
    return exif


def _dms(degrees: float) -> tuple:
    value = abs(degrees)
    whole = int(value)
    minutes_float = (value - whole) * 60
    minutes = int(minutes_float)
    seconds = round((minutes_float - minutes) * 60 * 10000)
    return (
        TiffImagePlugin.IFDRational(whole, 1),
        TiffImagePlugin.IFDRational(minutes, 1),
        TiffImagePlugin.IFDRational(seconds, 10000),
    )


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Supported formats
# ---------------------------------------------------------------------------------------------


def jpeg_bytes(
    width: int = 640,
    height: int = 480,
    *,
    orientation: int | None = None,
    exif: bool = True,
    gps: tuple[float, float, float | None] | None = None,
    quality: int = 90,
    color: tuple[int, int, int] = BLUE,
    icc_profile: bytes | None = None,
    progressive: bool = False,
    xmp: bytes | None = None,
    comment: bytes | None = None,
) -> bytes:
    """A baseline JPEG of ``width`` x ``height`` stored pixels (see the module doc for orientation)."""
    image = stored_pattern(width, height, orientation, color=color)
    block = make_exif(orientation=orientation, camera=exif, gps=gps)
    options = {"quality": quality, "progressive": progressive}
    if len(block):
        options["exif"] = block.tobytes()
    if icc_profile:
        options["icc_profile"] = icc_profile
    if xmp:
        options["xmp"] = xmp
    if comment:
        options["comment"] = comment
    return _save(image, "JPEG", **options)


def cmyk_jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    return _save(pattern(width, height).convert("CMYK"), "JPEG", quality=90)


def grayscale_jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    return _save(pattern(width, height).convert("L"), "JPEG", quality=90)


def png_bytes(
    width: int = 64,
    height: int = 48,
    mode: str = "RGB",
    *,
    transparent: bool = False,
    exif: Image.Exif | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    """A PNG of the pattern in ``mode`` (RGB, RGBA, L, LA, 1, P).

    RGBA/LA get a fully transparent bottom-right quadrant.  ``transparent=True`` with mode P
    marks the bottom half's colour transparent through tRNS.
    """
    base = pattern(width, height)
    options: dict = {}
    if mode in ("RGBA", "LA"):
        alpha = Image.new("L", (width, height), 255)
        ImageDraw.Draw(alpha).rectangle((width // 2, height // 2, width, height), fill=0)
        image = base.convert(mode[:-1])
        image.putalpha(alpha)
    elif mode == "P":
        image = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        if transparent:
            options["transparency"] = image.getpixel((0, height - 1))
    else:
        image = base.convert(mode)
    if exif is not None:
        options["exif"] = exif.tobytes()
    if text:
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        options["pnginfo"] = info
    return _save(image, "PNG", **options)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_from_rows(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes, row_bytes: int) -> bytes:
    rows = b"".join(b"\x00" + raw[y * row_bytes : (y + 1) * row_bytes] for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def png16_bytes(width: int = 64, height: int = 48, *, color: bool = True) -> bytes:
    """A 16-bit-per-channel PNG (RGB, or grayscale with ``color=False``), built by hand.

    Each 8-bit value v of the pattern becomes the 16-bit value v * 257, so the right 8-bit
    reduction gives the pattern back exactly (and a clipping one gives white).
    """
    image = pattern(width, height) if color else pattern(width, height).convert("L")
    raw8 = image.tobytes()
    raw16 = bytearray(2 * len(raw8))
    raw16[0::2] = raw8
    raw16[1::2] = raw8
    channels = 3 if color else 1
    return _png_from_rows(width, height, 16, 2 if color else 0, bytes(raw16), width * channels * 2)


def gif_bytes(width: int = 64, height: int = 48) -> bytes:
    return _save(pattern(width, height).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "GIF")


_FRAME_COLOURS = [RED, GREEN, BLUE, (240, 200, 40), (150, 60, 200), (20, 20, 20)]


def _frames(frames: int, width: int, height: int) -> list[Image.Image]:
    result = []
    for index in range(frames):
        frame = Image.new("RGB", (width, height), _FRAME_COLOURS[index % len(_FRAME_COLOURS)])
        ImageDraw.Draw(frame).rectangle((0, 0, width // 4, height // 4), fill=(255, 255, 255))
        result.append(frame)
    return result


def animated_gif_bytes(
    frames: int = 3, width: int = 64, height: int = 48, *, duration: int = 120, loop: int | None = 0
) -> bytes:
    """Frames of different colours (red, green, blue, ...) with a white top-left corner block.

    ``loop=None`` leaves out the NETSCAPE block: the animation plays once.
    """
    images = _frames(frames, width, height)
    options = {"loop": loop} if loop is not None else {}
    return _save(images[0], "GIF", save_all=True, append_images=images[1:], duration=duration, **options)


def animated_webp_bytes(frames: int = 3, width: int = 64, height: int = 48, *, duration: int = 120) -> bytes:
    images = _frames(frames, width, height)
    return _save(images[0], "WEBP", save_all=True, append_images=images[1:], duration=duration, loop=0, quality=80)


def animated_png_bytes(frames: int = 3, width: int = 64, height: int = 48, *, duration: int = 120) -> bytes:
    images = _frames(frames, width, height)
    return _save(images[0], "PNG", save_all=True, append_images=images[1:], duration=duration, loop=0)


def webp_bytes(
    width: int = 64, height: int = 48, *, alpha: bool = False, orientation: int | None = None, lossless: bool = False
) -> bytes:
    image = stored_pattern(width, height, orientation)
    if alpha:
        image.putalpha(128)
    options: dict = {"quality": 85, "lossless": lossless}
    if orientation is not None:
        options["exif"] = make_exif(orientation=orientation, camera=False).tobytes()
    return _save(image, "WEBP", **options)


def tiff_bytes(width: int = 64, height: int = 48, *, mode: str = "RGB", compression: str | None = "tiff_lzw", pages: int = 1) -> bytes:
    images = [pattern(width, height).convert(mode) for _ in range(pages)]
    options: dict = {"compression": compression} if compression else {}
    if pages > 1:
        options.update(save_all=True, append_images=images[1:])
    return _save(images[0], "TIFF", **options)


def bmp_bytes(width: int = 64, height: int = 48) -> bytes:
    return _save(pattern(width, height), "BMP")


def ico_bytes(size: int = 48) -> bytes:
    return _save(pattern(size, size).convert("RGBA"), "ICO", sizes=[(size, size)])


def can_encode_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    return bool(pillow_heif.libheif_info().get("HEIF"))


def heic_bytes(width: int = 64, height: int = 48, *, gps: tuple[float, float, float | None] | None = None) -> bytes:
    """A HEIC made by pillow_heif; raises unittest.SkipTest (a pytest skip) if it cannot encode."""
    if not can_encode_heif():
        raise unittest.SkipTest("pillow_heif cannot encode HEIF here")
    import pillow_heif

    heif = pillow_heif.from_pillow(pattern(width, height))
    buffer = io.BytesIO()
    options: dict = {"quality": 80}
    if gps is not None:
        options["exif"] = make_exif(gps=gps).tobytes()
    heif.save(buffer, **options)
    return buffer.getvalue()


def avif_bytes(width: int = 64, height: int = 48, *, orientation: int | None = None, alpha: bool = False) -> bytes:
    """An AVIF from Pillow's own encoder (orientation becomes irot/imir boxes)."""
    from PIL import features

    if not features.check("avif"):
        raise unittest.SkipTest("Pillow has no AVIF support here")
    image = stored_pattern(width, height, orientation)
    if alpha:
        image.putalpha(128)
    options: dict = {"quality": 80}
    if orientation is not None:
        options["exif"] = make_exif(orientation=orientation, camera=False).tobytes()
    return _save(image, "AVIF", **options)


def large_jpeg_bytes(megapixels: float = 12, *, exif: bool = True, quality: int = 90) -> bytes:
    """A photo-like 4:3 JPEG of about ``megapixels`` (12 -> 4000x3000), made in C, not per pixel."""
    width = int(round(math.sqrt(megapixels * 1_000_000 * 4 / 3) / 8)) * 8
    height = int(round(width * 3 / 4 / 8)) * 8
    return _save(photo_like(width, height), "JPEG", quality=quality, **({"exif": make_exif().tobytes()} if exif else {}))


def photo_like(width: int, height: int) -> Image.Image:
    """Smooth colour blobs plus fine grain: compresses and decodes roughly like a photo."""
    small = (max(2, width // 64), max(2, height // 64))
    channels = [Image.effect_noise(small, 90).resize((width, height), Image.Resampling.BICUBIC) for _ in range(3)]
    blobs = Image.merge("RGB", channels)
    grain = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(blobs, grain, 0.15)


# ---------------------------------------------------------------------------------------------
# Broken and hostile inputs
# ---------------------------------------------------------------------------------------------


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def png_header_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A ~100-byte PNG whose IHDR declares ``width`` x ``height`` RGB pixels."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def gif_frame_bomb(frames: int = 5000, width: int = 1, height: int = 1) -> bytes:
    """A GIF with ``frames`` 1x1 frames on a ``width`` x ``height`` canvas, built by hand (tiny)."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (
        b"!\xf9\x04\x00\x02\x00\x00\x00"  # graphic control: 20 ms
        + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00"  # 1x1 at 0,0, no local colour table
        + b"\x02\x02D\x01\x00"  # LZW: min code size 2, one sub-block (clear, 0, end), terminator
    )
    return header + loop + frame * frames + b";"


def html_as_jpg_bytes() -> bytes:
    return b"<!DOCTYPE html>\n<html><body><script>alert(document.cookie)</script></body></html>\n"


def svg_bytes(*, xml_declaration: bool = True) -> bytes:
    body = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<script>alert(1)</script><rect width="10" height="10" fill="red"/></svg>'
    )
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + body) if xml_declaration else body


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
        b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
    )


def zip_bytes(files: Iterable[tuple[str, bytes]] = (("image.jpg", b"not really"),)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files:
            archive.writestr(name, content)
    return buffer.getvalue()


PHP_PAYLOAD = b"<?php system($_GET['cmd']); ?>"


def polyglot_jpeg_with_php() -> bytes:
    """A valid JPEG carrying a PHP payload in a COM segment and again after the EOI marker."""
    return _save(pattern(64, 48), "JPEG", quality=90, comment=PHP_PAYLOAD) + PHP_PAYLOAD


def apng_frame_count_bomb(frames: int = 1_000_000) -> bytes:
    """A small PNG whose acTL chunk declares ``frames`` animation frames."""
    plain = png_bytes(8, 8)
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    actl = _png_chunk(b"acTL", struct.pack(">II", frames, 0))
    return plain[:ihdr_end] + actl + plain[ihdr_end:]


def exif_broken_jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    """A valid JPEG whose APP1 Exif segment is garbage after the header."""
    junk = b"Exif\x00\x00" + b"\xff\xff\xff\xff\x00\x00\x00\x08" + b"\x13\x37" * 40
    return _save(pattern(width, height), "JPEG", quality=90, exif=junk)


def iso_bmff_header(major: bytes, *compatible: bytes) -> bytes:
    """The first bytes of an ISO-BMFF file: an ftyp box with these brands (for sniffing tests)."""
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


# --- reading results back ---------------------------------------------------------------------


def opened(data: bytes) -> Image.Image:
    """Decode encoded output fully (so a broken file fails here, not later)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def close_to(pixel, colour, tolerance: int = 40) -> bool:
    """The pixel's RGB is within ``tolerance`` of ``colour`` in every channel (lossy codecs)."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour))
