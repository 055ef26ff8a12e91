"""The container's command, run for real outside a container.

The test reads the CMD of the Dockerfile's final stage (its JSON array, word for word) and
runs it with the project's gunicorn against embedded mode: a temporary data dir, a free port
on 127.0.0.1. It passes when GET /healthz answers 200 within 30 s and gunicorn then stops
cleanly on SIGTERM, the way ECS stops a task. The config module's own rules (bind, worker
count, overrides) are checked here too, without a server.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import signal
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
CONFIG_MODULE = "imageservice.gunicorn_conf"
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


def load_config(monkeypatch, **env: str) -> dict:
    """The config module's settings under ``env`` (a fresh execution, not the cached import)."""
    for name in ("PORT", "IMAGESERVICE_HOST", "IMAGESERVICE_BIND", "IMAGESERVICE_WEB_WORKERS",
                 "IMAGESERVICE_WEB_THREADS", "IMAGESERVICE_WEB_TIMEOUT", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_module(CONFIG_MODULE)


# ------------------------------------------------------------------------------- the command

def test_cmd_runs_gunicorn_with_the_config_module_and_the_app_factory():
    assert container_cmd() == ["gunicorn", "--config", f"python:{CONFIG_MODULE}", "imageservice.web:create_app()"]


def test_container_command_serves_healthz_and_stops_on_sigterm(tmp_path):
    pytest.importorskip("imageservice.web", reason="the app package is not installed (make test installs it)")
    command = container_cmd()
    command[0] = venv_tool(command[0])
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("IMAGESERVICE_")}
    env.update(
        IMAGESERVICE_BACKEND="local",
        IMAGESERVICE_DATA_DIR=str(tmp_path / "data"),
        IMAGESERVICE_HOST="127.0.0.1",
        PORT=str(port),
        IMAGESERVICE_WEB_WORKERS="2",
        PYTHONUNBUFFERED="1",
    )
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            status = wait_for_healthz(server, f"http://127.0.0.1:{port}/healthz")
            # Lines are written in batches, yet reach stdout within a moment while the server
            # runs (each worker's flusher), not only when it stops.
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
    assert returncode == 0, f"gunicorn did not stop cleanly on SIGTERM (exit {returncode})\n{logs}"
    assert written_while_running, f"no access line for /healthz on stdout while the server ran\n{logs}"
    # Every line JSON on stdout: the app's line per request and gunicorn's own, listening
    # where it was told to.
    lines = [json.loads(line) for line in stdout_path.read_text().splitlines() if line.strip()]
    assert any(line["logger"] == "imageservice.access" and line["path"] == "/healthz" for line in lines), logs
    assert any(line["logger"] == "gunicorn.error" and line["message"].startswith(
        f"Listening at: http://127.0.0.1:{port} ") for line in lines), logs


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


# ------------------------------------------------------------------------------- the config

def test_config_binds_all_interfaces_on_port_8000_by_default(monkeypatch):
    config = load_config(monkeypatch)
    assert config["bind"] == ["0.0.0.0:8000"]
    # gunicorn logs through imageservice.logs (JSON on stdout); the app logs each request.
    assert config["accesslog"] is None and config["errorlog"] == "-"
    assert config["logconfig_dict"]["formatters"]["json"]["()"] == "imageservice.logs.JsonFormatter"
    assert config["logconfig_dict"]["handlers"]["json"]["stream"] == "ext://sys.stdout"
    assert config["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert config["graceful_timeout"] < 30  # inside ECS's StopTimeout (30 s)
    assert config["keepalive"] > 60  # outlives the ALB's idle timeout
    assert config["control_socket_disable"] is True


def test_config_takes_host_port_or_a_full_bind_from_the_environment(monkeypatch):
    assert load_config(monkeypatch, IMAGESERVICE_HOST="127.0.0.1", PORT="8123")["bind"] == ["127.0.0.1:8123"]
    assert load_config(monkeypatch, IMAGESERVICE_HOST="::1", PORT="8123")["bind"] == ["[::1]:8123"]
    assert load_config(monkeypatch, IMAGESERVICE_BIND="unix:/tmp/web.sock", PORT="1")["bind"] == ["unix:/tmp/web.sock"]
    assert load_config(monkeypatch, FORWARDED_ALLOW_IPS="10.40.0.0/16")["forwarded_allow_ips"] == "10.40.0.0/16"


def test_config_workers_follow_the_cpus_unless_set(monkeypatch):
    config = load_config(monkeypatch)
    assert [config["default_workers"](n) for n in (1, 2, 3, 4, 64)] == [3, 5, 7, 8, 8]
    assert config["workers"] == config["default_workers"](config["usable_cpus"]())
    assert load_config(monkeypatch, IMAGESERVICE_WEB_WORKERS="3")["workers"] == 3


@pytest.mark.parametrize("value", ["-1", "many"])
def test_config_refuses_a_bad_worker_count(monkeypatch, value):
    with pytest.raises(ValueError, match="IMAGESERVICE_WEB_WORKERS"):
        load_config(monkeypatch, IMAGESERVICE_WEB_WORKERS=value)


def test_config_puts_worker_heartbeats_on_shared_memory_when_writable(monkeypatch):
    config = load_config(monkeypatch)
    shm = Path("/dev/shm")
    expected = "/dev/shm" if shm.is_dir() and os.access(shm, os.W_OK) else None
    assert config["worker_tmp_dir"] == expected


def test_serve_refuses_a_port_someone_already_listens_on(tmp_path):
    """``serve`` listens with SO_REUSEPORT (a socket per worker), which would let a second
    ``serve`` of the same user share the first one's port; it refuses instead, and says why."""
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
