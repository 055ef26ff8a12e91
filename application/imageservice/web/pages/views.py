"""Page views. Every visit makes (or reuses) the visitor's workspace.

The pages are rendered on the server from the same ``ImageService`` the API uses; the browser
scripts then talk to the JSON API for everything that changes (uploads, edits, conversions).
Asset hashing lives in ``assets``, template formatting in ``filters``, server-owned constants
in ``constants``; this module wires them to Flask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import current_app, render_template, request, send_from_directory

from ...core.errors import NotFound
from ...core.ids import is_id
from ...core.records import TERMINAL
from ...service import UPLOAD_CONTENT_TYPES
from ..sessions import csrf_token, current_principal, ensure_workspace
from . import bp
from .assets import MODULES_FOLDER, MODULES_URL_PREFIX, AssetVersions, cache_control
from .constants import accept_attribute, page_constants
from .filters import TEMPLATE_FILTERS, exif_rows

NOT_FOUND_WORDS = ("There is no image at this address in your workspace. It may have been deleted, "
                   "or it belongs to another workspace.")

for _name, _filter in TEMPLATE_FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


def _components():
    return current_app.extensions["imageservice"]


def _constants() -> dict[str, Any]:
    settings = _components().settings
    return page_constants(max_upload_bytes=settings.max_upload_bytes, convert_max_edge=settings.convert_max_edge,
                          max_description_length=settings.max_description_length,
                          quarantine_days=settings.quarantine_days, page_size_max=settings.page_size_max,
                          upload_content_types=UPLOAD_CONTENT_TYPES)


# -- pages ----------------------------------------------------------------------------------------


def _workspace_context() -> dict[str, Any]:
    """The visitor's workspace (made now if needed), its principal and its quota use."""
    components = _components()
    workspace = ensure_workspace(components.settings.session_ttl)
    principal = current_principal(components.service)
    return {
        "workspace": workspace,
        "principal": principal,
        "usage": components.service.usage(principal),
    }


@bp.get("/")
def index():
    context = _workspace_context()
    return render_template("index.html", accept=accept_attribute(UPLOAD_CONTENT_TYPES), **context)


@bp.get("/images/<image_id>")
def image_detail(image_id: str):
    context = _workspace_context()
    if not is_id(image_id):
        raise NotFound(NOT_FOUND_WORDS, code="image_not_found")
    try:
        record = _components().service.get(context["principal"], image_id)
    except NotFound:
        raise NotFound(NOT_FOUND_WORDS, code="image_not_found") from None
    return render_template(
        "image.html",
        image=record.to_api(include_gps=True),
        settled=record.status in TERMINAL,
        exif_rows=exif_rows(record.exif or {}),
        **context,
    )


# -- cache-busted assets --------------------------------------------------------------------------


_assets = AssetVersions()


def _static_folder() -> Path:
    return Path(bp.static_folder)  # type: ignore[arg-type]


def asset_url(name: str) -> str:
    """``/static/<name>?v=<first 12 hex of its sha256>``: a new content gets a new URL."""
    return f"{bp.static_url_path}/{name}?v={_assets.version(_static_folder(), name)}"


def module_url(name: str) -> str:
    """``/static/m/<version of static/js>/<name>``: the URL of a script module."""
    _assets.version(_static_folder() / MODULES_FOLDER, name)  # refuses names outside the folder
    return f"{bp.static_url_path}/{MODULES_URL_PREFIX}/{_assets.tree(_static_folder() / MODULES_FOLDER)}/{name}"


@bp.get(f"/static/{MODULES_URL_PREFIX}/<version>/<path:name>")
def script_module(version: str, name: str):
    """A module under its folder's version: immutable when the version is current; a stale
    version (a page from before a deploy) still gets today's file, but not for keeps."""
    folder = _static_folder() / MODULES_FOLDER
    response = send_from_directory(folder, name, mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = cache_control(version == _assets.tree(folder))
    return response


@bp.app_context_processor
def page_helpers() -> dict[str, Any]:
    constants = _constants()
    # The public share pages read no cookie: their visitors are nobody's (web/share).
    token = None if request.blueprint == "share" else csrf_token()
    return {"asset_url": asset_url, "module_url": module_url, "csrf_token": token,
            "constants": constants, "constants_json": json.dumps(constants, separators=(",", ":"))}


# The app's own static route (Flask's default) serves the same folder and matches first.
STATIC_ENDPOINTS = frozenset({"static", f"{bp.name}.static"})


@bp.after_app_request
def cache_static(response):
    """Versioned asset URLs never change content, so browsers may keep them for a year."""
    if request.endpoint in STATIC_ENDPOINTS and response.status_code in (200, 304):
        name = (request.view_args or {}).get("filename", "")
        folder = current_app.static_folder if request.endpoint == "static" else bp.static_folder
        try:
            current = _assets.version(Path(folder), name) if folder else None
        except FileNotFoundError:
            current = None
        response.headers["Cache-Control"] = cache_control(current is not None and request.args.get("v") == current)
    return response
