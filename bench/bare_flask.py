"""The yardstick of bench_api.py: a bare Flask hello-world under the same server as
``imageservice serve`` (web/processes.py: the same worker processes, each waitress with the
same settings, threads and gate), and
``POST /write``, the same with one SQLite INSERT per request, and ``GET /file``, a file's bytes
with send_file (bench_renditions.py's yardstick of a rendition hit).

    python bench/bare_flask.py PORT"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from pathlib import Path

from flask import Flask, jsonify, request, send_file

app = Flask(__name__)
WRITE_PATH = "/write"
_connections = threading.local()


def _connection() -> sqlite3.Connection:
    """A connection per thread to one database per server, set up as the catalog's is."""
    conn = getattr(_connections, "conn", None)
    if conn is None:
        data_dir = Path(os.environ.get("IMAGESERVICE_DATA_DIR", "."))
        data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(data_dir / "bare.sqlite3", timeout=15, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        _connections.conn = conn
    return conn


@app.post(WRITE_PATH)
def write():
    """The yardstick of one write per request: the body, inserted as one row."""
    _connection().execute("INSERT INTO rows (body) VALUES (?)", (request.get_data(as_text=True),))
    return jsonify(hello="world")


@app.get("/file")
def file():
    """The yardstick of a stored image answered: the bytes of BENCH_FILE with send_file."""
    return send_file(os.environ["BENCH_FILE"], mimetype=os.environ.get("BENCH_FILE_TYPE", "image/jpeg"))


@app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@app.route("/<path:path>", methods=["GET", "POST"])
def hello(path: str):
    return jsonify(hello="world")


def main() -> None:
    from imageservice import logs
    from imageservice.ports import NoMetrics
    from imageservice.settings import Settings
    from imageservice.web import API_BODY_LIMIT, processes
    from imageservice.web.gate import BodyGate

    settings = Settings.from_env()
    logs.configure(settings.log_level.upper(), buffered=True)

    def serving_app() -> Flask:
        gate = BodyGate(api_body_limit=API_BODY_LIMIT, upload_limit=settings.max_upload_bytes)
        app.extensions[processes.SERVING] = processes.Serving(settings, gate, NoMetrics())
        return app

    processes.serve(serving_app, settings, "127.0.0.1", int(sys.argv[1]))


if __name__ == "__main__":
    main()
