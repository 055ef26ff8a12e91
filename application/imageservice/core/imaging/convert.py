"""convert_image: decode, make upright sRGB, resize to the asked box and encode to the asked format."""

from __future__ import annotations

from typing import Callable

from PIL import Image

from ..conversions import MAX_ENLARGEMENT, ConversionRequest, check_within_limits
from ..errors import Unprocessable
from . import encoding, pixels, watermark
from .model import EncodedImage, ImagingLimits
from .opening import Source, open_within_limits, rejecting_decode_errors


def convert_image(
    data: bytes,
    request: ConversionRequest,
    limits: ImagingLimits = ImagingLimits(),
    *,
    logo: bytes | None = None,
    max_output_bytes: int | None = None,
) -> EncodedImage:
    """Convert (and optionally resize) an image; metadata is never carried over.

    ``request`` is already validated (core.conversions.conversion_request_from); the bounds that
    are settings are checked here.  The output is never larger than the source unless
    ``request.enlarge``, and then at most MAX_ENLARGEMENT times.  Raises Unprocessable
    (code="limit_exceeded") for outputs beyond the limits, Unprocessable(code=
    "output_too_large") for an encoded output over ``max_output_bytes``, ImageRejected for bad
    inputs.
    """
    check_within_limits(request, max_edge=limits.convert_max_edge, max_pixels=limits.max_pixels)
    fmt, quality = request.format, request.quality
    with open_within_limits(data, limits) as source:
        target, region = _plan_output(source.displayed_size, request, limits)
        # After resizing and orientation: the mark is sized and placed on the output itself.
        mark = watermark.prepare(request.watermark, target, logo=logo, limits=limits) if request.watermark else None
        if source.animated and fmt in encoding.ANIMATED_OUTPUTS:
            _check_animation_output(source.frames, target, limits)
            return _convert_animation(source, fmt, target, region, quality, max_output_bytes, mark)
        needed = pixels.needed_size(source.displayed_size, target, region)
        upright = pixels.upright_srgb(source, needed)
        output = watermark.stamp(pixels.resize(upright, target, _box_in(upright, region)), mark)
        return encoding.encode(output, fmt, quality, max_bytes=max_output_bytes)


def _plan_output(
    size: tuple[int, int], request: ConversionRequest, limits: ImagingLimits
) -> tuple[tuple[int, int], pixels.Box]:
    """The output size and the part of the (upright) source that goes into it, as fractions."""
    width, height, fit = request.width, request.height, request.fit
    source_width, source_height = size
    region = pixels.WHOLE
    if width is None and height is None:
        target = pixels.fit_long_edge(size, limits.convert_max_edge)  # original size, within the limit
    elif height is None:
        target = (width, max(1, round(source_height * width / source_width)))
    elif width is None:
        target = (max(1, round(source_width * height / source_height)), height)
    elif fit == "fill":
        target = (width, height)
    elif fit == "contain":
        scale = min(width / source_width, height / source_height)
        target = (
            min(width, max(1, round(source_width * scale))),
            min(height, max(1, round(source_height * scale))),
        )
    else:  # cover: the centre of the source, cut to the box's aspect ratio
        target = (width, height)
        box_ratio, source_ratio = width / height, source_width / source_height
        if source_ratio > box_ratio:
            keep = box_ratio / source_ratio
            region = ((1 - keep) / 2, 0.0, (1 + keep) / 2, 1.0)
        else:
            keep = source_ratio / box_ratio
            region = (0.0, (1 - keep) / 2, 1.0, (1 + keep) / 2)
    target = _within_enlargement(target, size, region, fill=fit == "fill", enlarge=request.enlarge)
    if max(target) > limits.convert_max_edge or target[0] * target[1] > limits.max_pixels:
        raise Unprocessable(
            f"the output would be {target[0]}x{target[1]}, beyond the limit of "
            f"{limits.convert_max_edge} px a side and {limits.max_pixels} pixels",
            code="limit_exceeded",
        )
    return target, region


def _within_enlargement(
    target: tuple[int, int], size: tuple[int, int], region: pixels.Box, *, fill: bool, enlarge: bool
) -> tuple[int, int]:
    """``target`` shrunk so no side scales the source up more than allowed (1x, or 2x with
    ``enlarge``).  The aspect ratio is kept, except for ``fill``, whose axes are independent."""
    limit = MAX_ENLARGEMENT if enlarge else 1.0
    available = (size[0] * (region[2] - region[0]), size[1] * (region[3] - region[1]))
    scales = (target[0] / available[0], target[1] / available[1])
    if fill:
        return tuple(  # type: ignore[return-value]
            min(side, max(1, int(source * limit))) for side, source in zip(target, available)
        )
    shrink = min(1.0, limit / max(scales))
    if shrink == 1.0:
        return target
    return max(1, round(target[0] * shrink)), max(1, round(target[1] * shrink))


def _box_in(image: Image.Image, region: pixels.Box) -> pixels.Box | None:
    """``region`` (fractions) in pixel coordinates of ``image``; None for the whole image.

    Fractions, because the decoded image may be a DCT-scaled or reduced copy of the original.
    """
    if region == pixels.WHOLE:
        return None
    x0, y0, x1, y1 = region
    return (x0 * image.width, y0 * image.height, x1 * image.width, y1 * image.height)


def _check_animation_output(frames: int, target: tuple[int, int], limits: ImagingLimits) -> None:
    if frames * target[0] * target[1] > limits.max_animation_pixels:
        raise Unprocessable(
            f"{frames} frames of {target[0]}x{target[1]} exceed {limits.max_animation_pixels} pixels",
            code="limit_exceeded",
        )


def _convert_animation(
    source: Source, fmt: str, target: tuple[int, int], region: pixels.Box, quality: int | None,
    max_output_bytes: int | None, mark: watermark.Mark | None,
) -> EncodedImage:
    """Every frame decoded (Pillow composites them onto the canvas), resized and re-encoded,
    one at a time as the encoder asks for it."""
    image = source.image
    loop = image.info.get("loop")  # absent: play once (GIF without a NETSCAPE block)

    def frame(index: int) -> tuple[Image.Image, int]:
        with rejecting_decode_errors():
            image.seek(index)
            upright = pixels.upright_srgb(source, None)
            duration = int(image.info.get("duration") or 100)  # known only once decoded (WebP)
            resized = pixels.resize(upright, target, _box_in(upright, region))
            return encoding.prepare_for(fmt, watermark.stamp(resized, mark)), duration

    frames = _FrameStream(source.frames, frame)
    return encoding.encode_animation(frames, frames.durations, loop, fmt, quality, max_bytes=max_output_bytes)


class _FrameStream(Image.Image):
    """A multi-frame image whose frames are made when an encoder seeks to them.

    Pillow's save_all encodes every frame of a multi-frame image by seeking through it, the
    way it reads a file: here each seek decodes and resizes one source frame, so the frames
    are never all held at once (issue: a 1000-frame GIF to WebP held 3.9 GB).  ``durations``
    grows as frames are made, which is when a WebP source reveals them.
    """

    def __init__(self, count: int, make: Callable[[int], tuple[Image.Image, int]]) -> None:
        super().__init__()
        self.n_frames = count
        self.is_animated = count > 1
        self.durations: list[int] = []
        self._make = make
        self._index = -1
        self.seek(0)

    def seek(self, frame: int) -> None:
        if frame == self._index:
            return
        if not 0 <= frame < self.n_frames:
            raise EOFError("no more frames")
        made, duration = self._make(frame)
        if frame == len(self.durations):
            self.durations.append(duration)
        # What Pillow's own Image.thumbnail does to swap pixels in place.
        self.im, self._size, self._mode = made.im, made.size, made.mode
        self.info = {"duration": duration}
        self._index = frame

    def tell(self) -> int:
        return self._index
