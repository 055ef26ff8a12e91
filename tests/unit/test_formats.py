"""core/formats.py is the one table of image formats: sniffing names only its types, the decoder
allow-list, the conversion outputs, the upload's declared types, file names and the pages all
come from it."""

from __future__ import annotations

import imagefactory
from imageservice.core import formats
from imageservice.core.conversions import CONVERT_FORMATS
from imageservice.core.filenames import download_name
from imageservice.core.imaging import SUPPORTED_INPUT_FORMATS, sniffing
from imageservice.service import UPLOAD_CONTENT_TYPES
from imageservice.web.pages.constants import FORMAT_LABELS, UPLOAD_FORMATS_WORDS


def test_every_sniffed_type_is_in_the_table():
    samples = [imagefactory.jpeg_bytes(8, 8), imagefactory.png_bytes(8, 8)]
    for data in samples:
        assert sniffing.sniff(data) in formats.BY_MEDIA_TYPE
    named = {t for _, _, t in sniffing._SUPPORTED_MAGIC}
    assert named <= set(formats.BY_MEDIA_TYPE)


def test_everything_else_reads_it():
    assert set(SUPPORTED_INPUT_FORMATS) == {p for f in formats.FORMATS for p in f.pillow}
    assert set(CONVERT_FORMATS) == set(formats.BY_OUTPUT) and CONVERT_FORMATS == formats.OUTPUT_ORDER
    assert UPLOAD_CONTENT_TYPES == {t for f in formats.FORMATS for t in (f.media_type, *f.declared)}
    assert FORMAT_LABELS == {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "avif": "AVIF", "gif": "GIF",
                             "tiff": "TIFF", "bmp": "BMP"}
    assert all(f.label in UPLOAD_FORMATS_WORDS for f in formats.FORMATS)


def test_file_names_follow_the_table():
    assert download_name("scan.pdf", "image/tiff") == "scan.tif"
    assert download_name("photo", "image/pjpeg") == "photo.jpg"
    assert formats.EXTENSION_TYPES["jfif"] == "image/jpeg" and formats.EXTENSION_TYPES["tiff"] == "image/tiff"
    # Each extension names one type.
    extensions = [ext for f in formats.FORMATS for ext in f.extensions]
    assert len(extensions) == len(set(extensions))
