"""Public renditions of a shared image: which widths exist, which format an Accept header gets,
and the srcset, sizes and embed HTML that point at them (docs/DESIGN.md "Share links")."""

from __future__ import annotations

import hashlib
import html

LADDER = (64, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840)
FORMATS = ("jpeg", "png", "webp", "avif")
SIZES = "(max-width: 828px) 100vw, 828px"
OG_WIDTH = 1200
# Browsers may keep a rendition 10 minutes; the CDN a day (a revocation invalidates it there).
CACHE_CONTROL = "public, max-age=600, s-maxage=86400"


def widths(image_width: int) -> list[int]:
    """The widths an image of ``image_width`` serves: the ladder's up to it, and its own."""
    return sorted({w for w in LADDER if w <= image_width} | {image_width})


def allowed(width: int, image_width: int) -> bool:
    return width in widths(image_width)


def fitting(target: int, image_width: int) -> int:
    """The served width closest to ``target`` without going over it (the smallest when none fits)."""
    served = widths(image_width)
    below = [w for w in served if w <= target]
    return below[-1] if below else served[0]


def negotiate(accepted: dict[str, float], has_alpha: bool) -> str:
    """The format for an Accept header parsed into media types and their q-values: AVIF when
    image/avif is accepted, else WebP when image/webp is, else JPEG (PNG with alpha). Wildcards
    say nothing: browsers name the formats they decode."""
    for media_type, fmt in (("image/avif", "avif"), ("image/webp", "webp")):
        if accepted.get(media_type, 0) > 0:
            return fmt
    return "png" if has_alpha else "jpeg"


def etag(image_id: str, sha256: str | None, width: int, fmt: str) -> str:
    """A strong validator for one rendition: renditions are made once from one original."""
    digest = hashlib.sha256(f"{image_id}/{sha256}/{width}/{fmt}".encode()).hexdigest()[:32]
    return f'"{digest}"'


def srcset(base: str, image_width: int) -> str:
    return ", ".join(f"{base}/w/{w} {w}w" for w in widths(image_width))


def embed_html(base: str, image_width: int, image_height: int, alt: str) -> str:
    src = f"{base}/w/{fitting(828, image_width)}"
    return (f'<img src="{html.escape(src)}" srcset="{html.escape(srcset(base, image_width))}" '
            f'sizes="{SIZES}" width="{image_width}" height="{image_height}" alt="{html.escape(alt)}">')
