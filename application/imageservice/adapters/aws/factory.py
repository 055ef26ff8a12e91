"""Build the boto3 clients once, from settings, and the AWS adapters around them.

One boto3 Session per process; every client comes from it with the region and (for
emulators) the endpoint from settings. Credentials come from boto3's own chain (environment,
profile, container or Lambda role).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from ...catalog import Catalog
from ...ports import NO_EDGE_CACHE, EdgeCache, Metrics
from ...settings import Settings
from ..dynamodb.store import DynamoStore
from .cdn import CloudFrontEdgeCache
from .s3 import S3BlobStore
from .sns import SnsEventTopic
from .sqs import SqsJobQueue

DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT = 5
# Longer than SQS's longest long poll (20 s), so a quiet queue is not mistaken for a dead one.
READ_TIMEOUT = 30
RETRIES = {"mode": "standard", "max_attempts": 4}
MAX_POOL_CONNECTIONS = 32  # gunicorn threads and Lambda batch records share the clients


@dataclass(frozen=True)
class AwsClients:
    s3: Any
    dynamodb: Any  # the plain client: the catalog writes typed attribute values itself
    # Flask-Session's DynamoDB backend wants a resource. Its client converts Python values
    # on the way in and out, so it cannot double as the catalog's plain client.
    dynamodb_resource: Any
    sqs: Any
    sns: Any
    cloudfront: Any
    region: str
    endpoint_url: str | None


def build_aws_clients(settings: Settings) -> AwsClients:
    """The boto3 clients every AWS adapter (and Flask-Session) shares; makes no request."""
    session = boto3.session.Session(region_name=settings.aws_region or None)
    region = session.region_name or DEFAULT_REGION
    endpoint = settings.aws_endpoint_url or None
    base = Config(
        region_name=region,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries=RETRIES,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    # Explicit, so boto3's own AWS_ENDPOINT_URL cannot override a separate S3 endpoint.
    s3_endpoint = settings.s3_endpoint_url or endpoint
    # Emulators answer on a host name or IP without bucket subdomains: path-style URLs there.
    s3_options: dict[str, str] = {"addressing_style": "path" if s3_endpoint else "virtual"}
    if not s3_endpoint:
        # Presigned URLs name the regional host (bucket.s3.<region>.amazonaws.com) in every region.
        s3_options["us_east_1_regional_endpoint"] = "regional"
    s3_config = base.merge(Config(signature_version="s3v4", s3=s3_options))
    return AwsClients(
        s3=session.client("s3", endpoint_url=s3_endpoint, config=s3_config),
        dynamodb=session.client("dynamodb", endpoint_url=endpoint, config=base),
        dynamodb_resource=session.resource("dynamodb", endpoint_url=endpoint, config=base),
        sqs=session.client("sqs", endpoint_url=endpoint, config=base),
        sns=session.client("sns", endpoint_url=endpoint, config=base),
        cloudfront=session.client("cloudfront", endpoint_url=endpoint, config=base),
        region=region,
        endpoint_url=endpoint,
    )


def build_aws_adapters(settings: Settings, clients: AwsClients | None = None):
    """``(blobs, catalog, queue, clients)`` for aws mode, as bootstrap.build_components expects."""
    clients = clients or build_aws_clients(settings)
    blobs = S3BlobStore(clients.s3, settings.bucket)
    catalog = Catalog(DynamoStore(clients.dynamodb, settings.table))
    queue = SqsJobQueue(
        clients.sqs,
        settings.queue_url,
        dead_letter_queue_url=settings.dead_letter_queue_url or None,
        max_attempts=settings.job_max_attempts,
    )
    return blobs, catalog, queue, clients


def build_edge_cache(settings: Settings, clients: AwsClients, metrics: Metrics) -> EdgeCache:
    """The share links' CloudFront distribution when IMAGESERVICE_CDN_DISTRIBUTION_ID is set."""
    if not settings.cdn_distribution_id:
        return NO_EDGE_CACHE
    return CloudFrontEdgeCache(clients.cloudfront, settings.cdn_distribution_id, metrics)


def build_event_topic(settings: Settings, clients: AwsClients) -> SnsEventTopic | None:
    """The image-events topic when IMAGESERVICE_TOPIC_ARN is set."""
    return SnsEventTopic(clients.sns, settings.topic_arn) if settings.topic_arn else None
