"""Scanner adapters (ports.Scanner): none, clamd over its socket, and an HTTP moderation hook.

The pipeline scans every original after sniffing and before any derivative is written. A
scanner that cannot be reached raises TransientError: the job is retried, then dead-lettered,
and the file is never published unscanned.
"""

from __future__ import annotations

import json
import socket
import struct
import urllib.error
import urllib.request

from ..core.errors import TransientError
from ..ports import ScanVerdict, Scanner

ALLOWED = ScanVerdict(allowed=True)
# clamd's INSTREAM takes the stream in chunks, each prefixed with its length (4 bytes, network
# order) and ended by a zero-length chunk; clamd's StreamMaxLength caps the total.
CLAMD_CHUNK = 64 * 1024
MAX_ANSWER = 4096  # clamd's one-line verdict; anything longer is not clamd
MAX_REASON = 200  # characters of a moderator's reason kept in the rejection message


class NoScanner:
    """The default: every file is allowed (no scanner configured)."""

    def scan(self, data: bytes) -> ScanVerdict:
        return ALLOWED


class ClamdScanner:
    """clamd's ``zINSTREAM`` over a Unix socket (``unix:/path``) or TCP (``host:port``).

    A new connection per scan (clamd closes it after the verdict). ``timeout`` bounds the
    connect and every send and receive.
    """

    def __init__(self, address: str, timeout: float = 30.0):
        self.address = address
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        if self.address.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: object = self.address[len("unix:"):]
        else:
            host, _, port = self.address.rpartition(":")
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            target = (host.strip("[]"), int(port))
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except BaseException:
            sock.close()
            raise
        return sock

    def scan(self, data: bytes) -> ScanVerdict:
        """Allowed on ``stream: OK``; ``malware`` with the signature on ``<name> FOUND``.

        Raises TransientError when clamd is unreachable, times out, or answers an error
        (e.g. ``INSTREAM size limit exceeded``: raise clamd's StreamMaxLength).
        """
        try:
            with self._connect() as sock:
                sock.sendall(b"zINSTREAM\0")
                view = memoryview(data)
                for start in range(0, len(data), CLAMD_CHUNK):
                    chunk = view[start:start + CLAMD_CHUNK]
                    sock.sendall(struct.pack("!L", len(chunk)) + bytes(chunk))
                sock.sendall(struct.pack("!L", 0))
                answer = _read_answer(sock)
        except (OSError, ValueError) as exc:  # socket.timeout is an OSError
            raise TransientError(f"clamd at {self.address} could not scan: {exc}") from exc
        return parse_clamd_answer(answer)


def _read_answer(sock: socket.socket) -> bytes:
    answer = b""
    while b"\0" not in answer and len(answer) < MAX_ANSWER:
        part = sock.recv(MAX_ANSWER)
        if not part:
            break
        answer += part
    return answer.split(b"\0", 1)[0]


def parse_clamd_answer(answer: bytes) -> ScanVerdict:
    """``stream: OK`` | ``stream: <signature> FOUND`` | ``... ERROR`` (TransientError)."""
    text = answer.decode("utf-8", "replace").strip()
    body = text.split(": ", 1)[1] if ": " in text else text
    if body == "OK":
        return ALLOWED
    if body.endswith(" FOUND"):
        signature = body[: -len(" FOUND")].strip()
        return ScanVerdict(allowed=False, code="malware", reason=f"The file matches the malware signature {signature}.")
    raise TransientError(f"clamd answered {text[:200]!r}")


class HttpModerationScanner:
    """POSTs the bytes to a moderation endpoint answering ``{"verdict": "allow"|"deny", "reason"}``."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url
        self.timeout = timeout

    def scan(self, data: bytes) -> ScanVerdict:
        """Allowed on ``allow``; ``moderation`` with the reason on ``deny``.

        Raises TransientError on a network error, a timeout, a non-2xx answer or a body that
        is not such a verdict.
        """
        request = urllib.request.Request(
            self.url, data=data, method="POST", headers={"Content-Type": "application/octet-stream"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read(64 * 1024))
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            raise TransientError(f"the moderation endpoint could not judge the file: {exc}") from exc
        verdict = body.get("verdict") if isinstance(body, dict) else None
        if verdict == "allow":
            return ALLOWED
        if verdict == "deny":
            reason = body.get("reason")
            reason = reason[:MAX_REASON] if isinstance(reason, str) and reason.strip() else "no reason given"
            return ScanVerdict(allowed=False, code="moderation", reason=f"Content moderation denied the file: {reason}")
        raise TransientError(f"the moderation endpoint answered no verdict: {str(body)[:200]!r}")


def build_scanner(settings) -> Scanner:
    """The scanner ``IMAGESERVICE_SCANNER`` names, built once and handed to the pipeline."""
    if settings.scanner == "clamav":
        return ClamdScanner(settings.clamd_address, settings.scanner_timeout)
    if settings.scanner == "http":
        return HttpModerationScanner(settings.moderation_url, settings.scanner_timeout)
    return NoScanner()
