"""The yardstick of bench_api.py: a bare Flask hello-world behind the same bridge and server as
``imageservice serve`` (gunicorn's asyncio worker, the same WSGI bridge and thread count)."""

from __future__ import annotations

import os

from imageservice.web.asgi import WsgiBridge
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@app.route("/<path:path>", methods=["GET", "POST"])
def hello(path: str):
    return jsonify(hello="world")


asgi_app = WsgiBridge(app, int(os.environ.get("IMAGESERVICE_WEB_THREADS", "4")))
