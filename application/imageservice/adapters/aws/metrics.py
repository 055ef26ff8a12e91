"""The Lambda's metrics: CloudWatch EMF through Powertools Metrics.

Each data point is one ``single_metric`` (flushed as one EMF line when its block ends), so a
point's dimensions (``code`` of a rejection, ``format`` of a conversion) never leak onto
another metric. Powertools is only in the Lambda package; the web app (Fargate) writes the same
format with imageservice.metrics.EmfMetrics.
"""

from __future__ import annotations

from ...metrics import NAMESPACE, spec


class PowertoolsMetrics:
    def __init__(self, service: str):
        self.service = service

    def increment(self, name: str, value: float = 1, **dimensions: str) -> None:
        self._emit(name, value, dimensions)

    def timing(self, name: str, milliseconds: float, **dimensions: str) -> None:
        self._emit(name, round(milliseconds, 3), dimensions)

    def _emit(self, name: str, value: float, dimensions: dict[str, str]) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        metric = spec(name)
        with single_metric(name=metric.emf_name, unit=MetricUnit(metric.unit), value=value,
                           namespace=NAMESPACE, default_dimensions={"service": self.service}) as point:
            for key, dimension in sorted(dimensions.items()):
                point.add_dimension(name=key, value=str(dimension))
