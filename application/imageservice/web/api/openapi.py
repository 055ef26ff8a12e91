"""The OpenAPI 3.1 document, generated: schemas from the classes that validate the requests and
shape the answers (``commands.py``, ``core/conversions.py``, ``core/records.py``), plus the
table of paths below. Nothing here restates a field by hand, so spec and checks cannot drift."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

from ... import __version__
from ...commands import (
    Completion,
    Conversion,
    DownloadCommand,
    DownloadLink,
    ListCommand,
    UpdateCommand,
    UploadCommand,
    UploadTicket,
    UsageReport,
)
from ...core import conversions
from ...core.records import PUBLIC_FIELDS, STATUSES, ImageRecord

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    400: "Malformed request", 401: "No valid token or session", 403: "Forbidden",
    404: "Not found", 409: "Conflict", 413: "Too large", 415: "Unsupported media type",
    422: "Unprocessable", 429: "Too many requests (see Retry-After)",
}


# -- schemas -------------------------------------------------------------------------------------


def _schema(kind: Any, mode: str = "validation") -> dict:
    """A class's JSON Schema (draft 2020-12, which OpenAPI 3.1 uses as is), refs into components."""
    schema = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    schema.pop("$defs", None)
    return schema


def _image_schema() -> dict:
    """The record as the API shows it: ImageRecord's public fields (its internals never leave)."""
    schema = _schema(ImageRecord, "serialization")
    schema["properties"] = {name: schema["properties"][name] for name in PUBLIC_FIELDS}
    schema["required"] = ["image_id", "user_id", "status"]
    schema["properties"]["status"]["enum"] = list(STATUSES)
    schema["properties"]["error"] = {"anyOf": [{"$ref": REF.format(model="ErrorBody")}, {"type": "null"}]}
    # ImageRecord types gps as dict[str, float] for brevity; altitude may be unknown (null).
    schema["properties"]["gps"] = {"anyOf": [{"type": "object", "required": ["latitude", "longitude"], "properties": {
        "latitude": {"type": "number"}, "longitude": {"type": "number"},
        "altitude": {"type": ["number", "null"]}}}, {"type": "null"}], "description": "Owner only."}
    schema["title"] = "Image"
    return schema


def _convert_schema() -> dict:
    """ConversionRequest's fields, with the bounds conversion_request_from enforces."""
    c = conversions
    schema = _schema(c.ConversionRequest)
    props = schema["properties"]
    props["format"].update(enum=list(c.CONVERT_FORMATS), description="jpg and tif are accepted as aliases.")
    props["fit"].update(enum=list(c.FITS))
    for edge in ("width", "height"):
        props[edge] = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None}
    props["quality"] = {"anyOf": [{"type": "integer", "minimum": c.QUALITY_RANGE[0], "maximum": c.QUALITY_RANGE[1]},
                                  {"type": "null"}], "default": None,
                        "description": "Ignored (and not part of the cache key) for lossless formats."}
    props["enlarge"]["description"] = "Allow up to 2x the source's long edge (default: never larger)."
    props["watermark"] = {"anyOf": [{"$ref": REF.format(model="WatermarkSpec")}, {"type": "null"}], "default": None}
    props["user_id"] = {"type": "string", "description": "Admin tokens only: act for this user."}
    schema["additionalProperties"] = True
    schema["title"] = "ConvertRequest"
    return schema


def _watermark_schema() -> dict:
    c = conversions
    schema = _schema(c.WatermarkSpec)
    props = schema["properties"]
    props["text"] = {"type": "string", "minLength": 1, "maxLength": c.WATERMARK_TEXT_MAX, "pattern": "\\S"}
    props["image_id"] = {"type": "string", "minLength": 1,
                         "description": "Another ready image of yours, used as a logo."}
    props["position"].update(enum=list(c.WATERMARK_POSITIONS))
    for name, (low, high) in (("opacity", c.OPACITY_RANGE), ("scale", c.SCALE_RANGE)):
        props[name].update(minimum=low, maximum=high)
    props["scale"]["description"] = "The mark's width as a fraction of the output's width."
    schema["oneOf"] = [{"required": ["text"]}, {"required": ["image_id"]}]
    schema["additionalProperties"] = False
    return schema


def _schemas() -> dict:
    error_body = {"type": "object", "required": ["code", "message"],
                  "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
    return {
        "Image": _image_schema(),
        "UploadRequest": _schema(UploadCommand),
        "UpdateRequest": _schema(UpdateCommand),
        "ConvertRequest": _convert_schema(),
        "WatermarkSpec": _watermark_schema(),
        "UploadTicket": _schema(UploadTicket, "serialization"),
        "Completion": _schema(Completion, "serialization"),
        "Download": _schema(DownloadLink, "serialization"),
        "Conversion": _schema(Conversion, "serialization"),
        "Usage": _schema(UsageReport, "serialization"),
        "ErrorBody": error_body,
        "Error": {"type": "object", "required": ["error"], "properties": {"error": _ref("ErrorBody")}},
    }


# -- paths ---------------------------------------------------------------------------------------


def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


def _body(name: str, required: bool) -> dict:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


def _query(model: Any) -> list[dict]:
    """A command's fields as query parameters (the nullable branch dropped: absent means null)."""
    schema = _schema(model)
    params = []
    for name, prop in schema["properties"].items():
        variants = [v for v in prop.get("anyOf", [prop]) if v.get("type") != "null"]
        plain = dict(variants[0]) if len(variants) == 1 else {"anyOf": variants}
        plain.pop("title", None)
        plain.pop("description", None)
        if prop.get("default") is not None:
            plain["default"] = prop["default"]
        params.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                       "schema": plain, "description": prop.get("description", "")})
    return params


IMAGE_ID = {"name": "image_id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The image id (ULID)."}
ACT_AS = {"name": "user_id", "in": "query", "required": False, "schema": {"type": "string"},
          "description": "Admin tokens only: act for this user."}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "description": "1-255 printable ASCII characters (else 400 invalid_idempotency_key). Within 24 h, the same key with the same body answers the same "
                   "image_id; with another body 422 idempotency_key_reused; while the first is running 409 "
                   "idempotency_key_in_flight.",
}


def _paths() -> dict:
    return {
        "/api/images/upload": {"post": {
            "summary": "Start an upload: get a presigned URL to PUT the bytes to",
            # The same fields are accepted as query parameters (curl-friendly; the body wins);
            # the document states one form, so that a request is valid or not in one way.
            "description": "The UploadRequest fields may also be sent as query parameters instead of a body.",
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": _body("UploadRequest", required=True),
            "responses": {"201": _json(_ref("UploadTicket"), "Upload URL issued"),
                          **_errors(400, 401, 403, 409, 413, 415, 422, 429)},
        }},
        "/api/images/{image_id}/complete": {"post": {
            "summary": "Tell the service the upload finished (processing starts; idempotent)",
            "parameters": [IMAGE_ID, ACT_AS],
            "responses": {"202": _json(_ref("Completion"), "Queued"), **_errors(401, 403, 404, 409)},
        }},
        "/api/images": {"get": {
            "summary": "List your images, newest first",
            "parameters": _query(ListCommand),
            "responses": {"200": _json({"type": "object", "required": ["images", "next_cursor"], "properties": {
                "images": {"type": "array", "items": _ref("Image")},
                "next_cursor": {"type": ["string", "null"]}}}, "A page of images"), **_errors(400, 401, 403)},
        }},
        "/api/images/{image_id}": {
            "get": {"summary": "One image record", "parameters": [IMAGE_ID, ACT_AS],
                    "responses": {"200": _json(_ref("Image"), "The record"), **_errors(401, 403, 404)}},
            "patch": {"summary": "Change tags and description", "parameters": [IMAGE_ID, ACT_AS],
                      "requestBody": _body("UpdateRequest", required=True),
                      "responses": {"200": _json(_ref("Image"), "The updated record"),
                                    **_errors(400, 401, 403, 404, 409)}},
            "delete": {"summary": "Delete the image, its derivatives and conversions",
                       "parameters": [IMAGE_ID, ACT_AS],
                       "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)}},
        },
        "/api/images/{image_id}/download": {"get": {
            "summary": "A short-lived signed download URL",
            "parameters": [IMAGE_ID, *_query(DownloadCommand)],
            "responses": {"200": _json(_ref("Download"), "Signed URL"), "302": {"description": "Redirect to the URL"},
                          **_errors(400, 401, 403, 404, 409)},
        }},
        "/api/images/{image_id}/convert": {"post": {
            "summary": "Convert and resize (optionally watermark); the result is cached per parameters",
            "parameters": [IMAGE_ID, ACT_AS],
            "requestBody": _body("ConvertRequest", required=True),
            "responses": {"200": _json(_ref("Conversion"), "Converted"),
                          **_errors(400, 401, 403, 404, 409, 422, 429)},
        }},
        "/api/me": {"get": {
            "summary": "Who you are, your usage (conversions included) and the limits",
            "responses": {"200": _json({"type": "object", "properties": {
                "user_id": {"type": "string"}, "admin": {"type": "boolean"},
                "expires_at": {"type": ["string", "null"]}, "usage": _ref("Usage"),
                "limits": {"type": "object", "additionalProperties": {"type": "integer"}}}}, "Caller"),
                **_errors(401)},
        }},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": {"description": "Alive"}}}},
        "/readyz": {"get": {"summary": "Readiness of every backend", "security": [],
                            "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}}}},
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cloud Image Service API",
            "version": __version__,
            "description": "Upload images through presigned URLs; list, inspect, convert, download and delete them.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from `imageservice token create USER_ID`."},
                "session": {"type": "apiKey", "in": "cookie", "name": "imageservice_session",
                            "description": "Browser workspace; writes also need the X-CSRF-Token header."},
            },
            "schemas": _schemas(),
            "responses": {f"E{status}": _json(_ref("Error"), text) for status, text in ERROR_STATUSES.items()},
        },
    }

