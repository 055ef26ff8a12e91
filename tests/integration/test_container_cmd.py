"""The container's command, run for real outside a container.

The test reads the CMD of the Dockerfile's final stage (its JSON array, word for word) and
runs it against embedded mode: a temporary data dir, a free port. It passes when GET /healthz
answers 200 within 30 s and the server then stops cleanly on SIGTERM, the way ECS stops a task.
The server's settings (web/server.py's adjustments) are checked here too, without a server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from servers import free_port
from support import venv_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
STARTUP_SECONDS = 30
STOP_SECONDS = 30


def container_cmd() -> list[str]:
    """The last CMD of the Dockerfile (continuation lines joined), which must be exec form."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    commands = [line.strip()[3:].strip() for line in text.splitlines() if re.match(r"\s*CMD\s", line)]
    assert commands, "the Dockerfile has no CMD"
    command = json.loads(commands[-1])
    assert isinstance(command, list) and all(isinstance(word, str) for word in command), "CMD must be a JSON array"
    return command


# ------------------------------------------------------------------------------- the command

def test_cmd_runs_the_same_server_as_make_run_on_every_interface():
    assert container_cmd() == ["imageservice", "serve", "--host", "0.0.0.0"]


def test_container_command_serves_healthz_and_stops_on_sigterm(tmp_path):
    pytest.importorskip("imageservice.web", reason="the app package is not installed (make test installs it)")
    command = container_cmd()
    command[0] = venv_tool(command[0])
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("IMAGESERVICE_")}
    env.update(
        IMAGESERVICE_BACKEND="local",
        IMAGESERVICE_DATA_DIR=str(tmp_path / "data"),
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            status = wait_for_healthz(server, f"http://127.0.0.1:{port}/healthz")
            # Lines are written in batches, yet reach stdout within a moment while the server
            # runs (the handler's flusher), not only when it stops.
            written_while_running = wait_for_access_line(stdout_path, "/healthz")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                returncode = server.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
                returncode = None
    logs = f"--- stdout\n{stdout_path.read_text()}\n--- stderr\n{stderr_path.read_text()}"
    assert status == 200, f"GET /healthz answered {status}\n{logs}"
    assert returncode == 0, f"the server did not stop cleanly on SIGTERM (exit {returncode})\n{logs}"
    assert written_while_running, f"no access line for /healthz on stdout while the server ran\n{logs}"
    # Every line JSON on stdout: the app's line per request and the server's own, listening
    # where it was told to.
    lines = [json.loads(line) for line in stdout_path.read_text().splitlines() if line.strip()]
    assert any(line["logger"] == "imageservice.access" and line["path"] == "/healthz" for line in lines), logs
    assert any(line["logger"] == "imageservice.server" and line["message"].startswith(
        f"serving on http://0.0.0.0:{port} ") for line in lines), logs


def wait_for_access_line(stdout_path: Path, path: str, seconds: float = 5) -> bool:
    """Whether the app's access line for ``path`` shows up on stdout within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for line in stdout_path.read_text().splitlines():
            if '"imageservice.access"' in line and json.loads(line).get("path") == path:
                return True
        time.sleep(0.1)
    return False


def wait_for_healthz(server: subprocess.Popen, url: str) -> int | None:
    """Poll ``url`` until it answers 200, the server exits, or STARTUP_SECONDS pass."""
    deadline = time.monotonic() + STARTUP_SECONDS
    status = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return status
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = None
        if status == 200:
            return status
        time.sleep(0.2)
    return status


# ------------------------------------------------------------------------------- the settings

def test_server_adjustments_come_from_the_settings():
    from imageservice.settings import Settings
    from imageservice.web.server import adjustments

    settings = Settings.from_env({"IMAGESERVICE_WEB_THREADS": "3", "IMAGESERVICE_WEB_CONNECTION_LIMIT": "50",
                                  "IMAGESERVICE_WEB_IDLE_TIMEOUT": "9"})
    with socket.socket() as listening:
        adj = adjustments(settings, [listening])
        assert (adj.threads, adj.connection_limit, adj.channel_timeout) == (3, 50, 9)
        assert adj.max_request_body_size == settings.max_upload_bytes + 1
        assert adj.trusted_proxy is None and not adj.clear_untrusted_proxy_headers  # the app reads X-Forwarded-For
    assert Settings().web_idle_timeout > 60  # outlives the ALB's idle timeout
    assert Settings().web_graceful_seconds < 30  # inside ECS's StopTimeout (30 s)


def test_behind_the_load_balancer_its_scheme_is_trusted():
    from imageservice.settings import Settings
    from imageservice.web.server import adjustments

    with socket.socket() as listening:
        adj = adjustments(Settings.from_env({"IMAGESERVICE_TRUSTED_PROXIES": "1"}), [listening])
    assert (adj.trusted_proxy, adj.trusted_proxy_count, adj.trusted_proxy_headers) == ("*", 1, {"x-forwarded-proto"})


@pytest.mark.parametrize("name", ["IMAGESERVICE_WEB_THREADS", "IMAGESERVICE_WEB_CONNECTION_LIMIT"])
def test_a_server_limit_below_one_is_refused(name):
    from imageservice.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: "0"})


def test_serve_refuses_a_port_someone_already_listens_on(tmp_path):
    """A port in use is refused before anything starts, and said plainly."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "IMAGESERVICE_DATA_DIR": str(tmp_path)}
        result = subprocess.run([venv_tool("imageservice"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in result.stderr
