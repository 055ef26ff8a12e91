"""The CloudFront Function infrastructure/cloudfront/accept-class.js, run in Node, and
core.renditions.accept_class, fed the same Accept headers: real browsers' and the edge cases.

The CDN caches a rendition under the class the function computes while the app picks the format
from Accept itself, so the two must agree on every header, or one cache entry would hold a
format another browser in its class cannot show.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from imageservice.core.renditions import accept_class

FUNCTION = Path(__file__).resolve().parents[2] / "infrastructure" / "cloudfront" / "accept-class.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

# Loads the function's source the way CloudFront does (a script defining ``handler``, no
# modules), then answers each event read from stdin with the request the handler returns.
HARNESS = """
const fs = require("fs"), vm = require("vm");
const handler = vm.runInNewContext(fs.readFileSync(process.argv[1], "utf8") + "\\n;handler", {});
const events = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(events.map((event) => handler(event))));
"""

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
SAFARI = ("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
          "image/svg+xml,image/*;q=0.8,*/*;q=0.5")

# (what sends it, Accept or None when absent, the class)
ACCEPT_CASES = [
    ("Chrome / Edge, image", CHROME, "avif"),
    ("Chrome, navigation", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
     "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7", "avif"),
    ("Firefox 93+, image", FIREFOX, "avif"),
    ("Firefox 65-92, image", "image/webp,*/*", "webp"),
    ("Firefox 47-64, image", "image/png,image/*;q=0.8,*/*;q=0.5", "other"),
    ("Safari 17+, image", SAFARI, "avif"),
    ("Safari 14-16.0, image", "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "webp"),
    ("Safari 13, image", "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5", "other"),
    ("curl", "*/*", "other"),
    ("no Accept header", None, "other"),
    ("empty Accept header", "", "other"),
    ("image/* only", "image/*", "other"),
    ("avif refused", "image/avif;q=0,image/webp,*/*", "webp"),
    ("avif refused with q=0.000", "image/avif;q=0.000,image/webp;q=0.5", "webp"),
    ("both refused", "image/avif;q=0,image/webp;q=0,image/*,*/*", "other"),
    ("refused after accepted", "image/avif,image/webp,image/avif;q=0", "webp"),
    ("lowest q accepted", "image/avif;q=0.001", "avif"),
    ("q=1.000", "image/webp;q=1.000", "webp"),
    ("malformed q", "image/avif;q=abc,image/webp", "webp"),
    ("q above 1", "image/avif;q=1.5,image/webp;q=2", "other"),
    ("q without value", "image/avif;q,image/webp;q=", "other"),
    ("upper case and spaces", "  IMAGE/AVIF ; Q=0.5 ,\tImage/WebP", "avif"),
    ("parameters", "image/avif;codecs=av01;q=0.9", "avif"),
    ("near misses", "image/avif-sequence,image/avifs,image/webpx,avif,webp", "other"),
    ("empty elements", ",,image/webp,,", "webp"),
]


def run_function(events: list[dict]) -> list[dict]:
    completed = subprocess.run([NODE, "-e", HARNESS, str(FUNCTION)], input=json.dumps(events),
                               capture_output=True, text=True, timeout=30, check=True)
    return json.loads(completed.stdout)


def viewer_request(headers: dict[str, dict]) -> dict:
    """A viewer-request event as CloudFront hands it to a cloudfront-js-2.0 function."""
    return {"version": "1.0", "context": {"eventType": "viewer-request"}, "viewer": {"ip": "198.51.100.7"},
            "request": {"method": "GET", "uri": "/s/AbC/w/640", "querystring": {"format": {"value": "webp"}},
                        "headers": headers, "cookies": {}}}


def _accept_headers(accept: str | None) -> dict[str, dict]:
    return {} if accept is None else {"accept": {"value": accept}}


@pytest.fixture(scope="module")
def function_classes() -> dict[str, str]:
    answers = run_function([viewer_request(_accept_headers(accept)) for _, accept, _ in ACCEPT_CASES])
    return {name: answer["headers"]["x-accept-class"]["value"] for (name, _, _), answer in zip(ACCEPT_CASES, answers)}


@pytest.mark.parametrize("name, accept, expected", ACCEPT_CASES, ids=[case[0] for case in ACCEPT_CASES])
def test_the_function_and_the_app_classify_alike(name, accept, expected, function_classes):
    assert accept_class(accept) == expected
    assert function_classes[name] == expected


def test_only_x_accept_class_changes_and_a_viewers_own_value_is_overwritten():
    headers = {"accept": {"value": "image/webp,*/*"}, "host": {"value": "img.example"},
               "x-accept-class": {"value": "avif"}, "user-agent": {"value": "Firefox/80"}}
    event = viewer_request(headers)
    (answer,) = run_function([event])
    expected = json.loads(json.dumps(event["request"]))
    expected["headers"]["x-accept-class"] = {"value": "webp"}
    assert answer == expected


def test_repeated_accept_headers_count_together():
    # Two Accept header lines arrive as one header with multiValue.
    lines = ["image/webp;q=0.9", "image/avif"]
    accept = {"value": lines[0], "multiValue": [{"value": line} for line in lines]}
    (answer,) = run_function([viewer_request({"accept": accept})])
    assert answer["headers"]["x-accept-class"] == {"value": "avif"} == {"value": accept_class(",".join(lines))}
