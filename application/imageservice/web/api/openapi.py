"""The OpenAPI 3.1 description of the JSON API, built from Python so it stays next to the views."""

from __future__ import annotations

from functools import lru_cache

from ... import __version__
from ...core.imaging import CONVERT_FORMATS, FITS
from ...core.records import STATUSES



def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


def _param(name: str, where: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


IMAGE_ID = _param("image_id", "path", {"type": "string"}, "The image id (ULID).", required=True)
ACT_AS = _param("user_id", "query", {"type": "string"}, "Admin tokens only: act for this user.")


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    nullable_int = {"type": ["integer", "null"]}
    nullable_str = {"type": ["string", "null"]}
    derivative = {
        "type": "object",
        "properties": {
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "format": {"type": "string"}, "bytes": {"type": "integer"},
        },
    }
    image = {
        "type": "object",
        "required": ["image_id", "user_id", "status"],
        "properties": {
            "image_id": {"type": "string", "description": "Time-sortable unique id (ULID)."},
            "user_id": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "filename": {"type": "string"},
            "content_type": nullable_str,
            "size": nullable_int,
            "tags": {"type": "array", "items": {"type": "string"}},
            "description": {"type": "string"},
            "created_at": nullable_str, "uploaded_at": nullable_str,
            "processed_at": nullable_str, "expires_at": nullable_str,
            "width": nullable_int, "height": nullable_int,
            "format": nullable_str, "mode": nullable_str, "frames": nullable_int,
            "animated": {"type": ["boolean", "null"]},
            "sha256": nullable_str,
            "exif": {"type": "object", "additionalProperties": True,
                     "description": "EXIF tags by Pillow's ExifTags.TAGS names."},
            "gps": {"type": ["object", "null"], "properties": {
                "latitude": {"type": "number"}, "longitude": {"type": "number"},
                "altitude": {"type": ["number", "null"]}}},
            "derivatives": {"type": "object", "additionalProperties": derivative},
            "blurhash": nullable_str,
            "error": {"oneOf": [{"type": "null"}, _ref("ErrorBody")]},
        },
    }
    upload_request = {
        "type": "object",
        "properties": {
            "content_type": {"type": "string", "example": "image/jpeg"},
            "size": {"type": "integer", "minimum": 1},
            "filename": {"type": "string"},
            "tags": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
            "description": {"type": "string"},
            "user_id": {"type": "string", "description": "Your own (or any, with an admin token)."},
        },
    }
    convert_request = {
        "type": "object",
        "required": ["format"],
        "properties": {
            "format": {"type": "string", "enum": list(CONVERT_FORMATS)},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "fit": {"type": "string", "enum": list(FITS), "default": "contain"},
            "quality": {"type": "integer", "minimum": 1, "maximum": 100},
        },
    }
    download = {
        "type": "object",
        "properties": {"download_url": {"type": "string"}, "expires_at": {"type": "string"}},
    }
    error_body = {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    }
    error = {"type": "object", "required": ["error"], "properties": {"error": _ref("ErrorBody")}}
    responses = {
        f"E{status}": _json(_ref("Error"), text)
        for status, text in {
            400: "Malformed request", 401: "No valid token or session", 403: "Forbidden",
            404: "Not found", 409: "Conflict", 413: "Too large", 415: "Unsupported media type",
            422: "Unprocessable", 429: "Too many requests",
        }.items()
    }
    list_params = [
        _param("user_id", "query", {"type": "string"}, "Your own, or any with an admin token."),
        _param("tag", "query", {"type": "string"}, "Only images with this tag."),
        _param("status", "query", {"type": "string", "enum": list(STATUSES)}, "Only images in this state."),
        _param("since", "query", {"type": "string", "format": "date-time"}, "created_at on or after (ISO 8601)."),
        _param("until", "query", {"type": "string", "format": "date-time"}, "created_at on or before (ISO 8601)."),
        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "Page size."),
        _param("cursor", "query", {"type": "string"}, "next_cursor of the previous page."),
    ]
    paths = {
        "/api/images/upload": {"post": {
            "summary": "Start an upload: get a presigned URL to PUT the bytes to",
            "parameters": [
                _param(n, "query", {"type": "string"}, f"{n} (also accepted in the JSON body)")
                for n in ("content_type", "size", "filename", "tags", "description", "user_id")
            ],
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("UploadRequest")}}},
            "responses": {"201": _json(_ref("UploadTicket"), "Upload URL issued"),
                          **_errors(400, 401, 403, 409, 413, 415, 429)},
        }},
        "/api/images/{image_id}/complete": {"post": {
            "summary": "Tell the service the upload finished (processing starts; idempotent)",
            "parameters": [IMAGE_ID, ACT_AS],
            "responses": {"202": _json({"type": "object", "properties": {
                "image_id": {"type": "string"}, "status": {"type": "string"}}}, "Queued"),
                **_errors(401, 403, 404, 409)},
        }},
        "/api/images": {"get": {
            "summary": "List your images, newest first",
            "parameters": list_params,
            "responses": {"200": _json({"type": "object", "properties": {
                "images": {"type": "array", "items": _ref("Image")},
                "next_cursor": nullable_str}}, "A page of images"), **_errors(400, 401, 403)},
        }},
        "/api/images/{image_id}": {
            "get": {"summary": "One image record", "parameters": [IMAGE_ID, ACT_AS],
                    "responses": {"200": _json(_ref("Image"), "The record"), **_errors(401, 403, 404)}},
            "patch": {"summary": "Change tags and description", "parameters": [IMAGE_ID, ACT_AS],
                      "requestBody": {"required": True, "content": {"application/json": {"schema": {
                          "type": "object", "properties": {
                              "tags": upload_request["properties"]["tags"], "description": {"type": "string"}}}}}},
                      "responses": {"200": _json(_ref("Image"), "The updated record"),
                                    **_errors(400, 401, 403, 404, 409)}},
            "delete": {"summary": "Delete the image, its derivatives and conversions",
                       "parameters": [IMAGE_ID, ACT_AS],
                       "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)}},
        },
        "/api/images/{image_id}/download": {"get": {
            "summary": "A short-lived signed download URL",
            "parameters": [
                IMAGE_ID, ACT_AS,
                _param("variant", "query", {"type": "string", "enum": ["original", "thumb", "preview"],
                                            "default": "original"}, "Which file."),
                _param("redirect", "query", {"type": "string", "enum": ["1"]}, "Answer 302 to the URL."),
            ],
            "responses": {"200": _json(_ref("Download"), "Signed URL"), "302": {"description": "Redirect to the URL"},
                          **_errors(400, 401, 403, 404, 409)},
        }},
        "/api/images/{image_id}/convert": {"post": {
            "summary": "Convert and resize; the result is cached per parameters",
            "parameters": [IMAGE_ID, ACT_AS],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ConvertRequest")}}},
            "responses": {"200": _json({"allOf": [_ref("Download"), {"type": "object", "properties": {
                "format": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
                "bytes": {"type": "integer"}}}]}, "Converted"), **_errors(400, 401, 403, 404, 409, 422)},
        }},
        "/api/me": {"get": {
            "summary": "Who you are, your usage and the limits",
            "responses": {"200": _json({"type": "object"}, "Caller"), **_errors(401)},
        }},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": {"description": "Alive"}}}},
        "/readyz": {"get": {"summary": "Readiness of every backend", "security": [],
                            "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cloud Image Service API",
            "version": __version__,
            "description": "Upload images through presigned URLs; list, inspect, convert, download and delete them.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from `imageservice token create USER_ID`."},
                "session": {"type": "apiKey", "in": "cookie", "name": "imageservice_session",
                            "description": "Browser workspace; writes also need the X-CSRF-Token header."},
            },
            "schemas": {
                "Image": image, "UploadRequest": upload_request, "ConvertRequest": convert_request,
                "Download": download, "ErrorBody": error_body, "Error": error,
                "UploadTicket": {"type": "object", "properties": {
                    "image_id": {"type": "string"}, "upload_url": {"type": "string"},
                    "upload_method": {"type": "string", "enum": ["PUT"]},
                    "upload_headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "expires_at": {"type": "string"}, "status": {"type": "string"}}},
            },
            "responses": responses,
        },
    }
