"""Wiring: build the adapters the settings ask for, once, and hand them to whoever needs them."""

from __future__ import annotations

from dataclasses import dataclass

from .adapters.imaging_pool import build_imaging_runner
from .admission import AnonymousAdmission, AnonymousLimits
from .pipeline import Pipeline, PipelineConfig
from .ports import NO_METRICS, BlobStore, Catalog, ImagingRunner, JobQueue, Metrics
from .service import ImageService
from .settings import Settings


@dataclass
class Components:
    settings: Settings
    blobs: BlobStore
    catalog: Catalog
    queue: JobQueue
    service: ImageService
    pipeline: Pipeline
    aws_clients: object | None = None  # aws mode: the boto3 clients, for Flask-Session and setup
    metrics: Metrics = NO_METRICS  # ops: local SQLite (GET /metrics) or EMF lines (aws)
    admission: AnonymousAdmission | None = None  # edge: budgets of anonymous workspaces
    imaging: ImagingRunner | None = None  # budget: one pool of imaging children per process, shared


def build_components(settings: Settings) -> Components:
    if settings.backend == "aws":
        from .adapters.aws.factory import build_aws_adapters

        blobs, catalog, queue, clients = build_aws_adapters(settings)
    else:
        blobs, catalog, queue, clients = *build_local_adapters(settings), None
    metrics = build_metrics(settings)
    # The catalog keeps the admission counters: one store shared by every web worker and task.
    admission = AnonymousAdmission(catalog, AnonymousLimits.from_settings(settings))  # type: ignore[arg-type]
    imaging = build_imaging_runner(settings)
    return Components(
        settings=settings,
        blobs=blobs,
        catalog=catalog,
        queue=queue,
        service=ImageService(blobs, catalog, queue, settings, metrics=metrics, admission=admission, imaging=imaging),
        pipeline=Pipeline(blobs, catalog, PipelineConfig.from_settings(settings), metrics=metrics, imaging=imaging),
        aws_clients=clients,
        metrics=metrics,
        admission=admission,
        imaging=imaging,
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
    from .adapters.local.catalog import SqliteCatalog
    from .adapters.local.jobqueue import SqliteJobQueue

    data = settings.data_path
    signer = LocalUrlSigner(settings.resolved_secret_key(), settings.public_url)
    return (
        FilesystemBlobStore(data / "blobs", signer),
        SqliteCatalog(data / "catalog.sqlite3"),
        SqliteJobQueue(
            data / "queue.sqlite3",
            visibility_timeout=settings.job_visibility_timeout,
            max_attempts=settings.job_max_attempts,
        ),
    )
