"""Typed commands: what the web layer validates requests into, and the document generated from them."""

import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError

from imageservice.commands import ListCommand, UpdateCommand, UploadCommand
from imageservice.core.conversions import ConversionRequest, WatermarkSpec, conversion_request_from
from imageservice.core.errors import BadRequest
from imageservice.web.api.openapi import openapi_document


def test_upload_command_from_a_query_string_or_json():
    command = UploadCommand.model_validate({"size": "120", "tags": "a, b", "filename": "", "content_type": "image/png"})
    assert (command.size, command.tags, command.filename) == (120, ["a", " b"], "")
    assert UploadCommand.model_validate({"size": 5, "tags": ["x"]}).tags == ["x"]
    for bad in ({}, {"size": 0}, {"size": True}, {"size": 2.5}, {"size": 5, "tags": {"a": 1}},
                {"size": 5, "description": 5}, {"size": 5, "user_id": 7}):
        with pytest.raises(ValidationError):
            UploadCommand.model_validate(bad)


def test_list_command_checks_moments_and_states():
    assert ListCommand.model_validate({"since": "2025-01-01"}).since.startswith("2025-01-01T00:00:00")
    for bad in ({"since": "yesterday"}, {"status": "done"}, {"limit": "0"},
                {"since": "2025-02-01", "until": "2025-01-01"}):
        with pytest.raises(ValidationError):
            ListCommand.model_validate(bad)


def test_update_command_refuses_other_fields():
    assert UpdateCommand.model_validate({"tags": None}).tags == []
    assert UpdateCommand.model_validate({"description": "x"}).tags is None
    with pytest.raises(ValidationError):
        UpdateCommand.model_validate({"status": "ready"})


def test_conversion_requests_are_validated_once():
    request = conversion_request_from({"format": "JPG", "width": 300.0, "quality": 80, "user_id": "ignored"})
    assert request == ConversionRequest("jpeg", width=300, quality=80)
    marked = conversion_request_from({"format": "png", "watermark": {"text": "© me", "position": "center",
                                                                     "opacity": 1, "scale": 0.05}})
    assert marked.watermark == WatermarkSpec(text="© me", position="center", opacity=1.0, scale=0.05)
    assert conversion_request_from({"format": "png", "watermark": {"image_id": "01J"}}).watermark.opacity == 0.5


@pytest.mark.parametrize("params", [
    {}, {"format": "psd"}, {"format": 5}, {"format": "png", "fit": "stretch"}, {"format": "png", "width": 0},
    {"format": "png", "width": "wide"}, {"format": "png", "width": True}, {"format": "jpeg", "quality": 101},
    {"format": "png", "enlarge": "yes"}, {"format": "png", "watermark": "hi"},
    {"format": "png", "watermark": {}}, {"format": "png", "watermark": {"text": "a", "image_id": "b"}},
    {"format": "png", "watermark": {"text": "x" * 101}}, {"format": "png", "watermark": {"text": "  "}},
    {"format": "png", "watermark": {"text": "a", "position": "middle"}},
    {"format": "png", "watermark": {"text": "a", "opacity": 0.01}},
    {"format": "png", "watermark": {"text": "a", "opacity": 1.5}},
    {"format": "png", "watermark": {"text": "a", "scale": 0}},
    {"format": "png", "watermark": {"text": "a", "scale": True}},
    {"format": "png", "watermark": {"text": "a", "colour": "red"}},
])
def test_bad_conversion_parameters_are_400(params):
    with pytest.raises(BadRequest) as caught:
        conversion_request_from(params)
    assert caught.value.code == "invalid_parameter"


def test_the_document_is_generated_from_the_commands():
    spec = openapi_document()
    validate(spec)
    schemas = spec["components"]["schemas"]
    assert set(schemas["UploadRequest"]["properties"]) == set(UploadCommand.model_fields)
    assert schemas["UploadRequest"]["required"] == ["size"]
    assert set(schemas["UpdateRequest"]["properties"]) == set(UpdateCommand.model_fields)
    assert {"watermark", "enlarge", "quality"} <= set(schemas["ConvertRequest"]["properties"])
    assert schemas["Watermark"]["properties"]["opacity"]["minimum"] == 0.05
    listed = {p["name"] for p in spec["paths"]["/api/images"]["get"]["parameters"]}
    assert listed == set(ListCommand.model_fields)
    upload = spec["paths"]["/api/images/upload"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in upload["parameters"])
    assert "original_key" not in schemas["Image"]["properties"]  # internals never documented
