"""Opening within limits: the one gate every imaging call goes through.

Sniff, open with Pillow restricted to the sniffed format, and refuse pixel and frame bombs from
the headers before a single pixel is decoded.  GIF and TIFF declare no frame count, so their
frames are counted here by walkers that stop at the limit.

Nothing happens at import time: the HEIF plugin is registered on first use.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from PIL import Image, ImageCms, UnidentifiedImageError

from ..errors import ImageRejected
from ..formats import ANIMATED_PILLOW_INPUTS, FORMATS
from . import metadata
from .model import SUPPORTED_INPUT_FORMATS, ImagingLimits
from .sniffing import sniff, webp_canvas_size

# The sniffed MIME type decides which single Pillow plugin may open the bytes.
_PILLOW_FORMATS_FOR_TYPE: dict[str, tuple[str, ...]] = {f.media_type: f.pillow for f in FORMATS}

# Inputs whose extra frames are an animation (MPO stereo pairs, TIFF pages and HEIF collections
# are multi-frame but not animated).
_ANIMATED_FORMATS = ANIMATED_PILLOW_INPUTS

# Pillow's TIFF plugin applies the Orientation tag itself while loading (and reports the
# displayed size from the start), so we must not rotate those a second time.
_ORIENTED_BY_DECODER = frozenset({"TIFF"})

# Everything a broken or hostile file can make Pillow or pillow_heif raise while opening or
# decoding.  RuntimeError is here because libheif failures surface as RuntimeError.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    RuntimeError,
    UserWarning,  # Pillow warns about damaged tags; where warnings are errors they arrive here
)

WEBP_DECODER_CANVASES = 3

_setup_lock = threading.Lock()
_setup_done = False
_srgb_profile: ImageCms.ImageCmsProfile | None = None


def ensure_setup() -> None:
    """Register the HEIF opener and quiet Pillow's bomb warning, once, on first use."""
    global _setup_done, _srgb_profile
    if _setup_done:
        return
    with _setup_lock:
        if _setup_done:
            return
        import pillow_heif

        # No embedded thumbnails, depth maps or auxiliary images: we decode the primary image only.
        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        # Our own per-image limits replace Pillow's global warning threshold (~89 MP), which is
        # below our 100 MP default.  Pillow's hard error (~179 MP) stays and maps to
        # too_many_pixels.  Image.MAX_IMAGE_PIXELS itself is left alone.
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        _setup_done = True


def srgb_profile() -> ImageCms.ImageCmsProfile:
    """The sRGB profile colour conversions target (built by ensure_setup)."""
    ensure_setup()
    assert _srgb_profile is not None
    return _srgb_profile


@dataclass
class Source:
    """An opened, limit-checked image whose pixels have not been decoded yet."""

    image: Image.Image
    content_type: str
    format: str
    mode: str
    size: tuple[int, int]  # as Pillow reports it before any draft
    displayed_size: tuple[int, int]  # after orientation
    orientation: int  # the EXIF orientation still to apply after decoding (1 = none)
    exif: Image.Exif | None
    frames: int
    animated: bool


@contextmanager
def open_within_limits(data: bytes, limits: ImagingLimits) -> Iterator[Source]:
    """Sniff, open with Pillow restricted to that format, and refuse bombs before decoding.

    The one gate every caller goes through.  Raises ImageRejected with not_an_image,
    unsupported_format, corrupt, too_many_pixels or too_many_frames.
    """
    content_type = sniff(data)
    ensure_setup()
    declared = webp_canvas_size(data) if content_type == "image/webp" else None
    if declared:
        _check_frame_pixels(declared, limits)
    try:
        with rejecting_decode_errors():
            image = Image.open(io.BytesIO(data), formats=list(_PILLOW_FORMATS_FOR_TYPE[content_type]))
    except ImageRejected as exc:
        if declared:
            # libwebp's animation decoder (Pillow's only WebP path) holds the canvas, the
            # previous canvas and the frame being decoded.
            _note_decode_size(exc, declared, WEBP_DECODER_CANVASES)
        raise
    try:
        if image.format not in SUPPORTED_INPUT_FORMATS:  # defence in depth: plugins can return subclasses
            raise ImageRejected("unsupported_format", f"{image.format} images are not supported")
        _check_frame_pixels(image.size, limits)
        with rejecting_decode_errors():
            frames = _count_frames(image, data, limits)
        _check_frame_count(frames, image.size, limits)
        if image.format == "PNG":
            _check_png_complete(data)
            if "exif" not in image.info:
                # Pillow's getexif() decodes a PNG's pixels to reach an eXIf chunk behind them.
                # Do that decode here, where its errors reject the image: the metadata read
                # below forgives errors, and once swallowed a truncation left missing pixels.
                with rejecting_decode_errors():
                    image.load()
        exif = metadata.read_exif(image)
        orientation = metadata.orientation_of(exif)
        if image.format in _ORIENTED_BY_DECODER:
            orientation = 1
        source = Source(
            image=image,
            content_type=content_type,
            format=image.format,
            mode=image.mode,
            size=image.size,
            displayed_size=metadata.oriented_size(image.size, orientation),
            orientation=orientation,
            exif=exif,
            frames=frames,
            animated=frames > 1 and image.format in _ANIMATED_FORMATS,
        )
        try:
            yield source
        except ImageRejected as exc:
            _note_decode_size(exc, source.size)
            raise
    finally:
        image.close()


@contextmanager
def rejecting_decode_errors() -> Iterator[None]:
    """Turn whatever a hostile file makes the decoders raise into a clean ImageRejected."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning only arrives here as an exception when warnings are turned into errors.
        raise ImageRejected("too_many_pixels", f"the image is too large to decode safely: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise _rejection_for(exc) from exc


def _rejection_for(exc: BaseException) -> ImageRejected:
    message = str(exc)
    if isinstance(exc, ValueError) and "Decompressed data too large" in message:
        # A compressed PNG text chunk that inflates beyond Pillow's cap: a decompression bomb.
        return ImageRejected(
            "too_many_pixels", "a compressed chunk inflates beyond the safe limit (decompression bomb)"
        )
    if isinstance(exc, UnidentifiedImageError):
        return ImageRejected("corrupt", "the file has an image signature but its structure is invalid")
    if isinstance(exc, MemoryError):
        return ImageRejected("corrupt", "the image needs more memory to decode than is allowed")
    reason = message.split(" at 0x")[0][:200] or type(exc).__name__
    return ImageRejected("corrupt", f"the image could not be decoded: {reason}")


def _note_decode_size(exc: ImageRejected, size: tuple[int, int], canvases: int = 1) -> None:
    # Some decoders (libwebp's) report a refused allocation as a broken file; whoever runs this
    # under a memory ceiling needs the size of the decode to tell the two apart.
    if exc.decoded_bytes is None:
        exc.decoded_bytes = canvases * size[0] * size[1] * 4  # 4: Pillow's widest common pixel


def _check_frame_pixels(size: tuple[int, int], limits: ImagingLimits) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageRejected("corrupt", f"the image declares an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"{width}x{height} is {width * height} pixels, more than the limit of {limits.max_pixels}",
        )


def _check_frame_count(frames: int, size: tuple[int, int], limits: ImagingLimits) -> None:
    if frames > limits.max_frames:
        raise ImageRejected("too_many_frames", f"more than {limits.max_frames} frames")
    total = frames * size[0] * size[1]
    if frames > 1 and total > limits.max_animation_pixels:
        raise ImageRejected(
            "too_many_frames",
            f"{frames} frames of {size[0]}x{size[1]} exceed the limit of "
            f"{limits.max_animation_pixels} pixels in total",
        )


def _frame_cap(size: tuple[int, int], limits: ImagingLimits) -> int:
    """Counting further than this is pointless: one more frame already breaks a limit.

    At least 2, so a still image is always told apart from an animation.
    """
    return max(2, min(limits.max_frames, limits.max_animation_pixels // (size[0] * size[1])) + 1)


def _count_frames(image: Image.Image, data: bytes, limits: ImagingLimits) -> int:
    """How many frames the file has, without decoding any and never counting past the limits.

    GIF and TIFF have no frame count in a header (Pillow's n_frames walks the whole file,
    however long), so those are walked here with a cap.  The other formats declare the count.
    """
    cap = _frame_cap(image.size, limits)
    if image.format == "GIF":
        return _count_gif_frames(data, cap, limits)
    if image.format == "TIFF":
        return _count_by_seeking(image, cap)
    return int(getattr(image, "n_frames", 1))


def _count_by_seeking(image: Image.Image, cap: int) -> int:
    """Seek frame by frame (TIFF seeks read the page directory only) up to ``cap``."""
    frames = 1
    try:
        while frames < cap:
            image.seek(frames)
            frames += 1
    except EOFError:
        pass
    image.seek(0)
    return frames


_GIF_BLOCK_START = re.compile(rb"[!,;]")


def _count_gif_frames(data: bytes, cap: int, limits: ImagingLimits) -> int:
    """Count GIF image descriptors by walking the block structure; stop at ``cap``.

    Pillow grows the canvas to fit a frame that overflows it and decodes every frame at the
    canvas size, so the canvas is tracked here too: it must stay within the pixel limit, and
    the canvases of all frames within the animation limit.
    """
    canvas_width, canvas_height = struct.unpack_from("<HH", data, 6)
    position = 13
    flags = data[10]
    if flags & 0x80:  # global colour table
        position += 3 << ((flags & 7) + 1)
    frames = total_pixels = 0
    while position < len(data) and frames < cap:
        block = data[position]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            position = _skip_gif_sub_blocks(data, position + 2)
        elif block == 0x2C:  # image descriptor
            if position + 10 > len(data):
                raise _truncated("the GIF ends inside an image descriptor")
            left, top, width, height = struct.unpack_from("<HHHH", data, position + 1)
            canvas_width, canvas_height = max(canvas_width, left + width), max(canvas_height, top + height)
            _check_frame_pixels((canvas_width, canvas_height), limits)
            frames += 1
            total_pixels += canvas_width * canvas_height
            if frames > 1 and total_pixels > limits.max_animation_pixels:
                raise ImageRejected(
                    "too_many_frames", f"the GIF's frames exceed {limits.max_animation_pixels} pixels in total"
                )
            packed = data[position + 9]
            position += 10
            if packed & 0x80:  # local colour table
                position += 3 << ((packed & 7) + 1)
            position = _skip_gif_sub_blocks(data, position + 1)  # +1: LZW minimum code size
        else:  # stray byte: Pillow skips those too; jump to the next plausible block start
            found = _GIF_BLOCK_START.search(data, position + 1)
            if not found:
                break
            position = found.start()
    else:
        if frames < cap:  # the data ran out before the trailer: the last frame may be cut short
            raise _truncated("the GIF ends before its trailer")
    return max(frames, 1)


def _skip_gif_sub_blocks(data: bytes, position: int) -> int:
    """The position after a run of data sub-blocks; a run the data ends inside is truncated."""
    while position < len(data):
        length = data[position]
        position += 1 + length
        if length == 0:
            return position
    raise _truncated("the GIF ends inside a block")


def _truncated(where: str) -> ImageRejected:
    return ImageRejected("corrupt", f"the file is truncated: {where}")


def _check_png_complete(data: bytes) -> None:
    """Every chunk whole and an IEND at the end of the chunk sequence.

    Pillow stops reading a PNG once it has the pixels of the frame it decodes: a file cut
    inside a later APNG frame, or inside the zlib checksum, would otherwise pass.
    """
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        position += 12 + length  # length, type, payload, CRC
        if position > len(data):
            raise _truncated(f"the PNG ends inside its {kind.decode('latin-1')!r} chunk")
        if kind == b"IEND":
            return
    raise _truncated("the PNG ends before its IEND chunk")
