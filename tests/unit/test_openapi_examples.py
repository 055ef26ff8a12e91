"""Every operation in /api/openapi.json names itself, has a tag, and shows an example of its
request body and of each answer with a body; every example is valid against its own schema."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from imageservice.web.api.openapi import openapi_document

SPEC = openapi_document()
OPERATIONS = [(path, method, op) for path, item in SPEC["paths"].items() for method, op in item.items()]


def _resolved(response: dict) -> dict:
    if "$ref" in response:
        return SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def _valid(schema: dict, instance) -> None:
    # The document is the root, so "#/components/..." references resolve.
    Draft202012Validator({**SPEC, **schema}).validate(instance)


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_each_operation_is_named_tagged_and_shown_by_example(path, method, op):
    assert op["operationId"].isidentifier() and len(op["tags"]) == 1
    media = [(op["requestBody"]["content"]["application/json"])] if "requestBody" in op else []
    answers = [_resolved(r) for r in op["responses"].values()]
    media += [a["content"]["application/json"] for a in answers if "application/json" in a.get("content", {})]
    assert media, "an operation without any body to show"
    for item in media:
        _valid(item["schema"], item["example"])
    for parameter in op.get("parameters", []):
        if "example" in parameter:
            _valid(parameter["schema"], parameter["example"])


def test_operation_ids_are_unique():
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids))


def test_enumerations_are_named_components():
    schemas = SPEC["components"]["schemas"]
    assert schemas["ConvertRequest"]["properties"]["format"]["$ref"].endswith("/ConvertFormat")
    assert schemas["Watermark"]["properties"]["position"]["$ref"].endswith("/WatermarkPosition")
    status = [p for p in SPEC["paths"]["/api/images"]["get"]["parameters"] if p["name"] == "status"][0]
    assert status["schema"]["$ref"].endswith("/ImageStatus")
