"""Structured logs: one JSON object per line on stdout, in every process of both modes.

Each line has ``time``, ``level``, ``logger``, ``message``, the bound request id (see
core/correlation.py) and whatever the call passed as ``extra`` (``image_id``, ``outcome``...),
so CloudWatch Logs Insights or ``jq`` can select an upload's whole story by ``request_id``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
import weakref
from collections import deque
from datetime import datetime, timezone
from typing import IO

from .core.correlation import current_request_id

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime", "taskName"}


class RequestIdFilter(logging.Filter):
    """Stamps the bound request id onto every record (unless the call gave one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record. Every API call writes one of these lines, so the per-line
    work is kept small: the time's whole seconds are formatted once per second."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # a race here only formats the same second twice
            self._second_text = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


# A web worker's lines wait at most this long, and at most this many wait (see BufferedLineHandler).
LOG_BATCH_SECONDS = 0.25
LOG_BATCH_LINES = 256


class BufferedLineHandler(logging.StreamHandler):
    """A StreamHandler that writes its lines in batches: when ``max_lines`` are waiting, at
    least every ``max_delay`` seconds (a daemon thread), at once for a WARNING or worse (and
    everything before it, in order), and on flush/close (logging's exit hook calls both).

    For the web server, which writes a line per request: there, each write of one line is a
    system call made with the GIL released, and on a busy worker every such release hands the
    GIL to another thread and back, which costs more than the line itself. Lines wait in a
    deque (appends and pops are atomic), so logging threads take no lock either. A crash
    (SIGKILL) loses at most the lines of the last ``max_delay`` seconds."""

    def __init__(self, stream: IO[str] | None = None, *, max_lines: int = LOG_BATCH_LINES,
                 max_delay: float = LOG_BATCH_SECONDS):
        super().__init__(stream)
        self.max_lines = max_lines
        self.max_delay = max_delay
        self._lines: deque[str] = deque()
        self._write_lock = threading.Lock()
        self._stopped = threading.Event()
        self._start_flusher()
        _watch_forks(self)

    def _start_flusher(self) -> None:
        self._flusher = threading.Thread(target=self._flush_every, args=(self._stopped,), name="log-flusher",
                                         daemon=True)
        self._flusher.start()

    def _flush_every(self, stopped: threading.Event) -> None:
        while not stopped.wait(self.max_delay):
            self.flush()

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle would take the handler's lock around emit; the deque needs none.
        passed = self.filter(record)
        if passed:
            self.emit(record)
        return bool(passed)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self.max_lines or record.levelno >= logging.WARNING:
            self.flush()

    def flush(self) -> None:
        with self._write_lock:
            lines = []
            try:
                while True:
                    lines.append(self._lines.popleft())
            except IndexError:
                pass
            if not lines or self.stream is None:
                return
            try:
                self.stream.write("".join(lines))
                if hasattr(self.stream, "flush"):
                    self.stream.flush()
            except Exception:
                # As logging does with a line it cannot write: said on stderr, never raised
                # into the request (or the flusher) that happened to write the batch.
                if logging.raiseExceptions and sys.stderr:
                    traceback.print_exc(file=sys.stderr)

    def close(self) -> None:
        self._stopped.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=1)
        self.flush()
        super().close()

    def _after_fork(self) -> None:
        # Only the forking thread lives on in a child: the copy needs a flusher of its own,
        # and leaves the lines it inherited to the parent, which writes them.
        self._lines.clear()
        self._write_lock = threading.Lock()
        if not self._stopped.is_set():
            self._stopped = threading.Event()
            self._start_flusher()


_buffered_handlers: "weakref.WeakSet[BufferedLineHandler]" = weakref.WeakSet()
_fork_hook: list = []  # holds the fork hook once registered (it cannot be taken back)


def _watch_forks(handler: BufferedLineHandler) -> None:
    if not _fork_hook:
        _fork_hook.append(_restart_flushers)
        os.register_at_fork(after_in_child=_restart_flushers)
    _buffered_handlers.add(handler)


def _restart_flushers() -> None:
    for handler in list(_buffered_handlers):
        handler._after_fork()


def lean_records() -> None:
    """Stop every LogRecord from collecting what no line shows: the caller's file and line (a
    stack walk per record), thread and process names. The logging HOWTO's "Optimization"
    section names these switches; ``_srcfile`` is the documented one for the caller lookup."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure(level: str | int = "INFO", stream: IO[str] | None = None, *, buffered: bool = False) -> None:
    """Route every logger to one JSON handler on ``stream`` (stdout), replacing any handler the
    runtime installed (Lambda's, gunicorn's defaults for the root logger). ``buffered``: lines
    are written in batches (BufferedLineHandler), for the web server's line per request; the
    CLI, the worker and the Lambda (frozen between invocations) write each line at once."""
    stream = stream or sys.stdout
    handler = BufferedLineHandler(stream) if buffered else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, BufferedLineHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(level)
    lean_records()
    logging.captureWarnings(True)  # library warnings become JSON lines too, not stray stderr text
