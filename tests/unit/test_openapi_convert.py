"""The convert body in /api/openapi.json is derived from the rules on the conversion's fields
(core/fieldrules.py): the document publishes the model's enumerations, bounds and defaults, and
the server refuses exactly what lies outside them."""

from __future__ import annotations

import dataclasses
import math

import pytest
from imageservice.core import fieldrules
from imageservice.core.conversions import (
    ConversionRequest,
    WatermarkSpec,
    conversion_request_from,
)
from imageservice.core.errors import BadRequest
from imageservice.web.api.openapi import openapi_document
from jsonschema import Draft202012Validator

SPEC = openapi_document()
SCHEMAS = SPEC["components"]["schemas"]
MODELS = {"ConvertRequest": ConversionRequest, "Watermark": WatermarkSpec}
# A watermark must give text or an image; fields are walked inside one that does.
MARKED = {"text": "a"}


def _component(schema: dict) -> dict:
    """The schema itself, or what its $ref (or the non-null branch of its anyOf) names."""
    branch = next(b for b in schema.get("anyOf", [schema]) if b.get("type") != "null")
    return SCHEMAS[branch["$ref"].rsplit("/", 1)[1]] if "$ref" in branch else branch


def _published(name: str, field: str) -> tuple[dict, dict]:
    prop = SCHEMAS[name]["properties"][field]
    return prop, _component(prop)


def _published_accepts(body: dict) -> bool:
    return Draft202012Validator({**SPEC, "$ref": "#/components/schemas/ConvertRequest"}).is_valid(body)


def _server_accepts(body: dict) -> bool:
    try:
        conversion_request_from(body)
    except BadRequest as refused:
        assert refused.code == "invalid_parameter"
        return False
    return True


def _body(model: type, field: str, value) -> dict:
    if model is ConversionRequest:
        return {"format": "png", field: value}
    mark = {} if field in ("text", "image_id") else MARKED
    return {"format": "png", "watermark": {**mark, field: value}}


RULED = [(name, model, field, rule) for name, model in MODELS.items() for field, rule in fieldrules.rules(model)]


@pytest.mark.parametrize(("name", "model", "field", "rule"), RULED, ids=[f"{n}.{f.name}" for n, _, f, _ in RULED])
def test_each_published_field_is_the_models_rule(name, model, field, rule):
    prop, published = _published(name, field.name)
    if rule.choices is not None:
        assert published == {"type": "string", "enum": list(rule.choices)}
    elif rule.model is not None:
        assert published is SCHEMAS[{m: n for n, m in MODELS.items()}[rule.model]]
    else:
        assert published["type"] == rule.kind
        bounds = {"minimum": rule.minimum, "maximum": rule.maximum, "minLength": rule.min_length,
                  "maxLength": rule.max_length, "pattern": rule.pattern}
        assert {key: published.get(key) for key in bounds} == bounds
    assert ("default" in prop) == (not fieldrules.is_required(field))
    assert prop.get("default") == (None if fieldrules.is_required(field) else field.default)
    assert ({"type": "null"} in prop.get("anyOf", [])) == (field.default is None)
    assert prop.get("description", "") == rule.description


@pytest.mark.parametrize(("name", "model"), MODELS.items())
def test_each_component_has_the_models_fields_and_no_others(name, model):
    schema = SCHEMAS[name]
    acting = {"user_id"} if name == "ConvertRequest" else set()  # the web layer's, not the conversion's
    assert set(schema["properties"]) == {f.name for f, _ in fieldrules.rules(model)} | acting
    assert schema.get("required", []) == [f.name for f in dataclasses.fields(model) if fieldrules.is_required(f)]
    assert schema["additionalProperties"] is False


def _walk(rule) -> list:
    """Values either side of each bound: the bound itself, and the nearest value beyond it."""
    if rule.kind == "integer":
        return [v for bound in (rule.minimum, rule.maximum) if bound is not None for v in (bound - 1, bound, bound + 1)]
    if rule.kind == "number":
        return [v for bound in (rule.minimum, rule.maximum) if bound is not None
                for v in (math.nextafter(bound, -math.inf), bound, math.nextafter(bound, math.inf))]
    lengths = [n for bound in (rule.min_length, rule.max_length) if bound is not None for n in (bound - 1, bound, bound + 1)]
    return ["x" * n for n in lengths if n >= 0]


def _within(rule, value) -> bool:
    size = len(value) if isinstance(value, str) else value
    low = rule.min_length if isinstance(value, str) else rule.minimum
    high = rule.max_length if isinstance(value, str) else rule.maximum
    return (low is None or size >= low) and (high is None or size <= high)


BOUNDED = [(model, field.name, rule, value) for _, model, field, rule in RULED for value in _walk(rule)]


@pytest.mark.parametrize(("model", "field", "rule", "value"), BOUNDED,
                         ids=[f"{m.__name__}.{f}=" + (f"{len(v)} chars" if isinstance(v, str) else repr(v))
                              for m, f, _, v in BOUNDED])
def test_the_server_refuses_exactly_outside_the_published_bounds(model, field, rule, value):
    body = _body(model, field, value)
    assert _server_accepts(body) == _within(rule, value) == _published_accepts(body)


def test_every_bounded_field_is_walked():
    walked = {(model, field) for model, field, _, _ in BOUNDED}
    assert walked == {(ConversionRequest, "width"), (ConversionRequest, "height"), (ConversionRequest, "quality"),
                      (WatermarkSpec, "text"), (WatermarkSpec, "image_id"), (WatermarkSpec, "opacity"),
                      (WatermarkSpec, "scale")}


CHOSEN = [(model, field.name, value) for _, model, field, rule in RULED if rule.choices for value in rule.choices]


@pytest.mark.parametrize(("model", "field", "value"), CHOSEN, ids=[f"{m.__name__}.{f}={v}" for m, f, v in CHOSEN])
def test_every_published_choice_is_accepted_and_nothing_else(model, field, value):
    assert _server_accepts(_body(model, field, value)) and _published_accepts(_body(model, field, value))
    other = _body(model, field, f"{value}-other")
    assert not _server_accepts(other) and not _published_accepts(other)


def test_blank_text_is_refused_by_both():
    body = _body(WatermarkSpec, "text", "   ")
    assert not _server_accepts(body) and not _published_accepts(body)


@pytest.mark.parametrize(("model", "field"), [(ConversionRequest, "quality"), (WatermarkSpec, "opacity")])
def test_not_a_number_is_refused(model, field):
    # Python's JSON decoder reads NaN, which compares false with every bound.
    assert not _server_accepts(_body(model, field, math.nan))


def test_the_convert_body_is_one_named_component_for_every_caller():
    convert = SPEC["paths"]["/api/images/{image_id}/convert"]["post"]
    assert convert["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConvertRequest"}
