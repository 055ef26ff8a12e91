"""The browser UI blueprint: server-rendered pages over the same service as the API.

Assets are plain files under ``web/static`` (no build step); templates reach them through
``asset_url(name)``, which appends a content hash so they can be cached for a year.
"""

from flask import Blueprint

bp = Blueprint("pages", __name__, template_folder="../templates", static_folder="../static", static_url_path="/static")

from . import views  # noqa: E402,F401
