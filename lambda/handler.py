"""AWS Lambda entry point (``handler.handler``): jobs from SQS (or S3 directly) -> the pipeline.

Thin on purpose: settings from the environment, the boto3 clients and adapters built once per
container on the first invocation (not at import, so importing this module needs neither AWS
nor settings), then imageservice.adapters.aws.processor does the work — the same code the
``imageservice worker`` command runs against emulators.

Imports only the core, the ports, the AWS adapters and settings: no Flask, no web code.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from imageservice import logs
from imageservice.admission import AnonymousAdmission, AnonymousLimits
from imageservice.adapters.aws.factory import build_aws_adapters, build_event_topic
from imageservice.adapters.aws.metrics import PowertoolsMetrics
from imageservice.adapters.aws.processor import EventProcessor
from imageservice.adapters.imaging_pool import build_imaging_runner
from imageservice.adapters.scanners import build_scanner
from imageservice.notifications import EventPublisher, NotificationDelivery, build_webhook, notification_targets
from imageservice.pipeline import Pipeline, PipelineConfig
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
        # Image events: queued by the pipeline (notify jobs on the same queue), delivered here.
        publisher = EventPublisher(queue, notification_targets(settings))
        pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(settings), metrics=PowertoolsMetrics(SERVICE),
                            imaging=build_imaging_runner(settings), announce=publisher.announce,
                            scanner=build_scanner(settings),
                            refund_charge=AnonymousAdmission(catalog, AnonymousLimits.from_settings(settings)).refund_upload)
        notifications = NotificationDelivery(catalog, build_webhook(settings), build_event_topic(settings, clients))
        _processor = EventProcessor(pipeline, settings.job_max_attempts, settings.job_visibility_timeout, logger=logger,
                                    notifications=notifications)
    return _processor


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS event -> ``{"batchItemFailures": [...]}``; direct S3 event -> a summary (raises
    when any object failed, so Lambda retries the event)."""
    return _event_processor().handle(event, context)


def reset() -> None:
    """Forget the built processor (tests that change the environment between invocations)."""
    global _processor
    _processor = None
