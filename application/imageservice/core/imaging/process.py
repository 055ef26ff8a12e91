"""process_image: validate an upload, read its metadata and make its derivatives in one decode."""

from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

from PIL import Image

from . import blurhash, encoding, metadata, pixels, watermark
from .model import DerivativeSpec, EncodedImage, ImageInfo, ImagingLimits, ProcessedImage
from .opening import open_within_limits


def process_image(
    data: bytes, derivatives: Sequence[DerivativeSpec], limits: ImagingLimits = ImagingLimits()
) -> ProcessedImage:
    """Validate an upload, read its metadata and make its WebP derivatives in one decode.

    Animated inputs get derivatives of their first frame.  Raises ImageRejected.
    """
    specs = sorted(derivatives, key=lambda spec: spec.long_edge, reverse=True)
    with open_within_limits(data, limits) as source:
        displayed = source.displayed_size
        largest = specs[0].long_edge if specs else blurhash.EDGE
        needed = pixels.needed_size(displayed, pixels.fit_long_edge(displayed, largest), pixels.WHOLE)
        # Before decoding, which can change the tags.
        exif, gps = metadata.exif_to_json(source.exif), metadata.gps_position(source.exif)
        current = pixels.upright_srgb(source, needed)

        # Largest first, each one resampled from the previous (cascade). Pillow releases the GIL
        # while encoding, so each WebP encode runs beside the next resize on another core.
        pending: dict[str, Future[EncodedImage]] = {}
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="encode") as encoders:
            for spec in specs:
                size = pixels.fit_long_edge(displayed, spec.long_edge)
                current = pixels.resize(current, size, resample=pixels.DERIVATIVE_RESAMPLE)
                # The next derivative is made from the unmarked pixels: a mark asked for the
                # preview must not reach the thumb.
                output = watermark.stamp(current, watermark.prepare(spec.watermark, size)) if spec.watermark else current
                pending[spec.name] = encoders.submit(encoding.encode, output, "webp", spec.quality)
            placeholder = blurhash.encode(current)
            encoded = {name: future.result() for name, future in pending.items()}

        info = ImageInfo(
            format=source.format,
            content_type=source.content_type,
            width=displayed[0],
            height=displayed[1],
            mode=source.mode,
            frames=source.frames,
            animated=source.animated,
            exif=exif,
            gps=gps,
            blurhash=placeholder,
        )
    return ProcessedImage(info=info, derivatives={spec.name: encoded[spec.name] for spec in derivatives})


def warm_up() -> None:
    """Run a tiny upload through ``process_image`` once: a fresh process's first real job
    otherwise pays ~35 ms (12 MP JPEG) for what the first call loads and sets up (codec plugins,
    colour management, the encoder threads). An imaging child calls it before it reports ready
    (adapters/imaging_pool.py); docs/READY.md has the figures."""
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((64, 48)).convert("RGB").save(buffer, "JPEG", quality=80)
    process_image(buffer.getvalue(), [DerivativeSpec("warm-up", 32)])
