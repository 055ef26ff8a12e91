"""Every truncated or partially decodable file is rejected ``corrupt``, by both operations.

The files are made here with Pillow and cut in the places that matter: inside the pixel data,
inside the last bytes (a zlib checksum, an end marker), and inside a later animation frame,
which ``process_image`` never decodes.
"""

from __future__ import annotations

import io
import struct
import zlib

import imagefactory as f
import pytest
from PIL import Image

from imageservice.core import imaging
from imageservice.core.conversions import ConversionRequest
from imageservice.core.errors import ImageRejected

SPECS = [imaging.DerivativeSpec("preview", 1440), imaging.DerivativeSpec("thumb", 256)]


def encoded(fmt: str, width: int = 200, height: int = 150, **options) -> bytes:
    buffer = io.BytesIO()
    f.photo_like(width, height).save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunks.append((data[position + 4 : position + 8], data[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_short_idat(keep: float) -> bytes:
    """A well-formed chunk sequence whose one IDAT holds only part of the zlib stream, no IEND."""
    data = encoded("PNG")
    chunks = png_chunks(data)
    stream = b"".join(payload for kind, payload in chunks if kind == b"IDAT")
    head = b"".join(png_chunk(kind, payload) for kind, payload in chunks if kind not in (b"IDAT", b"IEND"))
    return data[:8] + head + png_chunk(b"IDAT", stream[: int(len(stream) * keep)])


def assert_rejected_corrupt(data: bytes) -> None:
    with pytest.raises(ImageRejected) as processed:
        imaging.process_image(data, SPECS)
    assert processed.value.code == "corrupt", processed.value
    with pytest.raises(ImageRejected) as converted:
        imaging.convert_image(data, ConversionRequest("png"))
    assert converted.value.code == "corrupt", converted.value


def cut_before_end(data: bytes, missing: int) -> bytes:
    return data[: len(data) - missing]


WHOLE_FILES = {
    "png": lambda: encoded("PNG"),
    "jpeg": lambda: encoded("JPEG", quality=90),
    "progressive-jpeg": lambda: encoded("JPEG", progressive=True),
    "gif": lambda: encoded("GIF"),
    "webp": lambda: encoded("WEBP"),
    "lossless-webp": lambda: encoded("WEBP", lossless=True),
    "tiff": lambda: encoded("TIFF"),
    "lzw-tiff": lambda: encoded("TIFF", compression="tiff_lzw"),
    "bmp": lambda: encoded("BMP"),
    "animated-gif": lambda: f.animated_gif_bytes(5, 120, 90),
    "animated-webp": lambda: f.animated_webp_bytes(5, 120, 90),
    "apng": lambda: f.animated_png_bytes(5, 120, 90),
}


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("name", sorted(WHOLE_FILES))
def test_a_file_cut_short_is_rejected_corrupt(name, keep):
    data = WHOLE_FILES[name]()
    imaging.process_image(data, SPECS)  # the whole file is fine
    assert_rejected_corrupt(f.truncated(data, keep))


@pytest.mark.parametrize("name", sorted(WHOLE_FILES))
def test_a_file_missing_only_its_last_bytes_is_rejected_corrupt(name):
    data = WHOLE_FILES[name]()
    assert_rejected_corrupt(cut_before_end(data, 3))


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.8, 0.98])
def test_png_whose_idat_stream_is_cut_short_without_iend_is_rejected(keep):
    # The case: every chunk is whole (lengths and CRCs agree), the zlib stream in IDAT
    # stops early and IEND is missing.
    assert_rejected_corrupt(png_with_short_idat(keep))


def test_png_cut_inside_the_zlib_checksum_is_rejected():
    # Pillow has every pixel by then and would not notice: the chunk walk does.
    data = f.png_bytes(400, 300)
    iend_and_crc = 12 + 4
    assert_rejected_corrupt(cut_before_end(data, iend_and_crc + 2))


def test_apng_cut_inside_a_later_frame_is_rejected():
    data = f.animated_png_bytes(4, 120, 90)
    last_fdat = data.rfind(b"fdAT")
    assert last_fdat > 0
    assert_rejected_corrupt(data[: last_fdat + 20])


def test_gif_cut_inside_a_later_frame_is_rejected():
    data = f.animated_gif_bytes(4, 120, 90)
    last_descriptor = data.rfind(b"\x2c\x00\x00\x00\x00")
    assert last_descriptor > 0
    assert_rejected_corrupt(data[: last_descriptor + 14])


def test_gif_without_its_trailer_is_rejected():
    data = f.gif_bytes()
    assert data.endswith(b"\x3b")
    assert_rejected_corrupt(data[:-1])


def test_whole_files_with_trailing_bytes_are_still_accepted():
    # The completeness checks look for the end of the structure, not the end of the file.
    for data in (f.png_bytes(), f.gif_bytes(), f.animated_png_bytes()):
        imaging.process_image(data + b"\x00" * 16, SPECS)


def test_png_with_exif_after_the_pixels_still_reads_it():
    # An eXIf chunk behind IDAT: reading it needs the decode the gate now does up front.
    image = f.pattern(64, 48)
    exif = f.make_exif(orientation=None, camera=True).tobytes()
    data = f._save(image, "PNG")  # noqa: SLF001 - the factory's own encoder
    chunks = png_chunks(data)
    body = b"".join(png_chunk(kind, payload) for kind, payload in chunks if kind != b"IEND")
    with_exif = data[:8] + body + png_chunk(b"eXIf", exif) + png_chunk(b"IEND", b"")
    result = imaging.process_image(with_exif, SPECS)
    assert result.info.exif.get("Make") == f.CAMERA["Make"]
    with Image.open(io.BytesIO(with_exif)) as check:
        assert check.getexif()  # Pillow sees it too: the fixture is what it claims
