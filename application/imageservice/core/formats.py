"""The image formats the service knows, in one table (docs/DESIGN.md "Formats"). Everything else
reads it: the upload's accepted declared types (service), the decoder allow-list (imaging
opening and model), the conversion outputs (conversions, imaging encoding), file extensions for
downloads (filenames), the pages' file picker and words (web/pages/constants) and the
command-line client. What the bytes are is decided by sniffing (imaging/sniffing.py), whose
answers are this table's ``media_type`` values (tests/unit/test_formats.py holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    media_type: str  # what sniffing names it, and what the record's content_type holds
    label: str  # for people: "WebP"
    extensions: tuple[str, ...]  # the first names downloaded files
    pillow: tuple[str, ...]  # the Pillow plugins allowed to open it, and no other
    declared: tuple[str, ...] = ()  # other types a browser or client may declare for it
    animated: bool = False  # extra frames are an animation (not pages, views or a collection)
    output: str | None = None  # its name as a conversion output ("jpeg"), if it is one


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("image/jpeg", "JPEG", ("jpg", "jpeg", "jpe", "jfif"), ("JPEG", "MPO"), ("image/pjpeg",),
                output="jpeg"),
    ImageFormat("image/png", "PNG", ("png", "apng"), ("PNG",), ("image/apng",), animated=True, output="png"),
    ImageFormat("image/gif", "GIF", ("gif",), ("GIF",), animated=True, output="gif"),
    ImageFormat("image/webp", "WebP", ("webp",), ("WEBP",), animated=True, output="webp"),
    ImageFormat("image/tiff", "TIFF", ("tif", "tiff"), ("TIFF",), output="tiff"),
    ImageFormat("image/bmp", "BMP", ("bmp", "dib"), ("BMP",), ("image/x-ms-bmp",), output="bmp"),
    ImageFormat("image/x-icon", "ICO", ("ico",), ("ICO", "CUR"), ("image/vnd.microsoft.icon",)),
    ImageFormat("image/heic", "HEIC", ("heic",), ("HEIF",), ("image/heic-sequence",)),
    # The generic HEIF brands (mif1/msf1) may hold either codec.
    ImageFormat("image/heif", "HEIF", ("heif",), ("HEIF", "AVIF"), ("image/heif-sequence",)),
    ImageFormat("image/avif", "AVIF", ("avif",), ("AVIF",), ("image/avif-sequence",), animated=True, output="avif"),
)
# The conversion outputs, in the order the API and the form list them.
OUTPUT_ORDER = ("jpeg", "png", "webp", "avif", "gif", "tiff", "bmp")

BY_MEDIA_TYPE = {f.media_type: f for f in FORMATS}
BY_OUTPUT = {f.output: f for f in FORMATS if f.output}
# Declared types an upload may announce; the processor sniffs the real type anyway.
UPLOAD_MEDIA_TYPES = frozenset(t for f in FORMATS for t in (f.media_type, *f.declared))
# Every name a file may carry for a supported type, to the type it stands for.
EXTENSION_TYPES = {ext: f.media_type for f in FORMATS for ext in f.extensions}
# A type (sniffed or declared) to the extension a file of it is named with.
FILE_EXTENSIONS = {t: f.extensions[0] for f in FORMATS for t in (f.media_type, *f.declared)}
PILLOW_INPUTS = tuple(dict.fromkeys(p for f in FORMATS for p in f.pillow))
ANIMATED_PILLOW_INPUTS = frozenset(f.pillow[0] for f in FORMATS if f.animated)


def upload_formats_words() -> str:
    """``JPEG, PNG, ... or AVIF``: what the upload zone says it takes."""
    labels = [f.label for f in FORMATS]
    return f"{', '.join(labels[:-1])} or {labels[-1]}"
