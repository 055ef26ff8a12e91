"""The JSON API over HTTP: one requests session, retried by urllib3's Retry.

Every call the client makes may be repeated safely, so every method is retried: a GET, an
upload request carrying its Idempotency-Key, ``complete`` and ``convert`` (idempotent by
design: docs/API.md), and the PUT of the same bytes to the same signed URL (urllib3 rewinds a
seekable body before each attempt). 429 and 503 wait as Retry-After says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY = Retry(total=6, connect=4, read=2, status=6, backoff_factor=0.5, allowed_methods=None,
              status_forcelist=(429, 502, 503, 504), respect_retry_after_header=True, raise_on_status=False)
TIMEOUT = (10, 120)  # connect, read (a conversion of a large image takes seconds)
PAGE_SIZE = 100


class ApiError(Exception):
    """An answer that is not a success: the API's error code and message, or the HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _raise_for(response: requests.Response) -> None:
    if response.ok:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = f"http_{response.status_code}", f"HTTP {response.status_code} {response.reason}"
    raise ApiError(response.status_code, code, message)


def _retrying_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "imageservice-client"
    adapter = HTTPAdapter(max_retries=RETRY, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Api:
    def __init__(self, server: str, token: str):
        self.server = server.rstrip("/")
        self.session = _retrying_session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        # Signed URLs carry their own authority: the token never travels to storage.
        self.storage = _retrying_session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.server}{path}", timeout=TIMEOUT, **kwargs)
        _raise_for(response)
        return response.json() if response.content else None

    def create_upload(self, body: dict, idempotency_key: str) -> dict:
        return self._call("POST", "/api/images/upload", json=body, headers={"Idempotency-Key": idempotency_key})

    def put(self, ticket: dict, body: IO[bytes]) -> None:
        response = self.storage.request(ticket.get("upload_method", "PUT"), ticket["upload_url"], data=body,
                                        headers=ticket["upload_headers"], timeout=TIMEOUT)
        _raise_for(response)

    def complete(self, image_id: str) -> dict:
        return self._call("POST", f"/api/images/{image_id}/complete")

    def image(self, image_id: str) -> dict:
        return self._call("GET", f"/api/images/{image_id}")

    def images(self, **filters: Any) -> Iterator[dict]:
        """Every image matching ``filters``, page after page."""
        params = {"limit": PAGE_SIZE, **{k: v for k, v in filters.items() if v is not None}}
        while True:
            page = self._call("GET", "/api/images", params=params)
            yield from page["images"]
            if not page["next_cursor"]:
                return
            params["cursor"] = page["next_cursor"]

    def download_link(self, image_id: str, variant: str) -> dict:
        return self._call("GET", f"/api/images/{image_id}/download", params={"variant": variant})

    def convert(self, image_id: str, body: dict) -> dict:
        return self._call("POST", f"/api/images/{image_id}/convert", json=body)

    def fetch(self, url: str) -> requests.Response:
        """A streamed GET of a signed URL."""
        response = self.storage.get(url, stream=True, timeout=TIMEOUT)
        _raise_for(response)
        return response
