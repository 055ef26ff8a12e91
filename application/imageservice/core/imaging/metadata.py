"""EXIF, GPS and orientation, read from an opened image without decoding its pixels.

Reading metadata never rejects an image on its own: a damaged tag leaves its field out.
"""

from __future__ import annotations

import json
import math
import numbers
import struct
from typing import Any

from PIL import ExifTags, Image

# Reading metadata must never reject an image: these are swallowed and the field left out.
_METADATA_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError,
    ZeroDivisionError, OverflowError, UnicodeError, UserWarning,
)

# Tags that are file structure, binary blobs or pointers rather than facts about the photo.
_EXIF_SKIP = frozenset({
    "ExifOffset", "GPSInfo", "ExifInteroperabilityOffset", "MakerNote", "PrintImageMatching",
    "XMLPacket", "InterColorProfile", "IPTCNAA", "ImageResources", "StripOffsets",
    "StripByteCounts", "TileOffsets", "TileByteCounts", "JPEGInterchangeFormat",
    "JPEGInterchangeFormatLength", "SubIFDs",
})
_EXIF_MAX_JSON = 1024  # characters of JSON per value
_USER_COMMENT_CHARSETS = {b"ASCII\x00\x00\x00": "ascii", b"UNICODE\x00": "utf-16", b"\x00" * 8: "ascii"}

ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def read_exif(image: Image.Image) -> Image.Exif | None:
    try:
        return image.getexif()
    except _METADATA_ERRORS:
        return None


def orientation_of(exif: Image.Exif | None) -> int:
    """EXIF (or XMP, which Pillow folds in) orientation 1-8; anything invalid counts as 1."""
    if exif is None:
        return 1
    try:
        value = exif.get(ExifTags.Base.Orientation)
    except _METADATA_ERRORS:
        return 1
    return value if isinstance(value, int) and value in ORIENTATION_TRANSPOSE else 1


def oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def exif_to_json(exif: Image.Exif | None) -> dict[str, Any]:
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
        # One level: the API documents an EXIF value as a scalar or a list of scalars.
        items = [None if isinstance(item, (tuple, list)) else _json_value(item) for item in value]
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


def gps_position(exif: Image.Exif | None) -> dict | None:
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
