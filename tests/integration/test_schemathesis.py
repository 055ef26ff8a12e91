"""schemathesis against the app's own /api/openapi.json: valid and invalid requests
made from the spec, sent with a token to the real app (SQLite, files, the imaging pool), and
every answer held to the spec: no server error, the documented status codes, content types,
headers and bodies.

Bounded: ``MAX_EXAMPLES`` cases per operation and mode (positive, negative), ~1 minute.
"""

from __future__ import annotations

import collections

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    negative_data_rejection,
    positive_data_acceptance,
)

import imagefactory
from imageservice.bootstrap import build_components
from imageservice.web import create_app
from support import ApiClient, make_settings
from imageservice.entrypoints.worker import Worker

MAX_EXAMPLES = 50
# Out of scope here: whether the server is as strict (or as lenient) as the spec about inputs
# it handles cleanly anyway (an empty ``until`` read as absent, say). Server errors and answers
# that break the spec are what this test is about.
# Also out: the Allow header of Flask's automatic answer to OPTIONS, a method the spec does not
# document; for /api/images/upload it also lists the methods of /api/images/{image_id}, which
# the same path matches ("upload" is a string like any id).
EXCLUDED_CHECKS = [negative_data_rejection, positive_data_acceptance, allow_header_conformance]
SENT: collections.Counter = collections.Counter()  # cases sent, by operation and status class


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The app with one owner, a token, and one ready image the cases can aim at."""
    components = build_components(make_settings(tmp_path_factory.mktemp("schemathesis"), uploads_per_minute=100_000))
    app = create_app(components=components)
    app.testing = True
    token = components.service.create_token("alice")
    client = ApiClient(app.test_client(), token, Worker(components))
    image_id = client.upload(imagefactory.jpeg_bytes(320, 240), filename="target.jpg")
    assert client.image(image_id)["status"] == "ready"
    yield app, token, image_id
    components.imaging.close()


@pytest.fixture
def api_schema(api):
    app, _, image_id = api
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    schema.config.generation.update(max_examples=MAX_EXAMPLES)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        # Random ids only ever meet 404: half the cases aim at the ready image instead (never a
        # DELETE, which would leave nothing for the cases after it).
        if not path_parameters or "image_id" not in path_parameters or context.operation.method.upper() == "DELETE":
            return st.just(path_parameters)
        return st.sampled_from([path_parameters, {**path_parameters, "image_id": image_id}])

    @schema.hook
    def after_call(context, case, response):
        SENT[f"{case.operation.label} {response.status_code // 100}xx"] += 1

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_answer_keeps_to_the_spec(case, api):
    _, token, _ = api
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=EXCLUDED_CHECKS)


def test_the_run_sent_cases_to_every_operation():
    """Runs after the one above (file order): it really exercised the API, in both modes."""
    operations = {key.rsplit(" ", 1)[0] for key in SENT}
    assert len(operations) >= 11, SENT
    assert sum(n for key, n in SENT.items() if key.endswith("4xx")) > 0  # negative cases reached the app
    assert sum(n for key, n in SENT.items() if key.endswith("2xx")) > 0
    assert not any(key.endswith("5xx") for key in SENT), SENT
    print(f"schemathesis: {sum(SENT.values())} cases", dict(SENT))
