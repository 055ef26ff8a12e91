"""EMF documents, the Prometheus rendering and the JSON log lines, each parsed back."""

from __future__ import annotations

import io
import json
import logging

import pytest

from imageservice import logs
from imageservice.adapters.local.metrics import SqliteMetrics
from imageservice.core import correlation
from imageservice.metrics import METRICS, EmfMetrics
from imageservice.ports import NO_METRICS, Metrics


def test_every_sink_is_a_metrics_port():
    for sink in (NO_METRICS, EmfMetrics("web", io.StringIO())):
        assert isinstance(sink, Metrics)


def test_emf_lines_are_cloudwatch_documents_with_per_code_and_total_dimension_sets():
    out = io.StringIO()
    EmfMetrics("imageservice-web", out).increment("images_rejected", code="corrupt")
    EmfMetrics("imageservice-web", out).timing("conversion_time", 12.3456, format="png")
    rejected, timing = (json.loads(line) for line in out.getvalue().splitlines())
    directive = rejected["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ImageService"
    assert directive["Dimensions"] == [["service", "code"], ["service"]]
    assert directive["Metrics"] == [{"Name": "ImagesRejected", "Unit": "Count"}]
    assert (rejected["service"], rejected["code"], rejected["ImagesRejected"]) == ("imageservice-web", "corrupt", 1)
    assert isinstance(rejected["_aws"]["Timestamp"], int)
    assert timing["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "ConversionTime", "Unit": "Milliseconds"}]
    assert timing["ConversionTime"] == 12.346


def test_an_unknown_metric_name_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown metric"):
        EmfMetrics("web", io.StringIO()).increment("imagez_processed")


def test_prometheus_text_adds_up_points_from_several_writers(tmp_path):
    first, second = SqliteMetrics(tmp_path / "m.sqlite3"), SqliteMetrics(tmp_path / "m.sqlite3")  # two processes
    first.increment("images_rejected", code='we"ird')
    second.increment("images_rejected", code='we"ird')
    first.timing("processing_time", 7)
    second.timing("processing_time", 700)
    text = first.render()
    assert 'imageservice_images_rejected_total{code="we\\"ird"} 2\n' in text
    assert 'imageservice_processing_milliseconds_bucket{le="10"} 1\n' in text
    assert 'imageservice_processing_milliseconds_bucket{le="1000"} 2\n' in text
    assert "imageservice_processing_milliseconds_sum 707\n" in text
    assert "imageservice_processing_milliseconds_count 2\n" in text
    assert "# TYPE imageservice_processing_milliseconds histogram" in text
    assert {f"# TYPE imageservice_{n}_total counter" for n, m in METRICS.items() if m.kind == "counter"} <= set(
        text.splitlines())


def test_log_lines_are_json_with_the_bound_request_id_and_extras():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("imageservice.test")
    logger.addHandler(handler)
    try:
        with correlation.bound("abc-123"):
            logger.warning("done %s", "x", extra={"image_id": "01H"})
        logger.warning("unbound")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["message"], first["request_id"], first["image_id"], first["level"]) == ("done x", "abc-123", "01H",
                                                                                          "WARNING")
    assert second["request_id"] is None


def test_only_token_like_request_ids_are_accepted():
    assert correlation.accepted("Root=1-abc;Parent=2") == "Root=1-abc;Parent=2"
    assert correlation.accepted("a" * 129) is None
    assert correlation.accepted('x" injected') is None
    assert correlation.accepted("") is None
