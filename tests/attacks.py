"""The attack files, made on the spot (tiny inputs that cost a lot to decode or encode),
shared by the budget tests, the abuse suite and ``bench/bench_attacks.py``."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

from PIL import Image

import imagefactory


@dataclass(frozen=True)
class Attack:
    name: str
    data: bytes = field(repr=False)
    content_type: str
    convert: dict  # the JSON body of the conversion that costs the most


def gif_canvas_bomb(frames: int = 1000, canvas: int = 1000) -> bytes:
    """~23 KB: ``frames`` frames of 1x1 on a ``canvas`` x ``canvas`` screen (each decodes to the whole canvas)."""
    return imagefactory.gif_frame_bomb(frames, canvas, canvas)


def lossless_webp_bomb(edge: int = 10000) -> bytes:
    """38 bytes that decode to ``edge`` x ``edge`` RGB: one colour costs no bits per pixel in
    VP8L, so Pillow's encoding of a 16x16 square with the size field rewritten is the same file
    libwebp writes for the full size."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buffer, "WEBP", lossless=True)
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"VP8L" and data[20] == 0x2F, "Pillow wrote another kind of WebP"
    (bits,) = struct.unpack_from("<I", data, 21)
    bits = (bits & ~0xFFFFFFF) | (edge - 1) | ((edge - 1) << 14)  # 14 bits width-1, 14 bits height-1
    struct.pack_into("<I", data, 21, bits)
    return bytes(data)


def large_gray_png(edge: int = 8192) -> bytes:
    """~80 KB: a uniform ``edge`` x ``edge`` greyscale PNG, the source of an AVIF conversion at full size."""
    buffer = io.BytesIO()
    Image.new("L", (edge, edge), 128).save(buffer, "PNG")
    return buffer.getvalue()


def tiny_png() -> bytes:
    return imagefactory.png_bytes(16, 16)


def attacks() -> list[Attack]:
    """Each attack of the issue: the upload, then the conversion that used to cost gigabytes."""
    return [
        Attack("gif_1000_frames_to_webp", gif_canvas_bomb(), "image/gif", {"format": "webp"}),
        Attack("webp_10000px_lossless_to_png", lossless_webp_bomb(), "image/webp", {"format": "png"}),
        Attack("avif_8192px", large_gray_png(), "image/png", {"format": "avif", "width": 8192, "height": 8192}),
        Attack("png_16px_to_bmp_6000px_fill", tiny_png(), "image/png",
               {"format": "bmp", "width": 6000, "height": 6000, "fit": "fill", "enlarge": True}),
    ]
