"""Cache-busted static files: plain files under ``web/static`` (no build step), each reached
through a URL that changes when its content does, so browsers may keep it for a year.

* Stylesheets and images: ``/static/<name>?v=<first 12 hex of the file's sha256>``.
* Script modules (``static/js/``): ``/static/m/<version>/<name>``, where the version hashes the
  whole folder. A module's relative imports (``import ... from "./api.js"``) then resolve under
  the same versioned prefix with no import map (that would be inline script, which the CSP
  forbids) and no rewriting: any change to any module gives every module a new URL.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

VERSION_DIGITS = 12
VERSIONED_CACHE_CONTROL = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE_CONTROL = "no-cache"
MODULES_FOLDER = "js"
MODULES_URL_PREFIX = "m"


def file_version(folder: Path, name: str) -> str:
    """The first 12 hex digits of the file's sha256; FileNotFoundError outside ``folder``."""
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        raise FileNotFoundError(f"no static asset {name!r}")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:VERSION_DIGITS]


def tree_version(folder: Path) -> str:
    """One hash over every file's relative name and content under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:VERSION_DIGITS]


def cache_control(versioned: bool) -> str:
    return VERSIONED_CACHE_CONTROL if versioned else UNVERSIONED_CACHE_CONTROL


class AssetVersions:
    """Content hashes of static files and of the modules folder, computed on first use and then
    remembered for the process's life (the files ship with the code)."""

    def __init__(self) -> None:
        self._hashes: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _remember(self, key: tuple[str, str], compute) -> str:
        found = self._hashes.get(key)
        if found is None:
            found = compute()
            with self._lock:
                self._hashes[key] = found
        return found

    def version(self, folder: Path, name: str) -> str:
        """The file's version; FileNotFoundError outside ``folder`` or for a missing file."""
        return self._remember((str(folder), name), lambda: file_version(folder, name))

    def tree(self, folder: Path) -> str:
        """The version of every file under ``folder`` together."""
        return self._remember((str(folder), "/"), lambda: tree_version(folder))
