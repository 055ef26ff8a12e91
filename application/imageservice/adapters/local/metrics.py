"""Local metrics: counters and histograms in SQLite, rendered as Prometheus text.

gunicorn runs several web worker processes, each with its own job thread: an in-memory
registry would show one process's share. One small SQLite file in the data dir (WAL, one
upsert transaction per data point) adds them up for ``GET /metrics``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path

from ...metrics import COUNTER, METRICS, spec

log = logging.getLogger(__name__)

PREFIX = "imageservice_"
# Histogram buckets (ms): from a thumbnail's few milliseconds to a large conversion's seconds.
TIMING_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
INF = "+Inf"
SCHEMA = """
CREATE TABLE IF NOT EXISTS metric (
    name TEXT NOT NULL, labels TEXT NOT NULL, series TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (name, labels, series)
)
"""


class SqliteMetrics:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)
            self._local.connection = connection
        return connection

    def increment(self, name: str, value: float = 1, **dimensions: str) -> None:
        spec(name)
        self._add(name, dimensions, [("", value)])

    def timing(self, name: str, milliseconds: float, **dimensions: str) -> None:
        spec(name)
        series = [(str(b), 1.0) for b in TIMING_BUCKETS_MS if milliseconds <= b]
        series += [(INF, 1.0), ("sum", float(milliseconds)), ("count", 1.0)]
        self._add(name, dimensions, series)

    def _add(self, name: str, dimensions: dict[str, str], series: list[tuple[str, float]]) -> None:
        labels = json.dumps(dict(sorted((k, str(v)) for k, v in dimensions.items())), separators=(",", ":"))
        try:
            connection = self._connection()
            with connection:
                connection.executemany(
                    "INSERT INTO metric (name, labels, series, value) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (name, labels, series) DO UPDATE SET value = value + excluded.value",
                    [(name, labels, s, v) for s, v in series],
                )
        except sqlite3.Error as exc:  # the port's promise: a lost point never fails the work
            log.warning("metric %s lost: %s", name, exc)

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format (version 0.0.4)."""
        rows = self._connection().execute("SELECT name, labels, series, value FROM metric").fetchall()
        by_name: dict[str, list[tuple[dict, str, float]]] = {}
        for name, labels, series, value in rows:
            by_name.setdefault(name, []).append((json.loads(labels), series, value))
        lines = []
        for name, metric in METRICS.items():
            if metric.kind == COUNTER:
                full = f"{PREFIX}{name}_total"
                lines += [f"# HELP {full} {metric.help}", f"# TYPE {full} counter"]
                points = by_name.get(name) or [({}, "", 0.0)]
                lines += [f"{full}{_labels(labels)} {_number(value)}" for labels, _, value in sorted(points, key=_order)]
            else:
                full = f"{PREFIX}{name.removesuffix('_time')}_milliseconds"
                lines += [f"# HELP {full} {metric.help}", f"# TYPE {full} histogram"]
                series = {}
                for labels, key, value in by_name.get(name, []):
                    series.setdefault(json.dumps(labels, sort_keys=True), {})[key] = value
                for labels_json, values in sorted(series.items()):
                    labels = json.loads(labels_json)
                    for bucket in [*map(str, TIMING_BUCKETS_MS), INF]:
                        count = sum(v for k, v in values.items() if k == bucket)
                        lines.append(f"{full}_bucket{_labels({**labels, 'le': bucket})} {_number(count)}")
                    lines.append(f"{full}_sum{_labels(labels)} {_number(values.get('sum', 0.0))}")
                    lines.append(f"{full}_count{_labels(labels)} {_number(values.get('count', 0.0))}")
        return "\n".join(lines) + "\n"


def _order(point: tuple[dict, str, float]) -> str:
    return json.dumps(point[0], sort_keys=True)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), "")}"'
               for k, v in labels.items())
    return "{" + ",".join(escaped) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
