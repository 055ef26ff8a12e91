"""The hashed locks (requirements-*.lock) agree with pyproject.toml, with each other, and with the
environment the tests run in (scripts/lock.sh makes them; `make lock` after a change)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
INPUTS = REPO / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


@dataclass
class Pin:
    version: Version
    marker: Marker | None
    hashes: int = 0

    def applies(self) -> bool:
        return self.marker is None or self.marker.evaluate()


def pins(lock: str) -> dict[str, list[Pin]]:
    """name -> its pinned lines in a lock (a universal lock may pin one name per Python range)."""
    result: dict[str, list[Pin]] = {}
    current = None
    for line in (REPO / lock).read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            current = Pin(Version(version), Marker(marker) if marker else None)
            result.setdefault(canonicalize_name(name), []).append(current)
        elif line.strip().startswith("--hash=sha256:") and current:
            current.hashes += 1
    assert result, f"{lock} pins nothing"
    return result


def versions(lock: str) -> dict[str, set[Version]]:
    return {name: {pin.version for pin in lines} for name, lines in pins(lock).items()}


def declared(*extras: str) -> list[Requirement]:
    """pyproject.toml's dependencies and those of the given extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def listed(*inputs: str) -> list[Requirement]:
    """The requirements of requirements/*.in files."""
    lines = [line.split("#")[0].strip() for name in inputs for line in (INPUTS / name).read_text().splitlines()]
    return [Requirement(line) for line in lines if line]


def all_extras() -> list[str]:
    return list(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


@pytest.mark.parametrize("lock, requirements", [
    ("requirements-dev.lock", lambda: declared(*all_extras()) + listed("build.in", "tools.in")),
    ("requirements-app.lock", lambda: declared() + listed("build.in")),
    ("requirements-lambda.lock", lambda: listed("lambda.in")),
])
def test_each_lock_pins_every_requirement_within_its_range(lock, requirements):
    pinned = versions(lock)
    wrong = []
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            wrong.append(f"{requirement} is not in {lock}")
        wrong += [f"{requirement} but {lock} pins {version}" for version in sorted(pinned.get(name, ()))
                  if not requirement.specifier.contains(version, prereleases=True)]
    assert not wrong, "pyproject.toml and the lock disagree (run `make lock`):\n" + "\n".join(wrong)


def test_every_pin_carries_hashes():
    for lock in ("requirements-dev.lock", "requirements-app.lock", "requirements-lambda.lock"):
        unhashed = [name for name, lines in pins(lock).items() if any(not pin.hashes for pin in lines)]
        assert not unhashed, f"{lock}: no hash for {unhashed}"


def test_the_app_and_the_lambda_get_the_versions_the_tests_run():
    dev = versions("requirements-dev.lock")
    for lock in ("requirements-app.lock", "requirements-lambda.lock"):
        differ = {name: (sorted(map(str, found)), sorted(map(str, dev.get(name, ()))))
                  for name, found in versions(lock).items() if not found <= dev.get(name, set())}
        assert not differ, f"{lock} differs from requirements-dev.lock (name: its version, dev's): {differ}"


def test_the_lambda_packs_only_what_pyproject_declares():
    names = {canonicalize_name(r.name) for r in declared("lambda")}
    extra = [r.name for r in listed("lambda.in") if canonicalize_name(r.name) not in names]
    assert not extra, f"requirements/lambda.in names packages pyproject.toml does not declare: {extra}"


def test_this_environment_is_exactly_the_dev_lock():
    """`make test` installs requirements-dev.lock: a stale venv, or a hand-installed upgrade, shows here."""
    differ = {}
    for name, lines in pins("requirements-dev.lock").items():
        for pin in filter(Pin.applies, lines):
            try:
                installed = Version(metadata.version(name))
            except metadata.PackageNotFoundError:
                installed = None
            if installed != pin.version:
                differ[name] = (str(pin.version), str(installed))
    assert not differ, f"installed versions differ from requirements-dev.lock (locked, installed): {differ}"
