"""EMF documents, the Prometheus rendering and the JSON log lines, each parsed back."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
from pathlib import Path

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


def test_every_metric_the_code_names_is_declared():
    """Both sinks refuse an unknown name at the moment of counting, which is usually an error
    path no other test takes (a CDN that failed to invalidate): read the names from the code."""
    application = Path(__file__).resolve().parents[2] / "application" / "imageservice"
    named = {match for path in application.rglob("*.py")
             for match in re.findall(r"\.(?:increment|timing)\(\s*\"([a-z_]+)\"", path.read_text())}
    assert {"images_processed", "conversion_time", "cdn_invalidation_failures"} <= named
    assert named <= set(METRICS)


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


class _CountingStream(io.StringIO):
    """A stream that remembers how many times it was written to."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _buffered_logger(stream, **options) -> tuple[logging.Logger, logs.BufferedLineHandler]:
    handler = logs.BufferedLineHandler(stream, **options)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger(f"imageservice.test.buffered.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def _messages(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


def test_buffered_lines_are_written_in_one_batch_when_max_lines_are_waiting():
    out = _CountingStream()
    logger, handler = _buffered_logger(out, max_lines=5, max_delay=3600)
    try:
        for n in range(4):
            logger.info("line %d", n)
        assert out.getvalue() == ""
        logger.info("line 4")
        assert _messages(out) == [f"line {n}" for n in range(5)]
        assert out.writes == 1
    finally:
        handler.close()


def test_a_warning_is_written_at_once_after_the_lines_before_it():
    out = _CountingStream()
    logger, handler = _buffered_logger(out, max_lines=100, max_delay=3600)
    try:
        logger.info("before")
        logger.warning("trouble")
        assert _messages(out) == ["before", "trouble"]
    finally:
        handler.close()


def test_a_quiet_buffer_is_written_within_max_delay():
    out = io.StringIO()
    logger, handler = _buffered_logger(out, max_lines=100, max_delay=0.05)
    try:
        logger.info("alone")
        deadline = time.monotonic() + 5
        while not out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _messages(out) == ["alone"]
    finally:
        handler.close()


def test_closing_writes_what_waits_and_stops_the_flusher():
    out = io.StringIO()
    logger, handler = _buffered_logger(out, max_lines=100, max_delay=3600)
    logger.info("last words")
    handler.close()
    assert _messages(out) == ["last words"]
    assert not handler._flusher.is_alive()


def test_lines_from_many_threads_are_each_written_once_and_whole():
    out = io.StringIO()
    logger, handler = _buffered_logger(out, max_lines=7, max_delay=0.01)

    def burst(thread: int) -> None:
        for n in range(500):
            logger.info("t%d-%d", thread, n)

    try:
        threads = [threading.Thread(target=burst, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        handler.close()
    messages = _messages(out)  # every line parses: none was torn
    assert sorted(messages) == sorted(f"t{t}-{n}" for t in range(8) for n in range(500))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_its_own_lines_not_its_parents(tmp_path):
    path = tmp_path / "log.jsonl"
    with path.open("a", buffering=1) as stream:
        logger, handler = _buffered_logger(stream, max_lines=100, max_delay=3600)
        logger.info("parent pending")
        pid = os.fork()
        if pid == 0:  # the child: its own flusher, its own lines, written when it exits
            try:
                logger.info("child flusher running: %s", handler._flusher.is_alive())
                handler.close()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        handler.close()
    assert sorted(json.loads(line)["message"] for line in path.read_text().splitlines()) == [
        "child flusher running: True", "parent pending"]


def test_configure_buffers_only_when_asked(monkeypatch):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("INFO", io.StringIO(), buffered=True)
        assert [type(h) for h in root.handlers] == [logs.BufferedLineHandler]
        buffered = root.handlers[0]
        logs.configure("INFO", io.StringIO())
        assert [type(h) for h in root.handlers] == [logging.StreamHandler]
        assert not buffered._flusher.is_alive()  # the replaced handler wrote its lines and stopped
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_a_stream_that_fails_costs_the_caller_nothing_and_says_so_on_stderr(capsys):
    class BrokenStream(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError("the reader went away")

    logger, handler = _buffered_logger(BrokenStream(), max_lines=1, max_delay=3600)
    try:
        logger.info("lost line")  # a full batch: written (and failing) in this very call
    finally:
        handler.close()
    assert "BrokenPipeError: the reader went away" in capsys.readouterr().err
