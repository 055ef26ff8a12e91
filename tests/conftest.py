"""Shared fixtures: every test gets its own data dir, settings, adapters and app."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imageservice.bootstrap import build_components  # noqa: E402
from imageservice.web import create_app  # noqa: E402
from imageservice.entrypoints.worker import Worker  # noqa: E402
from support import ApiClient, make_settings  # noqa: E402


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
def components(settings):
    return build_components(settings)


@pytest.fixture
def app(components):
    app = create_app(components=components)
    app.testing = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def worker(components):
    return Worker(components)


@pytest.fixture
def token(components):
    return components.service.create_token("alice")


@pytest.fixture
def api(client, token, worker):
    return ApiClient(client, token, worker)
