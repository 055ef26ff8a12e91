"""The JSON API blueprint (mounted at /api)."""

from flask import Blueprint
from werkzeug.routing import BaseConverter

bp = Blueprint("api", __name__)


class ImageIdSegment(BaseConverter):
    """One path segment that is not a fixed word of the API: ``/images/upload`` is the upload
    call only, so OPTIONS and 405s there name its own methods, not those of ``/images/<id>``.
    Anything else reaches the view, which answers 404 image_not_found for a malformed id."""

    regex = r"(?!upload$)[^/]+"


bp.record_once(lambda state: state.app.url_map.converters.setdefault("image_id", ImageIdSegment))

from . import routes  # noqa: E402,F401  (routes attach themselves to bp)
