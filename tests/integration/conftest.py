"""Integration fixtures: the AWS emulators (tests/aws_fixtures.py) and the contract backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from aws_fixtures import aws_credentials, aws_names, moto_server, seaweedfs  # noqa: F401
from imageservice.bootstrap import build_local_adapters
from imageservice.settings import Settings

# Small enough that the contract tests can watch a job come back and die.
CONTRACT_VISIBILITY_TIMEOUT = 2
CONTRACT_MAX_ATTEMPTS = 3


@dataclass
class Backend:
    kind: str
    settings: Settings
    blobs: Any
    catalog: Any
    queue: Any
    clients: Any = None  # aws: the boto3 clients the adapters use


@pytest.fixture(params=["local", "aws", "fake"])
def backend(request, tmp_path) -> Backend:
    """The three adapters of one backend: ``local`` (files, SQLite), ``aws`` (moto server,
    resources made by ``setup_resources``) or ``fake`` (tests/fakes.py, which the unit tests use).
    Contract tests run once against each; the few that need a URL a client can fetch skip fakes."""
    base = {
        "data_dir": tmp_path / "data", "secret_key": "contract-test-secret", "public_url": "http://localhost",
        "job_visibility_timeout": CONTRACT_VISIBILITY_TIMEOUT, "job_max_attempts": CONTRACT_MAX_ATTEMPTS,
    }
    if request.param == "fake":
        from fakes import FakeBlobStore, FakeCatalog, FakeJobQueue

        settings = Settings.from_env({}, **base)
        queue = FakeJobQueue(visibility_timeout=CONTRACT_VISIBILITY_TIMEOUT, max_attempts=CONTRACT_MAX_ATTEMPTS)
        return Backend("fake", settings, FakeBlobStore(), FakeCatalog(), queue)
    if request.param == "local":
        settings = Settings.from_env({}, **base)
        return Backend("local", settings, *build_local_adapters(settings))
    from imageservice.adapters.aws.factory import build_aws_adapters
    from imageservice.adapters.aws.setup import setup_resources

    moto = request.getfixturevalue("moto_server")
    names = request.getfixturevalue("aws_names")
    settings = Settings.from_env({}, **base, **names.settings_values(moto.endpoint))
    blobs, catalog, queue, clients = build_aws_adapters(settings)
    list(setup_resources(settings, clients))
    return Backend("aws", settings, blobs, catalog, queue, clients)
