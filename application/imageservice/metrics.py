"""The service's metrics: what each name means, and the sinks the ``Metrics`` port has.

- local mode: ``SqliteMetrics`` (adapters/local/metrics.py) keeps counters and histograms in
  the data dir, shared by every web worker and job thread, and renders Prometheus text for
  ``GET /metrics``;
- aws mode: ``EmfMetrics`` writes CloudWatch Embedded Metric Format lines to stdout (Fargate's
  awslogs driver ships them and CloudWatch extracts the metrics); the Lambda uses Powertools
  Metrics (adapters/aws/metrics.py), which writes the same format.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

log = logging.getLogger(__name__)

NAMESPACE = "ImageService"
COUNTER, TIMING = "counter", "timing"


@dataclass(frozen=True)
class MetricSpec:
    kind: str
    emf_name: str  # CloudWatch metric name
    unit: str  # CloudWatch unit
    help: str


METRICS = {
    "images_processed": MetricSpec(COUNTER, "ImagesProcessed", "Count", "Uploads that became ready."),
    "images_rejected": MetricSpec(COUNTER, "ImagesRejected", "Count", "Uploads rejected, by error code."),
    "processing_time": MetricSpec(TIMING, "ProcessingTime", "Milliseconds",
                                  "Time the pipeline spent on one upload, claim to record."),
    "conversion_time": MetricSpec(TIMING, "ConversionTime", "Milliseconds", "Time one conversion took to encode."),
    "conversion_bytes": MetricSpec(COUNTER, "ConversionBytes", "Bytes", "Bytes of conversion outputs made."),
    "jobs_dead_lettered": MetricSpec(COUNTER, "JobsDeadLettered", "Count",
                                     "Jobs that failed their last attempt and went to the dead letters."),
    # the share links' CDN (adapters/aws/cdn.py): a revoked link may still be served from its caches
    "cdn_invalidation_failures": MetricSpec(COUNTER, "CdnInvalidationFailures", "Count",
                                            "Share links whose CloudFront invalidation failed after they ended."),
    # the web server's view of its clients (web/server.py)
    "server_slow_clients": MetricSpec(COUNTER, "ServerSlowClients", "Count",
                                      "Connections closed because a request did not arrive in time "
                                      "or its answer was not read, by reason."),
    "server_requests_refused": MetricSpec(COUNTER, "ServerRequestsRefused", "Count",
                                          "Requests refused from their headers, body unread, by error code."),
    "server_connection_limit_reached": MetricSpec(COUNTER, "ServerConnectionLimitReached", "Count",
                                                  "Times the server stopped accepting at its connection limit."),
}


def spec(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}: add it to imageservice.metrics.METRICS") from None


def emf_line(name: str, value: float, dimensions: dict[str, str], *, service: str,
             timestamp_ms: int | None = None) -> dict:
    """One EMF document for one data point. With dimensions beyond ``service`` the point is
    published twice: per dimension values, and as the service-wide total."""
    metric = spec(name)
    keys = ["service", *sorted(dimensions)]
    dimension_sets = [keys] if len(keys) == 1 else [keys, ["service"]]
    return {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": [{"Name": metric.emf_name, "Unit": metric.unit}],
            }],
        },
        "service": service,
        **{k: str(v) for k, v in dimensions.items()},
        metric.emf_name: value,
    }


class EmfMetrics:
    """CloudWatch Embedded Metric Format, one JSON line per data point on ``stream``."""

    def __init__(self, service: str, stream: IO[str] | None = None):
        self.service = service
        self.stream = stream
        self._lock = threading.Lock()

    def increment(self, name: str, value: float = 1, **dimensions: str) -> None:
        self._emit(name, value, dimensions)

    def timing(self, name: str, milliseconds: float, **dimensions: str) -> None:
        self._emit(name, round(milliseconds, 3), dimensions)

    def _emit(self, name: str, value: float, dimensions: dict[str, str]) -> None:
        line = json.dumps(emf_line(name, value, dimensions, service=self.service), separators=(",", ":"))
        stream = self.stream or sys.stdout
        try:
            with self._lock:  # one whole line at a time from the web threads
                stream.write(line + "\n")
                stream.flush()
        except (OSError, ValueError) as exc:  # a closed stdout must not fail a request
            log.warning("metric %s lost: %s", name, exc)
