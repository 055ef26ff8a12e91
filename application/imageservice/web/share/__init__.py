"""The public side of share links (docs/DESIGN.md "Share links"): the share page, its renditions
and, when the link allows it, the original. No cookie is read or set here (web/sessions.py
skips the prefix, the page helpers leave the visitor alone), so a CDN may cache what it is told
to, and an unknown, revoked or expired link answers 404 whatever it was."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from ...core import renditions
from ...core.errors import NotFound
from ...core.filenames import content_disposition, download_name, stem

bp = Blueprint("share", __name__)
PREFIX = "/s/"


def _service():
    return current_app.extensions["imageservice"].service


def _link_id(link_id: str) -> str:
    """A link id's shape (URL-safe base64) checked before any read: other text is unknown."""
    if not (16 <= len(link_id) <= 64 and link_id.isascii() and all(c.isalnum() or c in "-_" for c in link_id)):
        raise NotFound("No such share link.", code="link_not_found")
    return link_id


@bp.get("/s/<link_id>")
def share_page(link_id: str):
    shared = _service().shared(_link_id(link_id), count_view=True)
    image, sizes = shared.image, shared.sizes
    full = sizes.full_width()
    return render_template(
        "share.html", image=image, base=shared.base, title=stem(image.filename) or "Shared image",
        src=renditions.rendition_url(shared.base, sizes.closest_width(renditions.display_width(sizes)) or 0),
        srcset=renditions.srcset(shared.base, sizes), sizes=renditions.sizes(sizes),
        og_image=renditions.rendition_url(shared.base, sizes.closest_width(renditions.OG_IMAGE_WIDTH) or 0),
        download=f"{shared.base}/original" if shared.link.original else renditions.rendition_url(shared.base, full or 0),
        original=shared.link.original,
    )


@bp.get("/s/<link_id>/w/<width>")
def rendition(link_id: str, width: str):
    made = _service().rendition(_link_id(link_id), renditions.parse_width(width), request.headers.get("Accept"),
                                request.args.get("format"), request.headers.get("If-None-Match"))
    response = Response(made.data or b"", status=304 if made.data is None else 200)
    response.headers.update(made.headers)
    if made.data is None:
        del response.headers["Content-Type"]
    return response


@bp.get("/s/<link_id>/original")
def original(link_id: str):
    data, image = _service().shared_original(_link_id(link_id))
    response = Response(data, mimetype=image.content_type or "application/octet-stream")
    response.headers["Content-Disposition"] = content_disposition(
        download_name(image.filename, image.content_type), attachment=True)
    response.headers["Cache-Control"] = "private, no-store"
    return response
