"""Wiring: build the adapters the settings ask for, once, and hand them to whoever needs them.
Processing itself is composed by ``composition.py``, which the Lambda handler uses too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .admission import AnonymousAdmission
from .composition import build_processing
from .notifications import NotificationDelivery
from .pipeline import Pipeline
from .batching import BatchRunner
from .catalog import Catalog
from .ports import NO_EDGE_CACHE, NO_METRICS, BlobStore, EdgeCache, ImagingRunner, JobQueue, Metrics, SignedUrlEndpoint
from .service import ImageService
from .settings import Settings

if TYPE_CHECKING:  # boto3 is imported only in aws mode
    from .adapters.aws.factory import AwsClients


@dataclass
class Components:
    settings: Settings
    blobs: BlobStore
    catalog: Catalog
    queue: JobQueue
    service: ImageService
    pipeline: Pipeline
    aws_clients: AwsClients | None = None  # aws mode: the boto3 clients, for Flask-Session and setup
    metrics: Metrics = NO_METRICS  # ops: local SQLite (GET /metrics) or EMF lines (aws)
    admission: AnonymousAdmission | None = None  # edge: budgets of anonymous workspaces
    notifications: NotificationDelivery | None = None  # edge: what notify jobs do
    imaging: ImagingRunner | None = None  # budget: one pool of imaging children per process, shared
    blob_endpoint: SignedUrlEndpoint | None = None  # local mode: the store behind /blobs/ URLs
    edge_cache: EdgeCache = NO_EDGE_CACHE  # aws mode: the CDN in front of share links
    batch_runner: BatchRunner | None = None  # what batch jobs do


def build_components(settings: Settings) -> Components:
    if settings.backend == "aws":
        from .adapters.aws.factory import build_aws_adapters, build_edge_cache, build_event_topic

        blobs, catalog, queue, clients = build_aws_adapters(settings)
        topic = build_event_topic(settings, clients)
        metrics = build_metrics(settings)
        edge_cache = build_edge_cache(settings, clients, metrics)
    else:
        topic, edge_cache = None, NO_EDGE_CACHE
        blobs, catalog, queue, clients = *build_local_adapters(settings), None
        metrics = build_metrics(settings)
    processing = build_processing(settings, blobs, catalog, queue, metrics, topic)  # type: ignore[arg-type]
    return Components(
        settings=settings,
        blobs=blobs,
        catalog=catalog,
        queue=queue,
        service=ImageService(blobs, catalog, queue, settings, metrics=metrics, admission=processing.admission,
                             imaging=processing.imaging, edge_cache=edge_cache),
        pipeline=processing.pipeline,
        aws_clients=clients,
        metrics=metrics,
        admission=processing.admission,
        notifications=processing.notifications,
        imaging=processing.imaging,
        # The filesystem store answers its own signed URLs; in aws mode S3 does.
        blob_endpoint=blobs if isinstance(blobs, SignedUrlEndpoint) else None,
        edge_cache=edge_cache,
        batch_runner=processing.batches,
    )


def build_metrics(settings: Settings) -> Metrics:
    """aws: EMF lines on stdout (CloudWatch extracts them from the logs); local: counters in
    the data dir that ``GET /metrics`` renders."""
    if settings.backend == "aws":
        from .metrics import EmfMetrics

        return EmfMetrics(service="imageservice-web")
    from .adapters.local.metrics import SqliteMetrics

    return SqliteMetrics(settings.data_path / "metrics.sqlite3")


def build_local_adapters(settings: Settings):
    from .adapters.local.blobstore import FilesystemBlobStore, LocalUrlSigner
    from .adapters.local.jobqueue import SqliteJobQueue
    from .adapters.sqlite.store import SqliteStore

    data = settings.data_path
    signer = LocalUrlSigner(settings.resolved_secret_key(), settings.public_url)
    return (
        FilesystemBlobStore(data / "blobs", signer),
        Catalog(SqliteStore(data / "catalog.sqlite3")),
        SqliteJobQueue(
            data / "queue.sqlite3",
            visibility_timeout=settings.job_visibility_timeout,
            max_attempts=settings.job_max_attempts,
        ),
    )

