"""JSON API views: parse the request, call the service, shape the answer. No rules live here."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TypeVar

from flask import current_app, jsonify, redirect, render_template, request, send_from_directory, url_for
from pydantic import BaseModel, ValidationError

from ...commands import (
    Account, AccountLimits, BatchCommand, BulkDeleteCommand, DownloadCommand, LinkCommand, ListCommand, UpdateCommand,
    UploadCommand,
)
from ...core.conversions import conversion_request_from
from ...core.errors import BadRequest, NotFound
from ...core.ids import is_id
from ...core.text import is_utf8_encodable
from .. import access_line
from ..pages.assets import VERSIONED_CACHE_CONTROL
from ..sessions import current_principal
from . import bp, swagger_ui
from .openapi import openapi_document


def _service():
    return current_app.extensions["imageservice"].service


def _principal():
    return current_principal(_service())


LIMIT_NAMES = tuple(field.name for field in dataclasses.fields(AccountLimits))
# Documents anyone may read: everything else authenticates before its body is looked at.
PUBLIC_ENDPOINTS = frozenset({"api.openapi", "api.docs", "api.docs_asset"})


@bp.before_request
def authenticate_first():
    """Who is calling is settled before any body is read: an anonymous request with a hostile
    body (100 000 nested arrays) is refused for what it is, 401, without being parsed."""
    if request.endpoint not in PUBLIC_ENDPOINTS and request.method != "OPTIONS":  # OPTIONS: Flask's own answer
        _principal()


def _json_body(required: bool = False) -> dict:
    # get_data, not request.data: that one also runs the form parser over the body.
    if not request.get_data(cache=True):
        if required:
            raise BadRequest("A JSON object body is required.", code="invalid_json")
        return {}
    if not request.is_json:
        raise BadRequest("The body must be JSON (Content-Type: application/json).", code="invalid_json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json's C scanner recurses per nesting level; get_json only catches ValueError
        raise BadRequest("The JSON is nested too deeply.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    _refuse_lone_surrogates(body)
    return body


def _refuse_lone_surrogates(body: dict) -> None:
    """JSON may spell lone UTF-16 surrogates (``"\\ud800"``); Python decodes them into strings
    that cannot be encoded, stored or logged. Walked without recursion: nesting is the client's."""
    pending: list = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and not is_utf8_encodable(value):
            raise BadRequest("The body holds text that is not valid Unicode (a lone surrogate).",
                             code="invalid_parameter")


def _params() -> dict:
    """Query parameters overlaid by the JSON body: the upload call accepts either."""
    params: dict = dict(request.args.items())
    params.update(_json_body())
    return params


Model = TypeVar("Model", bound=BaseModel)


def _validated(model: type[Model], data: dict) -> Model:
    """The request as its typed command; the first problem becomes 400 invalid_parameter."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_first_problem(exc), code="invalid_parameter") from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"] if not str(part).startswith(("list[", "str")))
    what = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        what = "cannot be changed here"
    return f"{where}: {what}." if where else f"{what}."


def _image_id(image_id: str) -> str:
    if not is_id(image_id):
        raise NotFound("No such image.", code="image_not_found")
    return image_id


def _acting_user(body: dict | None = None) -> str | None:
    """The user_id an admin acts for: the query's, else the body's; always a string."""
    value = request.args.get("user_id") or (body or {}).get("user_id")
    if value is not None and not isinstance(value, str):
        raise BadRequest("user_id must be a string.", code="invalid_parameter")
    return value or None


def _record_json(record):
    """The record as the caller may see it (GPS for its owner and admins only)."""
    principal = _principal()
    return record.to_api(include_gps=principal.admin or record.user_id == principal.user_id)


IDEMPOTENCY_HEADER = "Idempotency-Key"
# 1-255 printable ASCII characters (space included, as in the IETF draft's examples' alphabet).
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def _idempotency_key() -> str | None:
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise BadRequest(f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters.",
                         code="invalid_idempotency_key")
    return value


@bp.post("/images/upload")
def create_upload():
    key = _idempotency_key()
    ticket = _service().create_upload(_principal(), _validated(UploadCommand, _params()), key)
    access_line.note(image_id=ticket.image_id)  # the upload's one log line names what it made
    return jsonify(ticket), 201


@bp.post("/images/<image_id:image_id>/complete")
def complete_upload(image_id: str):
    result = _service().complete(_principal(), _image_id(image_id), _acting_user())
    return jsonify(result), 202


@bp.get("/images")
def list_images():
    page = _service().list_api(_principal(), _validated(ListCommand, dict(request.args.items())))
    # The records arrive as JSON text: joined, not decoded and encoded again.
    body = f'{{"images":[{",".join(page.images)}],"next_cursor":{json.dumps(page.next_cursor)}}}\n'
    return current_app.response_class(body, mimetype="application/json")


@bp.get("/images/<image_id:image_id>")
def get_image(image_id: str):
    return jsonify(_record_json(_service().get(_principal(), _image_id(image_id), _acting_user())))


@bp.patch("/images/<image_id:image_id>")
def update_image(image_id: str):
    body = _json_body(required=True)
    command = _validated(UpdateCommand, body)
    record = _service().update(_principal(), _image_id(image_id), command, _acting_user(body))
    return jsonify(_record_json(record))


@bp.get("/images/<image_id:image_id>/download")
def download_image(image_id: str):
    command = _validated(DownloadCommand, dict(request.args.items()))
    result = _service().download(_principal(), _image_id(image_id), command.variant, command.user_id)
    if command.redirect:
        return redirect(result.download_url, code=302)
    return jsonify(result)


@bp.post("/images/<image_id:image_id>/convert")
def convert_image(image_id: str):
    body = _json_body()
    conversion = conversion_request_from(body)
    result = _service().convert(_principal(), _image_id(image_id), conversion, _acting_user(body))
    return jsonify(result)


@bp.delete("/images/<image_id:image_id>")
def delete_image(image_id: str):
    _service().delete(_principal(), _image_id(image_id), _acting_user())
    return "", 204


@bp.post("/images/<image_id:image_id>/links")
def create_link(image_id: str):
    body = _json_body()
    command = _validated(LinkCommand, body)
    link = _service().create_link(_principal(), _image_id(image_id), command.expires_in, command.original,
                                  _acting_user(body))
    return jsonify(link), 201


@bp.get("/images/<image_id:image_id>/links")
def list_links(image_id: str):
    return jsonify(links=_service().list_links(_principal(), _image_id(image_id), _acting_user()))


@bp.delete("/links/<link_id>")
def revoke_link(link_id: str):
    _service().revoke_link(_principal(), link_id)
    return "", 204


@bp.post("/batches")
def create_batch():
    command = _validated(BatchCommand, _json_body(required=True))
    batch = _service().create_batch(_principal(), command.action, command.image_ids, command.convert)
    return jsonify(batch), 202


@bp.get("/batches/<batch_id>")
def get_batch(batch_id: str):
    return jsonify(_service().get_batch(_principal(), batch_id))


@bp.delete("/batches/<batch_id>")
def cancel_batch(batch_id: str):
    _service().cancel_batch(_principal(), batch_id)
    return "", 204


@bp.post("/images/delete")
def delete_images():
    command = _validated(BulkDeleteCommand, _json_body(required=True))
    return jsonify(_service().delete_images(_principal(), command.image_ids))


@bp.get("/me")
def me():
    principal = _principal()
    settings = current_app.extensions["imageservice"].settings
    limits = AccountLimits(**{name: getattr(settings, name) for name in LIMIT_NAMES})
    usage = _service().usage(principal)
    return jsonify(Account(principal.user_id, principal.admin, principal.expires_at, usage, limits))


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.get("/docs")
def docs():
    return render_template("api_docs.html", spec=openapi_document(), spec_url=url_for("api.openapi"),
                           swagger_version=swagger_ui.version())


@bp.get("/docs/swagger-ui/<version>/<name>")
def docs_asset(version: str, name: str):
    """Swagger UI's script and stylesheet from its wheel; the URL names the package version, so
    a browser may keep them for a year."""
    if name not in swagger_ui.FILES or version != swagger_ui.version():
        raise NotFound("No such file.", code="not_found")
    response = send_from_directory(swagger_ui.folder(), name, max_age=0)
    response.headers["Cache-Control"] = VERSIONED_CACHE_CONTROL
    return response
