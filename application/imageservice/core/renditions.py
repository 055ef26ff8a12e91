"""Renditions: the public sizes and formats of a shared image (docs/RENDITIONS.md).

The rules the rendition route and the share page follow, with no I/O: which widths an image
serves, which format an ``Accept`` header gets, the ``srcset``, ``sizes`` and embed HTML of a
link, and the caching headers of an answer. The set of renditions of an image is finite (a
fixed ladder of widths, four formats), so public traffic cannot ask for unbounded work.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime

from .conversions import ConversionRequest
from .errors import BadRequest
from .filenames import content_disposition, with_extension
from .formats import BY_OUTPUT
from .timeutil import from_iso

# The widths a rendition may have, besides the image's own: the breakpoints browsers pick from
# in a srcset (phones at 1x-3x, laptops, 4K screens).
WIDTH_LADDER = (64, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840)
# The longest decimal a width in a URL may have ("99999"); anything longer is no rendition.
WIDTH_DIGITS_MAX = 5

# What ``?format=`` may force.
RENDITION_FORMATS = ("jpeg", "png", "webp", "avif")
# Encoder quality per format. AVIF's scale is not WebP's: at 60 its files were 13-29 % smaller
# than WebP 80's at a PSNR 1.5 dB below to 1.7 dB above; at 80 they were larger than WebP's
# (docs/RENDITIONS.md).
RENDITION_QUALITY = {"jpeg": 80, "webp": 80, "avif": 60, "png": None}

# The og:image width crawlers are given (Open Graph's recommended 1200 px), or the closest
# the image has (Renditions.closest_width).
OG_IMAGE_WIDTH = 1200
# The CSS width an embedded image is laid out at, at most (its width/height attributes).
EMBED_MAX_WIDTH = 1200

# Browsers keep a rendition 10 minutes at most: a revoked link must stop working soon even in a
# browser's cache. The CDN keeps it long; revoking or deleting invalidates it there.
BROWSER_MAX_AGE = 600
CDN_MAX_AGE = 365 * 24 * 3600


# -- widths ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Renditions:
    """The renditions one image can have: its displayed size (after EXIF orientation) and the
    longest side a conversion may produce (``ImagingLimits.convert_max_edge``)."""

    width: int
    height: int
    max_edge: int

    def widths(self) -> tuple[int, ...]:
        """Every width a rendition of this image may have, ascending: the ladder's widths the
        image can fill, plus its own width; only those whose output stays within max_edge
        (a tall strip or a wide panorama loses the widths the conversion would refuse)."""
        candidates = sorted({*(w for w in WIDTH_LADDER if w <= self.width), self.width})
        return tuple(w for w in candidates if max(self.size_at(w)) <= self.max_edge)

    def allows(self, width: int) -> bool:
        """Whether ``width`` is a rendition of this image (anything else answers 404)."""
        return width in self.widths()

    def size_at(self, width: int) -> tuple[int, int]:
        """A rendition's size: ``width`` and the height that keeps the aspect ratio (rounded as
        the conversion rounds it)."""
        return width, max(1, round(self.height * width / self.width))

    def full_width(self) -> int | None:
        """The largest rendition (the share page's download), or None when there is none."""
        widths = self.widths()
        return widths[-1] if widths else None

    def closest_width(self, wanted: int) -> int | None:
        """The smallest rendition at least ``wanted`` wide, else the largest there is."""
        widths = self.widths()
        return next((w for w in widths if w >= wanted), widths[-1] if widths else None)


_CANONICAL_WIDTH = re.compile(r"[1-9][0-9]{0,%d}" % (WIDTH_DIGITS_MAX - 1))


def parse_width(text: str) -> int | None:
    """The width a URL segment names, or None: only the canonical decimal ("640", never "0640"
    or "+640"), so one rendition has one URL and one CDN cache entry."""
    return int(text) if _CANONICAL_WIDTH.fullmatch(text) else None


# -- formats -----------------------------------------------------------------------------------


_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
_OWS = " \t"  # HTTP's optional whitespace: what the CloudFront Function trims too


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """``(media range, q)`` pairs of an Accept header (RFC 9110 12.5.1), in order, lower-cased.

    An element whose q-value breaks the grammar (``q=abc``, ``q=1.5``) is left out: it accepts
    nothing. Parameters other than q are ignored (``image/avif;codecs=av01`` is image/avif).
    """
    pairs = []
    for element in (header or "").split(","):
        media_range, *params = (part.strip(_OWS) for part in element.split(";"))
        if not media_range:
            continue
        q: float | None = 1.0
        for param in params:
            name, _, value = (piece.strip(_OWS) for piece in param.partition("="))
            if name.lower() == "q":
                q = float(value) if _QVALUE.fullmatch(value) else None
        if q is not None:
            pairs.append((media_range.lower(), q))
    return pairs


def accepts(pairs: list[tuple[str, float]], media_type: str) -> bool:
    """Whether the header names ``media_type`` itself with a q above 0 and never refuses it.

    Wildcards do not count: ``image/*`` and ``*/*`` are what every client sends, while browsers
    that decode AVIF or WebP say so by name.
    """
    named = [q for media_range, q in pairs if media_range == media_type]
    return bool(named) and min(named) > 0


def accept_class(header: str | None) -> str:
    """``avif``, ``webp`` or ``other``: all that matters of an Accept header here. The CDN keys
    its cache on this class, computed with the same rules by
    infrastructure/cloudfront/accept-class.js."""
    pairs = parse_accept(header)
    for accept_type in ("avif", "webp"):
        if accepts(pairs, f"image/{accept_type}"):
            return accept_type
    return "other"


def negotiate_format(accept: str | None, *, alpha: bool, forced: str | None = None) -> str:
    """The format of a rendition: ``forced`` (``?format=``) when given, else AVIF when the
    client accepts image/avif, else WebP when it accepts image/webp, else JPEG (PNG for an
    image with transparency). Raises BadRequest (``invalid_parameter``) for another ``forced``."""
    if forced is not None:
        if forced not in RENDITION_FORMATS:
            raise BadRequest(f"format must be one of {', '.join(RENDITION_FORMATS)}.", code="invalid_parameter")
        return forced
    return format_for_class(accept_class(accept), alpha=alpha)


def format_for_class(accept: str, *, alpha: bool) -> str:
    """The format an accept class gets (see negotiate_format)."""
    if accept in ("avif", "webp"):
        return accept
    return "png" if alpha else "jpeg"


# Pillow modes with an alpha band. A palette or grey image with a transparent colour (a GIF's,
# a PNG's tRNS) is recorded as P or L and counts as opaque: a client that takes neither AVIF
# nor WebP then gets it on white, as JPEG.
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def has_alpha(mode: str | None) -> bool:
    """Whether an image whose record says ``mode`` has an alpha band."""
    return mode in ALPHA_MODES


def rendition_request(width: int, fmt: str) -> ConversionRequest:
    """The conversion that makes a rendition: ``width`` wide, aspect kept, never enlarged, at
    the format's rendition quality; metadata is never carried over (imaging.convert_image)."""
    return ConversionRequest(format=fmt, width=width, quality=RENDITION_QUALITY[fmt])


# -- markup ------------------------------------------------------------------------------------


def rendition_url(page_url: str, width: int) -> str:
    """The absolute URL of a rendition, under the link's share page URL."""
    return f"{page_url.rstrip('/')}/w/{width}"


def srcset(page_url: str, renditions: Renditions) -> str:
    """``<url> 64w, <url> 128w, ...``: every rendition the image can fill."""
    return ", ".join(f"{rendition_url(page_url, w)} {w}w" for w in renditions.widths())


def display_width(renditions: Renditions) -> int:
    """The CSS width an embedded image is laid out at: its own, at most EMBED_MAX_WIDTH."""
    return min(renditions.width, EMBED_MAX_WIDTH)


def sizes(renditions: Renditions) -> str:
    """The full viewport width on screens narrower than the layout width, else that width."""
    width = display_width(renditions)
    return f"(max-width: {width}px) 100vw, {width}px"


def embed_html(page_url: str, renditions: Renditions, alt: str) -> str:
    """An ``<img>`` with src, srcset, sizes, width, height and alt, every value escaped; the
    empty string for an image with no rendition at all."""
    layout = display_width(renditions)
    src = renditions.closest_width(layout)
    if src is None:
        return ""
    attributes = {
        "src": rendition_url(page_url, src),
        "srcset": srcset(page_url, renditions),
        "sizes": sizes(renditions),
        "width": str(layout),
        "height": str(renditions.size_at(layout)[1]),
        "alt": alt,
    }
    return "<img " + " ".join(f'{name}="{html.escape(value, quote=True)}"' for name, value in attributes.items()) + ">"


# -- answers -----------------------------------------------------------------------------------


def cache_control(expires_at: str, now: datetime) -> str:
    """``Cache-Control`` of a rendition: public, kept by browsers BROWSER_MAX_AGE and by the
    CDN CDN_MAX_AGE, neither beyond the moment the link expires."""
    left = max(0, int((from_iso(expires_at) - now).total_seconds()))
    return f"public, max-age={min(BROWSER_MAX_AGE, left)}, s-maxage={min(CDN_MAX_AGE, left)}"


def rendition_etag(image_id: str, width: int, fmt: str, version: str) -> str:
    """A strong ETag (quoted) for one rendition: it changes with the image, the width, the
    format and ``version`` (the rendition bytes' digest, or anything that changes with them)."""
    digest = hashlib.sha256("\n".join((image_id, str(width), fmt, version)).encode()).digest()
    return '"' + base64.urlsafe_b64encode(digest[:18]).decode() + '"'


def rendition_filename(filename: str, width: int, fmt: str) -> str:
    """``holiday-1080.webp``: the upload's sanitised stem, the width and the format's extension."""
    return with_extension(filename, BY_OUTPUT[fmt].extensions[0], f"-{width}")


def rendition_headers(
    *, fmt: str, etag: str, filename: str, width: int, expires_at: str, now: datetime
) -> dict[str, str]:
    """The headers of a rendition answer (200, and the same on a 304)."""
    return {
        "Content-Type": BY_OUTPUT[fmt].media_type,
        "Vary": "Accept",
        "ETag": etag,
        "Cache-Control": cache_control(expires_at, now),
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(rendition_filename(filename, width, fmt), attachment=False),
    }
