"""imaging.sniff: magic bytes decide, never names or declared types."""

from __future__ import annotations

import struct

import imagefactory as f
import pytest

from imageservice.core import imaging
from imageservice.core.errors import ImageRejected


def _heic() -> bytes:
    return f.heic_bytes()


SUPPORTED = [
    ("jpeg", f.jpeg_bytes, "image/jpeg"),
    ("jpeg-cmyk", f.cmyk_jpeg_bytes, "image/jpeg"),
    ("jpeg-gray", f.grayscale_jpeg_bytes, "image/jpeg"),
    ("jpeg-polyglot", f.polyglot_jpeg_with_php, "image/jpeg"),
    ("png", f.png_bytes, "image/png"),
    ("png16", f.png16_bytes, "image/png"),
    ("apng", f.animated_png_bytes, "image/png"),
    ("png-bomb", f.png_header_bomb, "image/png"),
    ("gif", f.gif_bytes, "image/gif"),
    ("gif-animated", f.animated_gif_bytes, "image/gif"),
    ("gif-bomb", f.gif_frame_bomb, "image/gif"),
    ("webp", f.webp_bytes, "image/webp"),
    ("webp-animated", f.animated_webp_bytes, "image/webp"),
    ("tiff", f.tiff_bytes, "image/tiff"),
    ("bmp", f.bmp_bytes, "image/bmp"),
    ("ico", f.ico_bytes, "image/x-icon"),
    ("heic", _heic, "image/heic"),
    ("avif", f.avif_bytes, "image/avif"),
]


@pytest.mark.parametrize("kind, make, mime", SUPPORTED, ids=[s[0] for s in SUPPORTED])
def test_supported_fixtures_are_recognised(kind, make, mime):
    assert imaging.sniff(make()) == mime


@pytest.mark.parametrize("kind, make, mime", SUPPORTED, ids=[s[0] for s in SUPPORTED])
def test_the_first_kilobytes_are_enough(kind, make, mime):
    assert imaging.sniff(make()[:4096]) == mime


NOT_IMAGES = {
    "empty": b"",
    "one byte": b"\xff",
    "html renamed .jpg": f.html_as_jpg_bytes(),
    "pdf": f.pdf_bytes(),
    "zip": f.zip_bytes(),
    "php": b"<?php echo 'hi'; ?>",
    "shell script": b"#!/bin/sh\nrm -rf /\n",
    "postscript": b"%!PS\nuserdict /setpagedevice undef\n",
    "imagemagick mvg": b"push graphic-context\nviewbox 0 0 640 480\nfill 'url(https://x/y.jpg\"|touch \"z)'\n",
    "plain text": b"hello, this is not an image at all\n",
    "random binary": bytes((i * 97 + 13) % 256 for i in range(1024)),
    "mp4": f.iso_bmff_header(b"isom", b"isom", b"mp42"),
    "ole document": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
    "xml without svg": b'<?xml version="1.0"?><note><to>you</to></note>',
    "jpeg magic gone": f.jpeg_bytes()[3:],
}


@pytest.mark.parametrize("data", NOT_IMAGES.values(), ids=NOT_IMAGES.keys())
def test_non_images_are_not_an_image(data):
    with pytest.raises(ImageRejected) as caught:
        imaging.sniff(data)
    assert caught.value.code == "not_an_image"


def _tga() -> bytes:
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 4, 4, 24, 0)
    return header + b"\x80" * 48 + b"\x00" * 8 + b"TRUEVISION-XFILE.\x00"


def _pcx() -> bytes:
    return bytes([0x0A, 5, 1, 8]) + struct.pack("<HHHH", 0, 0, 9, 9) + b"\x00" * 120


UNSUPPORTED = {
    "svg": f.svg_bytes(),
    "svg without xml declaration": f.svg_bytes(xml_declaration=False),
    "svg with BOM and doctype": b'\xef\xbb\xbf\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">\n<svg/>',
    "psd": b"8BPS\x00\x01" + b"\x00" * 40,
    "jpeg2000": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 20,
    "j2k codestream": b"\xffO\xffQ" + b"\x00" * 40,
    "jpeg xl": b"\xff\x0a" + b"\x00" * 40,
    "jpeg xl container": b"\x00\x00\x00\x0cJXL \r\n\x87\n" + b"\x00" * 20,
    "qoi": b"qoif\x00\x00\x00\x10\x00\x00\x00\x10\x03\x00" + b"\x00" * 20,
    "dds": b"DDS |\x00\x00\x00" + b"\x00" * 120,
    "eps binary": b"\xc5\xd0\xd3\xc6" + b"\x00" * 40,
    "eps text": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
    "tga": _tga(),
    "pcx": _pcx(),
    "netpbm": b"P6\n4 4\n255\n" + b"\x00" * 48,
    "xpm": b"/* XPM */\nstatic char *x[] = {};\n",
    "xbm": b"#define x_width 8\n#define x_height 8\nstatic char x_bits[] = {0};\n",
    "wmf": b"\xd7\xcd\xc6\x9a" + b"\x00" * 40,
    "bpg": b"BPG\xfb" + b"\x00" * 20,
    "dicom": b"\x00" * 128 + b"DICM" + b"\x00" * 20,
    "sgi": b"\x01\xda\x01\x01" + b"\x00" * 100,
    "blp": b"BLP2" + b"\x00" * 100,
    "icns": b"icns\x00\x00\x01\x00",
    "fits": b"SIMPLE  =                    T" + b" " * 50,
    "djvu": b"AT&TFORM\x00\x00\x00\x10DJVU",
    "canon cr3": f.iso_bmff_header(b"crx ", b"crx ", b"isom"),
}


@pytest.mark.parametrize("data", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_other_image_formats_are_unsupported(data):
    with pytest.raises(ImageRejected) as caught:
        imaging.sniff(data)
    assert caught.value.code == "unsupported_format"


@pytest.mark.parametrize(
    "brands, mime",
    [
        ((b"heic", b"mif1", b"heic"), "image/heic"),
        ((b"mif1", b"heic"), "image/heic"),
        ((b"heix", b"mif1"), "image/heic"),
        ((b"msf1", b"hevc"), "image/heic"),
        ((b"mif1", b"miaf"), "image/heif"),
        ((b"avif", b"mif1", b"miaf"), "image/avif"),
        ((b"mif1", b"avif", b"miaf"), "image/avif"),
        ((b"avis", b"msf1", b"avif"), "image/avif"),
    ],
)
def test_iso_bmff_brands(brands, mime):
    assert imaging.sniff(f.iso_bmff_header(*brands)) == mime


def test_declared_type_is_irrelevant_a_png_named_jpg_is_png():
    assert imaging.sniff(f.png_bytes()) == "image/png"


def test_bmp_needs_a_real_dib_header():
    assert imaging.sniff(f.bmp_bytes()) == "image/bmp"
    with pytest.raises(ImageRejected) as caught:
        imaging.sniff(b"BM, said the text file, and went on for a while.")
    assert caught.value.code == "not_an_image"


def test_uncompressed_tga_header_is_not_mistaken_for_a_cursor():
    # A type-2 TGA starts 00 00 02 00, like a CUR file; its "directory" is implausible.
    with pytest.raises(ImageRejected) as caught:
        imaging.sniff(_tga())
    assert caught.value.code == "unsupported_format"


@pytest.mark.parametrize(
    "options",
    [{"lossless": True}, {"quality": 80}, {"quality": 80, "exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"}],
    ids=["VP8L", "VP8", "VP8X"],
)
def test_webp_canvas_size_reads_each_kind_of_first_chunk(options):
    import io

    from PIL import Image

    from imageservice.core.imaging.sniffing import webp_canvas_size

    buffer = io.BytesIO()
    Image.new("RGB", (123, 45), (1, 2, 3)).save(buffer, "WEBP", **options)
    data = buffer.getvalue()
    assert webp_canvas_size(data) == (123, 45)
    assert webp_canvas_size(data[:20]) is None  # cut inside the header: unknown, not guessed
