"""Test helpers shared by every tier (imported by name; fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from imageservice.settings import Settings
from imageservice.entrypoints.worker import Worker

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CORPUS = REPO.parent / "shared" / "corpus"
TEST_SECRET = "test-secret-key-not-for-production"


def venv_tool(name: str) -> str:
    """A command next to this interpreter (the project venv), else on PATH; skip when absent."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (make test installs it)")
    return found


def stored_sessions(data_path: Path) -> int:
    """Entries in the local session store under ``data_path`` (cachelib keeps its own file
    count beside them)."""
    from cachelib.file import FileSystemCache

    folder = data_path / "sessions"
    count_file = FileSystemCache(str(folder))._get_filename(FileSystemCache._fs_count_file)
    return sum(1 for p in folder.iterdir() if str(p) != count_file) if folder.exists() else 0


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = {"data_dir": tmp_path / "data", "secret_key": TEST_SECRET, "public_url": "http://localhost",
              "job_retry_delay": 0,
              # Spares are started per pool, and tests build a pool per app: only the tests of
              # spares (test_imaging_budget.py) ask for them.
              "imaging_warm_children": 0}
    values.update(overrides)
    return Settings.from_env({}, **values)


class ApiClient:
    """The README's curl flow through Flask's test client: upload ticket, PUT, process, read."""

    def __init__(self, client, token: str | None, worker: Worker | None = None):
        self.client = client
        self.token = token
        self.worker = worker

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def call(self, method: str, path: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def ticket(self, **params):
        response = self.call("POST", "/api/images/upload", json=params)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def put(self, ticket: dict, data: bytes, headers: dict | None = None):
        parts = urlsplit(ticket["upload_url"])
        return self.client.put(
            f"{parts.path}?{parts.query}", data=data, headers={**ticket["upload_headers"], **(headers or {})}
        )

    def upload(self, data: bytes, content_type: str = "image/jpeg", filename: str = "photo.jpg",
               process: bool = True, **params) -> str:
        ticket = self.ticket(content_type=content_type, size=len(data), filename=filename, **params)
        response = self.put(ticket, data)
        assert response.status_code == 200, response.get_data(as_text=True)
        if process:
            self.process()
        return ticket["image_id"]

    def process(self) -> None:
        self.worker.drain()

    def image(self, image_id: str) -> dict:
        response = self.call("GET", f"/api/images/{image_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def fetch(self, url: str):
        parts = urlsplit(url)
        return self.client.get(f"{parts.path}?{parts.query}")


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def in_process_clients(settings: Settings, *users: str, client_class: type | None = None):
    """The app in process over ``settings``: its components, its test client, and an API client
    (``client_class``, ApiClient unless told) with a token for each of ``users`` (the job worker
    drains beside them)."""
    from imageservice.bootstrap import build_components
    from imageservice.entrypoints.worker import Worker
    from imageservice.web import create_app

    components = build_components(settings)
    app = create_app(components=components)
    app.testing = True
    client = app.test_client()
    make = client_class or ApiClient
    return components, client, [make(client, components.service.create_token(user), Worker(components))
                                for user in users]


class AwsApiClient(ApiClient):
    """Uploads to S3 (moto) through the presigned URL itself, then says so (``complete``)."""

    def put(self, ticket: dict, data: bytes, headers: dict | None = None):
        import requests

        answer = requests.put(ticket["upload_url"], data=data, headers={**ticket["upload_headers"], **(headers or {})},
                              timeout=30)
        completed = self.call("POST", f"/api/images/{ticket['image_id']}/complete")
        assert completed.status_code == 202, completed.get_json()
        return type("Answer", (), {"status_code": answer.status_code, "get_data": lambda self, as_text=False: answer.text})()

    def fetch(self, url: str):
        """A signed URL of S3 (moto) fetched over HTTP, answered like the test client's."""
        import requests

        answer = requests.get(url, timeout=30)
        return type("Answer", (), {"status_code": answer.status_code, "data": answer.content,
                                   "headers": answer.headers})()


def served_in_mode(request, tmp_path: Path, *users: str, **overrides):
    """``in_process_clients`` in the mode of ``request.param``: embedded, or aws against the
    moto server fixture (resources made as ``imageservice setup`` makes them)."""
    if request.param == "aws":
        from imageservice.adapters.aws.setup import setup_resources

        moto = request.getfixturevalue("moto_server")
        names = request.getfixturevalue("aws_names")
        settings = make_settings(tmp_path, **overrides, **names.settings_values(moto.endpoint))
        list(setup_resources(settings))
        return in_process_clients(settings, *users, client_class=AwsApiClient)
    return in_process_clients(make_settings(tmp_path, **overrides), *users)
