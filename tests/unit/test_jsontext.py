"""One JSON encoder (jsontext.dumps) for the catalog, the server's own answers and Flask's
responses: orjson's output where it can, the standard library's where orjson refuses."""

from __future__ import annotations

import dataclasses
import datetime
import json

from imageservice import jsontext
from imageservice.web import create_app


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_the_same_compact_text_either_way():
    value = {"b": 1, "a": [1.5, "é", None, True]}
    assert jsontext.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(jsontext.dumps({"big": 2**70, "lone": "\ud800"})) == {"big": 2**70, "lone": "\ud800"}
    assert jsontext.dumps(Point(1, 2)) == '{"x":1,"y":2}'
    assert jsontext.loads(jsontext.dumps({"nan": float("nan")}))["nan"] != 0  # NaN survives through json


def test_flask_responses_encode_through_it(tmp_path):
    from support import make_settings

    app = create_app(make_settings(tmp_path))
    with app.app_context():
        assert app.json.dumps({"when": datetime.datetime(2026, 1, 2, 3, 4, 5), "p": Point(1, 2)}) == \
            '{"when":"Fri, 02 Jan 2026 03:04:05 GMT","p":{"x":1,"y":2}}'
        assert json.loads(app.json.dumps({"big": 2**70, "day": datetime.date(2026, 1, 2)})) == \
            {"big": 2**70, "day": "Fri, 02 Jan 2026 00:00:00 GMT"}
        assert "\n" in app.json.dumps({"a": 1}, indent=2)  # pretty output stays Flask's
