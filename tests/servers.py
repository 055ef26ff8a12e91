"""Real processes for integration and e2e tests: the service itself, emulators, all on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


class ServerProcess:
    """A subprocess in its own process group, logged to a file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, ready_url: str | None = None,
                 timeout: float = 30.0):
        self.argv, self.env, self.log_path, self.ready_url, self.timeout = argv, env, log_path, ready_url, timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        if self.ready_url:
            try:
                wait_for_http(self.ready_url, self.timeout, self.process)
            except Exception:
                self.stop()
                raise RuntimeError(f"{self.argv[0]} did not start:\n{self.log()}") from None
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""

    def signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(5)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def service_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGESERVICE_")}
    env.update({
        "IMAGESERVICE_DATA_DIR": str(data_dir),
        "IMAGESERVICE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "IMAGESERVICE_SECRET_KEY": "e2e-secret-key",
        "IMAGESERVICE_WORKER_POLL_SECONDS": "0.1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def imageservice(*args: str) -> list[str]:
    return [str(BIN / "imageservice"), *args]


def start_service(data_dir: Path, log_path: Path, **extra_env: str) -> tuple[ServerProcess, str]:
    """``imageservice serve`` on a free port; returns the process and its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        imageservice("serve", "--host", "127.0.0.1", "--port", str(port)),
        service_env(data_dir, port, **extra_env),
        log_path,
        ready_url=f"{base}/healthz",
    ).start()
    return server, base


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(imageservice(*args), env=env, capture_output=True, text=True, timeout=timeout)


def wait_until(predicate, what: str, deployment, timeout: float, interval: float = 0.2):
    """``predicate()``'s first truthy value, polled every ``interval`` s; fails after ``timeout``
    (with ``deployment.logs()`` when a deployment is given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    logs = f"\n{deployment.logs()}" if deployment is not None else ""
    raise AssertionError(f"{what} did not happen within {timeout}s{logs}")
