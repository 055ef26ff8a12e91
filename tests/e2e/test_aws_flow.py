"""aws mode end to end, every part a real process: a moto server (S3 -> SQS notifications,
DynamoDB, SQS), ``imageservice setup``, two ``imageservice serve`` and ``imageservice worker``
(SQS batches through the Lambda's event processor), driven over plain HTTP."""

from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

import imagefactory
from aws_fixtures import aws_credentials, moto_server, unique_names  # noqa: F401
from servers import ServerProcess, free_port, imageservice, run_cli, service_env, wait_until

WAIT_SECONDS = 20


class AwsDeployment:
    """Names, environment and processes of one aws-mode deployment on the moto server."""

    def __init__(self, moto, root):
        self.moto = moto
        self.root = root
        self.names = unique_names(moto.endpoint)
        self.processes: list[ServerProcess] = []
        self.s3 = moto.client("s3")
        self.dynamodb = moto.client("dynamodb")

    def env(self, port: int) -> dict[str, str]:
        return service_env(
            self.root / "data", port, **self.names.env(self.moto.endpoint),
            IMAGESERVICE_JOB_VISIBILITY_TIMEOUT="10",
            IMAGESERVICE_WORKER_POLL_SECONDS="1",
        )

    def serve(self, port: int, name: str) -> str:
        base = f"http://127.0.0.1:{port}"
        self.processes.append(ServerProcess(
            imageservice("serve", "--host", "127.0.0.1", "--port", str(port)), self.env(port),
            self.root / f"{name}.log", ready_url=f"{base}/healthz").start())
        return base

    def worker(self, port: int) -> None:
        self.processes.append(ServerProcess(imageservice("worker"), self.env(port), self.root / "worker.log").start())

    def keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.names.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()}" for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def deployment(moto_server, tmp_path):
    """``imageservice setup`` (run twice: idempotent), two web servers and one worker."""
    deployment = AwsDeployment(moto_server, tmp_path)
    port, other_port = free_port(), free_port()
    for _ in range(2):
        result = run_cli(deployment.env(port), "setup")
        assert result.returncode == 0, result.stdout + result.stderr
    assert "ObjectCreated" in result.stdout and "created" not in result.stdout  # second run: nothing new
    deployment.base = deployment.serve(port, "server")
    deployment.other_base = deployment.serve(other_port, "server-2")
    deployment.worker(port)
    deployment.cli_env = deployment.env(port)
    try:
        yield deployment
    finally:
        deployment.stop()


def wait_for(predicate, what: str, deployment, timeout: float = WAIT_SECONDS):
    return wait_until(predicate, what, deployment, timeout)


def test_upload_process_convert_download_delete(deployment):
    base = deployment.base
    created = run_cli(deployment.cli_env, "token", "create", "alice")
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    data = imagefactory.jpeg_bytes(1600, 1200)

    ticket = requests.post(f"{base}/api/images/upload", headers=headers, timeout=10, json={
        "content_type": "image/jpeg", "size": len(data), "filename": "harbour.jpg", "tags": ["sea"]}).json()
    assert ticket["upload_url"].startswith(deployment.moto.endpoint + "/")  # straight to storage
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["upload_headers"], timeout=10)
    assert put.status_code == 200, put.text
    image_id = ticket["image_id"]

    # S3 notification -> SQS -> worker -> Lambda event processor -> DynamoDB
    record = wait_for(lambda: (r := requests.get(f"{base}/api/images/{image_id}", headers=headers, timeout=5).json())
                      ["status"] in ("ready", "rejected") and r, "processing", deployment)
    assert (record["status"], record["width"], record["height"]) == ("ready", 1600, 1200), record
    assert set(record["derivatives"]) == {"thumb", "preview"}
    listed = requests.get(f"{base}/api/images", params={"tag": "sea"}, headers=headers, timeout=5).json()
    assert [r["image_id"] for r in listed["images"]] == [image_id]

    converted = requests.post(f"{base}/api/images/{image_id}/convert", headers=headers, timeout=30,
                              json={"format": "png", "width": 320, "height": 320, "fit": "cover"})
    assert converted.status_code == 200, converted.text
    fetched = requests.get(converted.json()["download_url"], timeout=10)
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["Content-Disposition"].startswith("attachment;")
    assert Image.open(io.BytesIO(fetched.content)).size == (320, 320)

    link = requests.get(f"{base}/api/images/{image_id}/download", headers=headers, timeout=5).json()
    original = requests.get(link["download_url"], timeout=10)
    assert original.content == data and original.headers["Content-Type"] == "image/jpeg"
    thumb = requests.get(f"{base}/api/images/{image_id}/download", params={"variant": "thumb"},
                         headers=headers, timeout=5).json()
    assert requests.get(thumb["download_url"], timeout=10).headers["Content-Type"] == "image/webp"

    assert len([k for k in deployment.keys() if image_id in k]) == 5  # original, 2 derivatives, conversion + meta
    assert requests.delete(f"{base}/api/images/{image_id}", headers=headers, timeout=10).status_code == 204
    assert [k for k in deployment.keys() if image_id in k] == []
    item = deployment.dynamodb.get_item(TableName=deployment.names.table,
                                        Key={"user_id": {"S": "alice"}, "image_id": {"S": image_id}})
    assert "Item" not in item
    assert requests.get(f"{base}/api/images/{image_id}", headers=headers, timeout=5).status_code == 404


def test_an_object_dropped_into_the_bucket_becomes_a_listed_image(deployment):
    created = run_cli(deployment.cli_env, "token", "create", "alice")
    headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    deployment.s3.put_object(Bucket=deployment.names.bucket, Key="originals/alice/dropped.jpg",
                             Body=imagefactory.jpeg_bytes(800, 600), ContentType="image/jpeg")

    def listed():
        images = requests.get(f"{deployment.base}/api/images", headers=headers, timeout=5).json()["images"]
        return [i for i in images if i["filename"] == "dropped.jpg" and i["status"] == "ready"]

    [image] = wait_for(listed, "adopting the dropped object", deployment)
    assert (image["width"], image["height"]) == (800, 600)
    assert "originals/alice/dropped.jpg" not in deployment.keys()
    assert f"originals/alice/{image['image_id']}" in deployment.keys()


def test_a_session_made_by_one_server_is_known_to_the_other(deployment):
    browser = requests.Session()
    page = browser.get(f"{deployment.base}/", timeout=10)
    assert page.status_code == 200 and browser.cookies
    token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    # A visit stores nothing: the visitor cookie alone is signed, and every task can check it.
    assert deployment.dynamodb.scan(TableName=deployment.names.session_table)["Items"] == []
    assert browser.get(f"{deployment.other_base}/api/me", timeout=10).json()["usage"]["images"] == 0
    written = browser.post(f"{deployment.base}/api/images/upload", json={"content_type": "image/png", "size": 10},
                           headers={"X-CSRF-Token": token}, timeout=10)  # the first write makes the workspace
    assert written.status_code == 201, written.text
    me = browser.get(f"{deployment.other_base}/api/me", timeout=10)  # another task, same DynamoDB table
    assert me.status_code == 200, me.text
    assert me.json()["usage"]["images"] == 1 and me.json()["expires_at"]
    listed = browser.get(f"{deployment.other_base}/api/images", timeout=10).json()["images"]
    assert [image["image_id"] for image in listed] == [written.json()["image_id"]]
    stored = deployment.dynamodb.scan(TableName=deployment.names.session_table)["Items"]
    assert len(stored) == 1 and "expiration" in stored[0]
    assert requests.get(f"{deployment.other_base}/api/me", timeout=10).status_code == 401  # no cookie, no session
