"""Metrics and correlated logs, local mode and the Lambda handler.

Local: a real upload through the API and the job worker, then ``GET /metrics`` (Prometheus
text, admin token only). Logs: the request id of the upload request (``X-Request-Id``) is on
the API's log line and on the processor's lines for that image. Lambda: the handler on a real
SQS event (moto server) writes Powertools EMF lines and JSON log lines with the same id.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
from pathlib import Path

import pytest

import imagefactory
from imageservice import logs
from imageservice.adapters.aws.events import app_message_body, sqs_lambda_event
from imageservice.adapters.aws.factory import build_aws_adapters
from imageservice.adapters.imaging_pool import InlineImagingRunner
from imageservice.adapters.aws.setup import setup_resources
from imageservice.core import correlation
from imageservice.core.records import Job
from imageservice.commands import UploadCommand
from imageservice.service import ImageService, Principal
from imageservice.settings import Settings
from imageservice.bootstrap import build_components
from imageservice.core.errors import TransientError
from imageservice.entrypoints.worker import Worker
from support import assert_error, make_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def log_lines():
    """The process's log lines as parsed JSON (logs.configure on a buffer), restored after."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure("INFO", buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def scrape(client, token: str) -> dict[str, float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.get_data(as_text=True).splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_a_real_upload_rejection_and_conversion(api, client, components):
    admin = components.service.create_token("ops", admin=True)
    image_id = api.upload(imagefactory.jpeg_bytes(800, 600))
    assert api.image(image_id)["status"] == "ready"
    api.upload(b"this is not an image at all" * 10, filename="fake.jpg")
    converted = api.call("POST", f"/api/images/{image_id}/convert", json={"format": "png", "width": 100})
    assert converted.status_code == 200, converted.get_json()

    samples = scrape(client, admin)
    assert samples["imageservice_images_processed_total"] == 1
    assert samples['imageservice_images_rejected_total{code="not_an_image"}'] == 1
    assert samples["imageservice_processing_milliseconds_count"] == 2
    assert samples['imageservice_processing_milliseconds_bucket{le="+Inf"}'] == 2
    assert 0 < samples["imageservice_processing_milliseconds_sum"] < 60_000
    assert samples['imageservice_conversion_milliseconds_count{format="png"}'] == 1
    assert samples['imageservice_conversion_bytes_total{format="png"}'] == converted.get_json()["bytes"]
    assert samples["imageservice_jobs_dead_lettered_total"] == 0


def test_metrics_need_an_admin_token(api, client, token):
    assert_error(client.get("/metrics"), 401)
    assert_error(client.get("/metrics", headers={"Authorization": f"Bearer {token}"}), 403, "forbidden")


def test_a_job_failing_its_last_attempt_counts_as_dead_lettered(tmp_path, monkeypatch):
    components = build_components(make_settings(tmp_path, job_max_attempts=1))
    ticket = components.service.create_upload(Principal("alice"), UploadCommand(content_type="image/jpeg", size=10))
    key = f"originals/alice/{ticket.image_id}"
    components.blobs.put(key, b"0123456789", "image/jpeg")
    components.queue.send(Job(key))

    def storage_fell_over(record):
        raise TransientError("storage fell over")

    monkeypatch.setattr(components.pipeline, "_process_claimed", storage_fell_over)
    assert Worker(components).run_once() == 1
    assert [job.key for job, _ in components.queue.dead_letters()] == [key]
    assert "imageservice_jobs_dead_lettered_total 1\n" in components.metrics.render()
    assert 'imageservice_images_rejected_total{code="processing_failed"} 1\n' in components.metrics.render()


def test_one_request_id_links_the_upload_request_to_the_processor_lines(api, client, log_lines):
    data = imagefactory.jpeg_bytes(640, 480)
    response = api.call("POST", "/api/images/upload", headers={"X-Request-Id": "trace-upload-1"},
                        json={"content_type": "image/jpeg", "size": len(data), "filename": "a.jpg"})
    assert response.status_code == 201 and response.headers["X-Request-Id"] == "trace-upload-1"
    ticket = response.get_json()
    assert api.put(ticket, data).status_code == 200  # another request, with an id of its own
    api.process()

    story = [line for line in log_lines() if line.get("request_id") == "trace-upload-1"]
    api_lines = [line for line in story if line["logger"] == "imageservice.access"]
    assert [(line["method"], line["path"], line["status"]) for line in api_lines] == [
        ("POST", "/api/images/upload", 201)]
    # The upload's one line at INFO names who made which image.
    assert api_lines[0]["image_id"] == ticket["image_id"] and api_lines[0]["user_id"] == "alice"
    assert [line["logger"] for line in story if line["logger"].startswith("imageservice.service")] == []
    processor = [line for line in story if line["logger"].startswith(("imageservice.core", "imageservice.pipeline"))]
    assert any(line.get("image_id") == ticket["image_id"] and line.get("outcome") == "ready" for line in processor), story


def test_request_ids_come_from_the_trace_header_or_are_made(client):
    traced = client.get("/healthz", headers={"X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678;Sampled=1"})
    assert traced.headers["X-Request-Id"] == "1-67891233-abcdef012345678912345678"
    made = client.get("/healthz", headers={"X-Request-Id": "has spaces \" and quotes"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])  # a forged value is replaced
    assert client.get("/healthz").headers["X-Request-Id"] != made.headers["X-Request-Id"]


def test_the_lambda_handler_emits_emf_and_logs_the_uploads_request_id(
        moto_server, aws_names, monkeypatch, capsys, log_lines):
    for name, value in aws_names.env(moto_server.endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IMAGESERVICE_SECRET_KEY", "test")
    settings = Settings.from_env()
    blobs, catalog, queue, clients = build_aws_adapters(settings)
    list(setup_resources(settings, clients))
    service = ImageService(blobs, catalog, queue, settings, imaging=InlineImagingRunner())
    data = imagefactory.jpeg_bytes(320, 240)
    with correlation.bound("trace-lambda-7"):
        ticket = service.create_upload(Principal("alice"), UploadCommand(content_type="image/jpeg", size=len(data)))
    key = f"originals/alice/{ticket.image_id}"
    blobs.put(key, data, "image/jpeg")
    message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": app_message_body(Job(key, "complete")),
               "Attributes": {"ApproximateReceiveCount": "1"}}
    event = sqs_lambda_event([message], f"arn:aws:sqs:us-east-1:123456789012:{aws_names.queue_url.rsplit('/', 1)[1]}",
                             "us-east-1")

    monkeypatch.syspath_prepend(str(REPO / "lambda"))
    handler = importlib.import_module("handler")
    handler.reset()
    try:
        capsys.readouterr()
        assert handler.handler(event, None) == {"batchItemFailures": []}
        out = capsys.readouterr().out
    finally:
        handler.reset()

    emf = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    by_name = {doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]: doc for doc in emf}
    assert set(by_name) >= {"ImagesProcessed", "ProcessingTime"}, out
    processed = by_name["ImagesProcessed"]
    assert processed["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ImageService"
    assert processed["ImagesProcessed"] == [1.0] or processed["ImagesProcessed"] == 1.0
    assert processed["service"] == "imageservice-processor"
    assert by_name["ProcessingTime"]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds"
    # handler.configure() pointed the root logger at stdout: the pipeline's JSON line is there.
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' not in line]
    mine = [line for line in lines if line.get("request_id") == "trace-lambda-7"]
    assert any(line.get("image_id") == ticket.image_id and line.get("outcome") == "ready" for line in mine), out

