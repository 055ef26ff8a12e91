"""The OpenAPI 3.1 document, generated: schemas from the classes that validate the requests and
shape the answers (``commands.py``, ``core/records.py``, and the rules on the fields of
``core/conversions.py``, which its checks read too: ``core/fieldrules.py``), plus the table of
operations below. Nothing here restates a field by hand, so spec and checks cannot drift.

Written for client generators as much as for readers (docs/API.md): every schema an integrator
meets has a component named with the API's noun, every enumeration is its own component, every
object says ``additionalProperties: false``, every operation has an ``operationId``, a tag and an
example, so a generated client is typed throughout."""

from __future__ import annotations

import dataclasses
import inspect
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

from ... import __version__
from ...commands import (
    DOWNLOAD_VARIANTS,
    Account,
    AccountLimits,
    Completion,
    Conversion,
    DownloadCommand,
    BatchCommand,
    BulkDeleteCommand,
    DownloadLink,
    Link,
    LinkCommand,
    ListCommand,
    UpdateCommand,
    UploadCommand,
    UploadTicket,
    UsageReport,
)
from ...core import batches, conversions, fieldrules
from ...core.fieldrules import FieldRule
from ...core.records import PUBLIC_FIELDS, STATUSES, ImageRecord
from . import examples

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    400: "Malformed request", 401: "No valid token or session", 403: "Forbidden",
    404: "Not found", 409: "Conflict", 413: "Too large", 415: "Unsupported media type",
    422: "Unprocessable", 429: "Too many requests (see Retry-After)",
}
ENUMS = {
    "ImageStatus": STATUSES, "ConvertFormat": conversions.CONVERT_FORMATS, "Fit": conversions.FITS,
    "WatermarkPosition": conversions.WATERMARK_POSITIONS, "DownloadVariant": DOWNLOAD_VARIANTS,
}
# Which enumeration a command's field holds, wherever it appears (a body's property or a query parameter).
FIELD_ENUMS = {"status": "ImageStatus", "variant": "DownloadVariant"}
# The core values whose fields carry their own rules (core/fieldrules.py), by component name.
# ConvertRequest is the body of convert_image, and of anything else that asks for a conversion.
RULED_MODELS = {"ConvertRequest": conversions.ConversionRequest, "Watermark": conversions.WatermarkSpec}
RULE_KEYWORDS = {"minimum": "minimum", "maximum": "maximum", "min_length": "minLength",
                 "max_length": "maxLength", "pattern": "pattern"}  # FieldRule's name: JSON Schema's


def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def _untitled(schema: Any) -> Any:
    """Pydantic's per-property titles dropped: generators name types after them."""
    if isinstance(schema, dict):
        return {key: _untitled(value) for key, value in schema.items() if key != "title"}
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


def _schema(kind: Any, mode: str = "validation") -> dict:
    """A class's JSON Schema (draft 2020-12, which OpenAPI 3.1 uses as is), closed to other
    properties, its enumerations referenced by name."""
    schema = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    schema.pop("$defs", None)
    schema = _untitled(schema)
    schema["additionalProperties"] = False
    for name, prop in schema["properties"].items():
        variants = prop.get("anyOf", [prop])
        if name in FIELD_ENUMS and any("enum" in v for v in variants):
            enum = _ref(FIELD_ENUMS[name])
            if any(v.get("type") == "null" for v in variants):
                schema["properties"][name] = _nullable(enum)
            else:
                schema["properties"][name] = {**enum, **({"default": prop["default"]} if "default" in prop else {})}
    return schema


def _results(kind: Any) -> dict:
    """An answer's schema: every field is always present (nullable ones as null)."""
    schema = _schema(kind, "serialization")
    schema["required"] = list(schema["properties"])
    return schema


# -- schemas -------------------------------------------------------------------------------------


def _image_schemas() -> dict:
    """The record as the API shows it: ImageRecord's public fields (its internals never leave)."""
    schema = _results(ImageRecord)
    schema["properties"] = {name: schema["properties"][name] for name in PUBLIC_FIELDS}
    schema["required"] = list(PUBLIC_FIELDS)
    props = schema["properties"]
    props["status"] = _ref("ImageStatus")
    props["error"] = _nullable(_ref("ErrorDetail"))
    props["gps"] = {**_nullable(_ref("Gps")), "description": "Owner only (null for others)."}
    props["exif"] = {"type": "object", "additionalProperties": _ref("ExifValue")}
    props["derivatives"] = {"type": "object", "additionalProperties": _ref("Derivative"),
                            "description": "By variant: thumb, preview."}
    number_or_null = {"type": ["number", "null"]}
    scalars = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
    return {
        "Image": schema,
        "ImageList": {"type": "object", "additionalProperties": False, "required": ["images", "next_cursor"],
                      "properties": {"images": {"type": "array", "items": _ref("Image")},
                                     "next_cursor": {"type": ["string", "null"],
                                                     "description": "Pass as cursor for the next page."}}},
        "Gps": {"type": "object", "additionalProperties": False, "required": ["latitude", "longitude"],
                "properties": {"latitude": {"type": "number"}, "longitude": {"type": "number"},
                               "altitude": number_or_null}},
        "Derivative": {"type": "object", "additionalProperties": False,
                       "required": ["width", "height", "format", "bytes"],
                       "properties": {"width": {"type": "integer"}, "height": {"type": "integer"},
                                      "format": {"type": "string"}, "bytes": {"type": "integer"}}},
        "ExifValue": {"anyOf": [*scalars, {"type": "array", "items": {"anyOf": scalars}}]},
    }


def _ruled_property(field: dataclasses.Field, rule: FieldRule) -> dict:
    """One field's schema, from its rule: its enumeration or model by component name, else its
    type and bounds; null allowed where the field's default is None."""
    if rule.choices is not None:
        schema = _ref({values: name for name, values in ENUMS.items()}[rule.choices])
    elif rule.model is not None:
        schema = _ref({model: name for name, model in RULED_MODELS.items()}[rule.model])
    else:
        schema = {"type": rule.kind, **{keyword: getattr(rule, name) for name, keyword in RULE_KEYWORDS.items()
                                        if getattr(rule, name) is not None}}
    if fieldrules.is_nullable(field):
        schema = _nullable(schema)
    if not fieldrules.is_required(field):
        schema["default"] = field.default
    if rule.description:
        schema["description"] = rule.description
    return schema


def _ruled_schema(model: type) -> dict:
    """A core value's schema, every field from its rule, so the document states exactly the
    bounds the value checks."""
    ruled = fieldrules.rules(model)
    schema = {"type": "object", "additionalProperties": False,
              "description": inspect.cleandoc(model.__doc__ or "").split("\n\n")[0],
              "properties": {field.name: _ruled_property(field, rule) for field, rule in ruled}}
    required = [field.name for field, _ in ruled if fieldrules.is_required(field)]
    return {**schema, "required": required} if required else schema


def _convert_schemas() -> dict:
    schemas = {name: _ruled_schema(model) for name, model in RULED_MODELS.items()}
    # Who the call acts for is the web layer's business, not the conversion's (conversion_request_from).
    schemas["ConvertRequest"]["properties"]["user_id"] = {"type": "string", "description": ACT_AS["description"]}
    return schemas


def _batch_schemas() -> dict:
    """A batch's request and answer (core/batches.py); its convert body is the convert call's."""
    request = _schema(BatchCommand)
    request["properties"]["convert"] = {**_nullable(_ref("ConvertRequest")),
                                        "description": "For convert: the body of the convert call."}
    error = _nullable(_ref("ErrorDetail"))
    item = {"type": "object", "additionalProperties": False, "required": ["image_id", "status", "error"],
            "properties": {"image_id": {"type": "string"},
                           "status": {"type": "string", "enum": [batches.ITEM_PENDING, batches.ITEM_DONE,
                                                                 batches.ITEM_SKIPPED, batches.ITEM_FAILED]},
                           "error": error}}
    answer = {"type": "object", "additionalProperties": False,
              "properties": {
                  "batch_id": {"type": "string"}, "action": {"type": "string", "enum": list(batches.ACTIONS)},
                  "status": {"type": "string", "enum": list(batches.STATUSES)},
                  "total": {"type": "integer"}, "done": {"type": "integer"},
                  "items": {"type": "array", "items": _ref("BatchItem")},
                  "download_url": {"type": ["string", "null"],
                                   "description": "When ready: a signed URL of the ZIP (images-YYYYMMDD-HHMM.zip)."},
                  "expires_at": {"type": "string"}, "bytes": {"type": "integer"}}}
    answer["required"] = list(answer["properties"])
    deleted = {"type": "object", "additionalProperties": False, "required": ["deleted", "not_found"],
               "properties": {"deleted": {"type": "array", "items": {"type": "string"}},
                              "not_found": {"type": "array", "items": {"type": "string"}}}}
    return {"BatchRequest": request, "BatchItem": item, "Batch": answer,
            "BulkDeleteRequest": _schema(BulkDeleteCommand), "BulkDeleteResult": deleted}


def _account_schema() -> dict:
    schema = _results(Account)
    schema["properties"].update(usage=_ref("Usage"), limits=_ref("Limits"))  # the component names
    return schema


def _schemas() -> dict:
    return {
        **_image_schemas(),
        "UploadRequest": _schema(UploadCommand),
        "UpdateRequest": _schema(UpdateCommand),
        **_convert_schemas(),
        **_batch_schemas(),
        "LinkRequest": _schema(LinkCommand),
        "Link": _results(Link),
        "LinkList": {"type": "object", "additionalProperties": False, "required": ["links"],
                     "properties": {"links": {"type": "array", "items": _ref("Link")}}},
        "UploadTicket": _results(UploadTicket),
        "Completion": _results(Completion),
        "DownloadLink": _results(DownloadLink),
        "Conversion": _results(Conversion),
        "Usage": _results(UsageReport),
        "Limits": _results(AccountLimits),
        "Account": _account_schema(),
        "Health": {"type": "object", "additionalProperties": False, "required": ["status"],
                   "properties": {"status": {"type": "string", "const": "ok"}}},
        "Readiness": {"type": "object", "additionalProperties": False, "required": ["status", "checks"],
                      "properties": {"status": {"type": "string", "enum": ["ready", "unavailable"]},
                                     "checks": {"type": "object", "additionalProperties": {"type": "string"},
                                                "description": "ok, or the error's type, per backend."}}},
        **{name: {"type": "string", "enum": list(values)} for name, values in ENUMS.items()},
        "ErrorDetail": {"type": "object", "additionalProperties": False, "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
        "Error": {"type": "object", "additionalProperties": False, "required": ["error"],
                  "properties": {"error": _ref("ErrorDetail")}},
    }


# -- operations ----------------------------------------------------------------------------------


def _json(schema: dict, description: str, example: Any) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema, "example": example}}}


def _errors(*statuses: int) -> dict:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


def _body(name: str, required: bool) -> dict:
    return {"required": required,
            "content": {"application/json": {"schema": _ref(name), "example": examples.REQUESTS[name]}}}


def _query(model: Any, required: bool = True) -> list[dict]:
    """A command's fields as query parameters: one value each (a list as one comma-separated
    string), the nullable branch dropped (absent means null)."""
    schema = _schema(model)
    params = []
    for name, prop in schema["properties"].items():
        variants = [v for v in prop.get("anyOf", [prop]) if v.get("type") not in ("null", "array")]
        plain = {key: value for key, value in variants[0].items() if key != "description"}
        if prop.get("default") not in (None, []):
            plain["default"] = prop["default"]
        params.append({"name": name, "in": "query", "schema": plain, "description": prop.get("description", ""),
                       "required": required and name in schema.get("required", [])})
    return params


IMAGE_ID = {"name": "image_id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The image id (ULID).", "example": examples.IMAGE_ID}
ACT_AS = {"name": "user_id", "in": "query", "required": False, "schema": {"type": "string"},
          "description": "Admin tokens only: act for this user."}
BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The batch's id (ULID)."}
LINK_ID = {"name": "link_id", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "The share link's id (random, URL-safe)."}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "description": "1-255 printable ASCII characters (else 400 invalid_idempotency_key). Within 24 h, the same key "
                   "with the same body answers the same image_id; with another body 422 idempotency_key_reused; "
                   "while the first is running 409 idempotency_key_in_flight.",
}


def _operation(operation_id: str, tag: str, summary: str, responses: dict, **rest: Any) -> dict:
    return {"operationId": operation_id, "tags": [tag], "summary": summary, **rest, "responses": responses}


def _ok(status: int, schema: str, description: str) -> dict:
    return {str(status): _json(_ref(schema), description, examples.RESPONSES[schema])}


def _paths() -> dict:
    op = _operation
    return {
        "/api/images/upload": {"post": op(
            "create_upload", "images", "Start an upload: get a presigned URL to PUT the bytes to",
            description="Send the UploadRequest as a JSON body, or its fields as query parameters (the body wins).",
            parameters=[IDEMPOTENCY_KEY, *_query(UploadCommand, required=False)],
            requestBody=_body("UploadRequest", required=False),
            responses={**_ok(201, "UploadTicket", "Upload URL issued"),
                       **_errors(400, 401, 403, 409, 413, 415, 422, 429)})},
        "/api/images/{image_id}/complete": {"post": op(
            "complete_upload", "images", "Tell the service the upload finished (processing starts; idempotent)",
            parameters=[IMAGE_ID, ACT_AS],
            responses={**_ok(202, "Completion", "Queued"), **_errors(401, 403, 404, 409)})},
        "/api/images": {"get": op(
            "list_images", "images", "List your images, newest first", parameters=_query(ListCommand),
            responses={**_ok(200, "ImageList", "A page of images"), **_errors(400, 401, 403)})},
        "/api/images/{image_id}": {
            "get": op("get_image", "images", "One image record", parameters=[IMAGE_ID, ACT_AS],
                      responses={**_ok(200, "Image", "The record"), **_errors(401, 403, 404)}),
            "patch": op("update_image", "images", "Change tags and description", parameters=[IMAGE_ID, ACT_AS],
                        requestBody=_body("UpdateRequest", required=True),
                        responses={**_ok(200, "Image", "The updated record"), **_errors(400, 401, 403, 404, 409)}),
            "delete": op("delete_image", "images", "Delete the image, its derivatives and conversions",
                         parameters=[IMAGE_ID, ACT_AS],
                         responses={"204": {"description": "Deleted (no body)"}, **_errors(401, 403, 404)}),
        },
        "/api/images/{image_id}/download": {"get": op(
            "get_download_link", "images", "A short-lived signed download URL",
            parameters=[IMAGE_ID, *_query(DownloadCommand)],
            responses={**_ok(200, "DownloadLink", "Signed URL"),
                       "302": {"description": "With redirect=true: a redirect to the signed URL (no body)"},
                       **_errors(400, 401, 403, 404, 409)})},
        "/api/images/{image_id}/convert": {"post": op(
            "convert_image", "images", "Convert and resize (optionally watermark); cached per parameters",
            parameters=[IMAGE_ID, ACT_AS], requestBody=_body("ConvertRequest", required=True),
            responses={**_ok(200, "Conversion", "Converted"), **_errors(400, 401, 403, 404, 409, 422, 429)})},
        "/api/images/{image_id}/links": {
            "post": op("create_link", "sharing", "Make a share link (a ready image; at most share_links_per_image live)",
                       parameters=[IMAGE_ID, ACT_AS], requestBody=_body("LinkRequest", required=False),
                       responses={**_ok(201, "Link", "The new link"), **_errors(400, 401, 403, 404, 409)}),
            "get": op("list_links", "sharing", "The image's live share links, newest first, with their views",
                      parameters=[IMAGE_ID, ACT_AS],
                      responses={**_ok(200, "LinkList", "Live links"), **_errors(401, 403, 404)}),
        },
        "/api/links/{link_id}": {"delete": op(
            "revoke_link", "sharing", "Revoke a share link: every public URL of it ends",
            parameters=[LINK_ID],
            responses={"204": {"description": "Revoked (no body)"}, **_errors(401, 403, 404)})},
        "/api/batches": {"post": op(
            "create_batch", "batches", "Pack many images as one ZIP (originals, or a conversion of each), by a job",
            requestBody=_body("BatchRequest", required=True),
            responses={**_ok(202, "Batch", "Queued; poll it"), **_errors(400, 401, 403, 413, 422, 429)})},
        "/api/batches/{batch_id}": {
            "get": op("get_batch", "batches", "A batch's progress; its download URL once ready",
                      parameters=[BATCH_ID], responses={**_ok(200, "Batch", "The batch"), **_errors(401, 403, 404)}),
            "delete": op("cancel_batch", "batches", "Cancel a batch and remove its archive", parameters=[BATCH_ID],
                         responses={"204": {"description": "Cancelled (no body)"}, **_errors(401, 403, 404)}),
        },
        "/api/images/delete": {"post": op(
            "delete_images", "images", "Delete many of your images at once",
            requestBody=_body("BulkDeleteRequest", required=True),
            responses={**_ok(200, "BulkDeleteResult", "What was deleted"), **_errors(400, 401, 403, 413)})},
        "/api/me": {"get": op(
            "get_account", "account", "Who you are, your usage (conversions included) and the limits",
            responses={**_ok(200, "Account", "Caller"), **_errors(401)})},
        "/healthz": {"get": op("get_health", "service", "Liveness", security=[],
                               responses=_ok(200, "Health", "Alive"))},
        "/readyz": {"get": op("get_readiness", "service", "Readiness of every backend", security=[],
                              responses={**_ok(200, "Readiness", "Ready"),
                                         "503": _json(_ref("Readiness"), "Not ready", examples.NOT_READY)})},
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
        "tags": [{"name": "images", "description": "Upload, list, inspect, change, convert, download, delete."},
                 {"name": "batches", "description": "Many images at once: one ZIP, made by a job."},
                 {"name": "sharing", "description": "Share links (the public pages and renditions under /s/ are in docs/API.md)."},
                 {"name": "account", "description": "The caller, usage and limits."},
                 {"name": "service", "description": "Liveness and readiness probes (no authentication)."}],
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
            "responses": {f"E{status}": _json(_ref("Error"), text, examples.error_for(status))
                          for status, text in ERROR_STATUSES.items()},
        },
    }
