"""AWS Lambda entry point (``handler.handler``): jobs from SQS (or S3 directly) -> the pipeline.

Thin on purpose: settings from the environment, the boto3 clients and adapters built once per
container on the first invocation (not at import, so importing this module needs neither AWS
nor settings), composed by imageservice.composition (as
``serve`` and ``imageservice worker`` compose theirs); then imageservice.entrypoints.aws_processor does the work — the same code the
``imageservice worker`` command runs against emulators.

Imports only the core, the ports, the AWS adapters and settings: no Flask, no web code.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from imageservice import logs
from imageservice.adapters.aws.factory import build_aws_adapters, build_event_topic
from imageservice.adapters.aws.metrics import PowertoolsMetrics
from imageservice.composition import build_processing
from imageservice.entrypoints.aws_processor import EventProcessor, build_event_processor
from imageservice.settings import Settings

SERVICE = "imageservice-processor"
logger = Logger(service=SERVICE)
_processor: EventProcessor | None = None


def _event_processor() -> EventProcessor:
    """The container's processor, built on first use and kept for the next invocations."""
    global _processor
    if _processor is None:
        settings = Settings.from_env(backend="aws")
        # The pipeline's own lines (with the upload's request id) as JSON on stdout, next to
        # the Powertools logger's.
        logs.configure(logger.log_level)
        blobs, catalog, queue, clients = build_aws_adapters(settings)
        processing = build_processing(settings, blobs, catalog, queue, PowertoolsMetrics(SERVICE),
                                      build_event_topic(settings, clients))
        _processor = build_event_processor(settings, processing.pipeline, processing.notifications, logger=logger,
                                           batches=processing.batches)
    return _processor


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS event -> ``{"batchItemFailures": [...]}``; direct S3 event -> a summary (raises
    when any object failed, so Lambda retries the event)."""
    return _event_processor().handle(event, context)


def reset() -> None:
    """Forget the built processor (tests that change the environment between invocations)."""
    global _processor
    _processor = None
