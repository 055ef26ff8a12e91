"""Processing, composed in one place: the pipeline, the anonymous admission it refunds through,
the notifications it announces, and the imaging pool. ``bootstrap.build_components`` (serve,
worker, the CLI) and the Lambda handler both build processing here, so they cannot drift apart.

Kept free of the web and of the typed API commands: the Lambda's zip carries this module but
not ``bootstrap.py`` or ``service/`` (lambda/build_zip.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .adapters.imaging_pool import build_imaging_runner
from .adapters.scanners import build_scanner
from .admission import AnonymousAdmission, AnonymousLimits
from .batching import BatchRunner
from .notifications import EventPublisher, NotificationDelivery, build_webhook, notification_targets
from .pipeline import Pipeline, PipelineConfig
from .catalog import Catalog
from .ports import BlobStore, ImagingRunner, JobQueue, Metrics
from .settings import Settings


@dataclass
class Processing:
    pipeline: Pipeline
    admission: AnonymousAdmission
    notifications: NotificationDelivery
    imaging: ImagingRunner
    batches: BatchRunner


def build_processing(settings: Settings, blobs: BlobStore, catalog: Catalog, queue: JobQueue, metrics: Metrics,
                     topic: Any = None) -> Processing:
    """``topic``: aws mode's SNS topic for image events (None: webhook only, if configured)."""
    # The catalog keeps the admission counters: one store shared by every web worker and task.
    admission = AnonymousAdmission(catalog, AnonymousLimits.from_settings(settings))
    imaging = build_imaging_runner(settings)
    pipeline = Pipeline(blobs, catalog, PipelineConfig.from_settings(settings), metrics=metrics, imaging=imaging,
                        scanner=build_scanner(settings), refund_charge=admission.refund_upload,
                        announce=EventPublisher(queue, notification_targets(settings)).announce)
    return Processing(pipeline, admission, NotificationDelivery(catalog, build_webhook(settings), topic), imaging,
                      BatchRunner(blobs, catalog, imaging, settings, metrics))

