"""User-supplied filenames: cleaned for display and downloads, never used in storage keys."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from .formats import FILE_EXTENSIONS
from .text import strip_invisible

MAX_FILENAME = 200
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
EXTENSIONS = FILE_EXTENSIONS  # a type to the extension its files are named with (core/formats.py)


def sanitize_filename(name: str | None) -> str:
    """The last path segment, NFC-normalised, without control or bidi-format characters
    (core.text.strip_invisible), quotes or slashes."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = strip_invisible(text).replace('"', "'").strip(" .")
    if len(text) > MAX_FILENAME:
        stem, dot, ext = text.rpartition(".")
        text = (stem[: MAX_FILENAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else text[:MAX_FILENAME]
    return text or "image"


def stem(filename: str) -> str:
    base = sanitize_filename(filename)
    return base.rsplit(".", 1)[0] if "." in base else base


def with_extension(filename: str, ext: str, suffix: str = "") -> str:
    return f"{stem(filename)}{suffix}.{ext}"


def download_name(filename: str, content_type: str | None) -> str:
    """The name an original is downloaded under: the extension of the detected type, whatever
    the uploader called it (``invoice.pdf.exe`` holding a PNG downloads as ``invoice.pdf.png``)."""
    ext = EXTENSIONS.get(content_type or "")
    return with_extension(filename, ext) if ext else sanitize_filename(filename)


def content_disposition(filename: str, attachment: bool) -> str:
    """A Content-Disposition value with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    kind = "attachment" if attachment else "inline"
    clean = sanitize_filename(filename)
    ascii_name = _ASCII_UNSAFE.sub("_", clean).strip(" .") or "image"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean, safe='')}"
