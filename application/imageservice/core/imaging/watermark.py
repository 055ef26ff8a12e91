"""Watermarks: a text or a logo, put on an output after resizing and orientation.

The mark is made once per output size (``prepare``) and stamped on each frame (``stamp``).  It
sits inside the output with a margin and changes the pixels of its own box and nowhere else.
The text font is Noto Sans from the ``fontpkg-noto-sans`` dependency (Latin, Greek, Cyrillic,
Vietnamese, ...): never a system font lookup, so every machine draws the same mark.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..conversions import WatermarkSpec
from ..errors import ImageRejected
from . import pixels
from .model import ImagingLimits
from .opening import open_within_limits

# The gap between the mark and the output's edge, as a fraction of the output's shorter side.
MARGIN_FRACTION = 0.03
MIN_MARGIN = 2
# Text is drawn at this size first to measure it, then at the size that gives the asked width.
_MEASURE_SIZE = 100
_TEXT_FILL = (255, 255, 255, 255)
_TEXT_OUTLINE = (0, 0, 0, 255)  # keeps white text readable on light backgrounds


@dataclass(frozen=True)
class Mark:
    """A watermark ready to stamp: its pixels (RGBA, opacity applied) and where they go."""

    image: Image.Image
    position: tuple[int, int]


@functools.cache
def font_path() -> Path:
    """The bundled TrueType font (looked up once, on first use: nothing at import time)."""
    import fontpkg_noto_sans

    return fontpkg_noto_sans.ROOT / "files" / "NotoSans[wdth,wght].ttf"


def prepare(spec: WatermarkSpec, size: tuple[int, int], *, logo: bytes | None = None,
            limits: ImagingLimits = ImagingLimits()) -> Mark | None:
    """The mark ``spec`` asks for on an output of ``size``; None when there is nothing to draw.

    ``logo`` is the bytes of the logo image (``spec.image_id``'s original), opened through the
    same limits as any input.  Raises ImageRejected for a logo that is not a valid image.
    """
    margin = max(MIN_MARGIN, round(min(size) * MARGIN_FRACTION))
    room = (size[0] - 2 * margin, size[1] - 2 * margin)
    if room[0] < 1 or room[1] < 1:
        return None  # too small an output to hold a mark inside a margin
    width = max(1, min(room[0], round(size[0] * spec.scale)))
    if spec.text is not None:
        art = _text_art(spec.text, width)
    elif logo is not None:
        art = _logo_art(logo, width, limits)
    else:
        return None
    art = _fit_inside(art, room)
    art = _with_opacity(art, spec.opacity)
    return Mark(art, _place(spec.position, size, art.size, margin))


def stamp(image: Image.Image, mark: Mark | None) -> Image.Image:
    """``image`` with ``mark`` blended in; pixels outside the mark's box are left as they were."""
    if mark is None:
        return image
    stamped = image.copy()
    if stamped.mode not in ("RGB", "RGBA"):
        stamped = stamped.convert("RGBA")
    colour = mark.image.convert(stamped.mode) if stamped.mode == "RGB" else mark.image
    # paste(..., mask) blends the mark over what is there in the mark's box only.
    stamped.paste(colour, mark.position, mask=mark.image.getchannel("A"))
    return stamped


def _text_art(text: str, width: int) -> Image.Image:
    """``text`` in white with a dark outline, ``width`` pixels wide, on transparency."""
    measure = ImageFont.truetype(str(font_path()), _MEASURE_SIZE)
    left, _, right, _ = measure.getbbox(text, stroke_width=_stroke(_MEASURE_SIZE))
    size = max(4, int(_MEASURE_SIZE * width / max(1, right - left)))
    font = ImageFont.truetype(str(font_path()), size)
    stroke = _stroke(size)
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    art = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(art).text(
        (-left, -top), text, font=font, fill=_TEXT_FILL, stroke_width=stroke, stroke_fill=_TEXT_OUTLINE
    )
    # Font sizes are whole numbers: bring the drawing to exactly the asked width.
    return art if art.width == width else art.resize((width, max(1, round(art.height * width / art.width))), pixels.RESAMPLE)


def _stroke(size: int) -> int:
    return max(1, size // 25)


def _logo_art(logo: bytes, width: int, limits: ImagingLimits) -> Image.Image:
    """The logo's first frame, upright, in sRGB with its alpha, ``width`` pixels wide."""
    try:
        with open_within_limits(logo, limits) as source:
            displayed = source.displayed_size
            target = (width, max(1, round(displayed[1] * width / displayed[0])))
            upright = pixels.upright_srgb(source, pixels.needed_size(displayed, target, pixels.WHOLE))
            return pixels.resize(upright, target).convert("RGBA")
    except ImageRejected as rejected:
        raise ImageRejected(rejected.code, f"the watermark logo: {rejected.message}") from rejected


def _fit_inside(art: Image.Image, room: tuple[int, int]) -> Image.Image:
    """Shrunk (aspect kept) until it fits ``room``; never enlarged here."""
    if art.width <= room[0] and art.height <= room[1]:
        return art
    scale = min(room[0] / art.width, room[1] / art.height)
    return art.resize((max(1, int(art.width * scale)), max(1, int(art.height * scale))), pixels.RESAMPLE)


def _with_opacity(art: Image.Image, opacity: float) -> Image.Image:
    alpha = art.getchannel("A").point(lambda value: round(value * opacity))
    faded = art.copy()
    faded.putalpha(alpha)
    return faded


def _place(position: str, size: tuple[int, int], mark: tuple[int, int], margin: int) -> tuple[int, int]:
    right, bottom = size[0] - margin - mark[0], size[1] - margin - mark[1]
    centre = ((size[0] - mark[0]) // 2, (size[1] - mark[1]) // 2)
    return {
        "top-left": (margin, margin),
        "top-right": (right, margin),
        "bottom-left": (margin, bottom),
        "bottom-right": (right, bottom),
        "center": centre,
    }[position]
