"""Issue 9 item 7: input that once answered 500, or was kept as sent, answers the error shape or is
cleaned: lone surrogates, bidi and control characters, deep JSON, non-string user ids."""

from urllib.parse import unquote

import pytest

import imagefactory
from support import ApiClient, assert_error

# json.dumps would escape a lone surrogate as \ud800 as well; spelled out to show what is sent.
SURROGATE_BODIES = [
    '{"content_type": "image/png", "size": 10, "filename": "a\\ud800.png"}',
    '{"content_type": "image/png", "size": 10, "description": "x\\udfff"}',
    '{"content_type": "image/png", "size": 10, "tags": ["ok", "\\ud83d"]}',
    '{"content_type": "image/png", "size": 10, "tags": "a,\\udc00b"}',
    '{"content_type": "image/png", "size": 10, "\\ud800": 1}',
]
DEEP = 100_000


@pytest.fixture
def ready_image(api):
    return api.upload(imagefactory.png_bytes(32, 24), "image/png", filename="pic.png")


@pytest.mark.parametrize("body", SURROGATE_BODIES)
def test_lone_surrogates_in_an_upload_answer_400(api, body):
    response = api.call("POST", "/api/images/upload", data=body, content_type="application/json")
    assert_error(response, 400, "invalid_parameter")
    assert api.call("GET", "/api/images").get_json()["images"] == []  # nothing half-made


@pytest.mark.parametrize("method, suffix, body", [
    ("PATCH", "", '{"tags": ["\\ud800"]}'),
    ("PATCH", "", '{"description": "\\ud800"}'),
    ("POST", "/convert", '{"format": "png\\ud800"}'),
])
def test_lone_surrogates_on_an_image_answer_400_and_leave_it_readable(api, ready_image, method, suffix, body):
    response = api.call(method, f"/api/images/{ready_image}{suffix}", data=body, content_type="application/json")
    assert_error(response, 400, "invalid_parameter")
    assert api.image(ready_image)["status"] == "ready"
    assert api.call("GET", f"/api/images/{ready_image}/download").status_code == 200


def test_bidi_and_control_characters_leave_filenames_and_tags(api):
    image_id = api.upload(imagefactory.png_bytes(16, 16), "image/png",
                          filename="invoice\u202egnp.exe\x00\u2066.png",
                          tags=["\u200ebeach\u200f", "sea\u2069\x07", "\u202d"])
    record = api.image(image_id)
    assert record["filename"] == "invoicegnp.exe.png"
    assert record["tags"] == ["beach", "sea"]
    # The list filter goes through the same normaliser.
    listed = api.call("GET", "/api/images?tag=%E2%80%8EBeach").get_json()["images"]
    assert [r["image_id"] for r in listed] == [image_id]
    patched = api.call("PATCH", f"/api/images/{image_id}", json={"tags": ["x\u202ey"]}).get_json()
    assert patched["tags"] == ["xy"]


def test_originals_download_with_the_detected_types_extension(api):
    # A PNG announced as a JPEG under an executable's name.
    image_id = api.upload(imagefactory.png_bytes(16, 16), "image/jpeg", filename="setup.exe")
    record = api.image(image_id)
    assert record["content_type"] == "image/png"
    url = api.call("GET", f"/api/images/{image_id}/download").get_json()["download_url"]
    fetched = api.fetch(url)
    assert fetched.status_code == 200 and fetched.mimetype == "image/png"
    disposition = fetched.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="setup.png"' in disposition and ".exe" not in unquote(disposition)


@pytest.mark.parametrize("method, suffix", [("POST", "/api/images/upload"), ("PATCH", "/api/images/{id}"),
                                            ("POST", "/api/images/{id}/convert")])
def test_deeply_nested_json_is_refused(api, client, ready_image, method, suffix):
    path = suffix.format(id=ready_image)
    deep = "[" * DEEP + "]" * DEEP
    # Anonymous: refused for being anonymous, before the body is parsed.
    assert_error(client.open(path, method=method, data=deep, content_type="application/json"), 401, "unauthenticated")
    # Authenticated: the parser's recursion limit is a malformed body, not a crash.
    assert_error(api.call(method, path, data=deep, content_type="application/json"), 400, "invalid_json")
    nested_object = '{"tags": ' + "[" * DEEP + "]" * DEEP + "}"
    assert_error(api.call(method, path, data=nested_object, content_type="application/json"), 400, "invalid_json")


@pytest.mark.parametrize("user_id", [7, ["alice"], {"id": "alice"}, True])
def test_an_admins_user_id_must_be_a_string(client, components, worker, api, ready_image, user_id):
    admin = ApiClient(client, components.service.create_token("root", admin=True), worker)
    calls = [
        ("POST", "/api/images/upload", {"content_type": "image/png", "size": 10, "user_id": user_id}),
        ("PATCH", f"/api/images/{ready_image}", {"tags": ["x"], "user_id": user_id}),
        ("POST", f"/api/images/{ready_image}/convert", {"format": "png", "user_id": user_id}),
    ]
    for method, path, body in calls:
        assert_error(admin.call(method, path, json=body), 400, "invalid_parameter")
    assert api.image(ready_image)["tags"] == []
