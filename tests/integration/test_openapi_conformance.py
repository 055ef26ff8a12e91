"""The generated document describes what the API really answers: real responses validate
against their schemas (and the request schemas accept what the README shows)."""

import pytest
from jsonschema import Draft202012Validator

import imagefactory
from support import assert_error


@pytest.fixture
def spec(client):
    return client.get("/api/openapi.json").get_json()


def check(spec, name: str, instance) -> None:
    # The document itself is the root, so its "#/components/..." references resolve.
    Draft202012Validator({**spec, "$ref": f"#/components/schemas/{name}"}).validate(instance)


def test_real_answers_match_their_schemas(api, spec):
    data = imagefactory.jpeg_bytes(120, 80, gps=(10.0, 20.0, None))
    ticket = api.ticket(content_type="image/jpeg", size=len(data), filename="a.jpg", tags="x,y")
    check(spec, "UploadTicket", ticket)
    check(spec, "UploadRequest", {"content_type": "image/jpeg", "size": 5, "tags": "a,b"})
    assert api.put(ticket, data).status_code == 200
    api.process()
    record = api.image(ticket["image_id"])
    check(spec, "Image", record)
    check(spec, "DownloadLink", api.call("GET", f"/api/images/{ticket['image_id']}/download").get_json())
    body = {"format": "png", "width": 40, "watermark": {"text": "© me", "position": "center"}}
    check(spec, "ConvertRequest", body)
    converted = api.call("POST", f"/api/images/{ticket['image_id']}/convert", json=body)
    check(spec, "Conversion", converted.get_json())
    check(spec, "Usage", api.call("GET", "/api/me").get_json()["usage"])
    check(spec, "Error", assert_error(api.call("GET", "/api/images?limit=0"), 400) and
          api.call("GET", "/api/images?limit=0").get_json())
