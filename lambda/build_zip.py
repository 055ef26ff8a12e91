"""Build the processor Lambda's deployment package: ``build/lambda.zip`` (``make lambda-zip``).

Default target: the deployed runtime, ``python3.12`` on ``arm64`` (Amazon Linux 2023, glibc
2.34; infrastructure/processor.yaml). ``--python-version`` and ``--arch`` (``arm64`` or
``x86_64``) choose another target, e.g. this machine's interpreter for a local test run. The
third-party wheels are CPython builds for the target's version and architecture, downloaded with
pip's ``--platform manylinux_2_28_<machine> --platform manylinux2014_<machine>`` (glibc 2.28 or
older, which the runtime's 2.34 runs) and ``--only-binary=:all:``; the runtime dependencies are
those of ``requirements-lambda.lock``, with their hashes: the versions the project is tested
with. boto3 is not packed: the runtime provides it.

The zip holds, at its root: ``handler.py`` (the entry point ``handler.handler``), the
``imageservice`` package without its web app, CLI and local adapters (the handler needs the
core, the ports, the settings and the AWS adapters only), and the runtime dependencies.
Byte-for-byte reproducible: sorted entries, fixed timestamps and modes. Bytecode (hash-based,
not timestamp, invalidation, for a faster cold start) is packed only when this interpreter is
the target's Python version: another version's bytecode would be ignored by the runtime.

Wheels are cached in ``build/wheel-cache/<target>`` (e.g. ``cp312-aarch64``): a rebuild
installs from there without the network. Exit status 3 means the wheels could not be downloaded
(no package index reachable).
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "application" / "imageservice"
HANDLER = REPO / "lambda" / "handler.py"
BUILD = REPO / "build"

# The deployed function (infrastructure/processor.yaml: Runtime, Architectures).
DEFAULT_PYTHON = "3.12"
DEFAULT_ARCH = "arm64"
# Lambda's architecture name -> the machine name in wheel tags and extension module names.
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
# Newest first; pip takes the best wheel any of them allows. Both are <= the runtime's glibc 2.34.
MANYLINUX = ("manylinux_2_28", "manylinux2014")
# The runtime dependencies, pinned with their hashes (scripts/lock.sh makes it from
# requirements/lambda.in, constrained to the versions the tests run: requirements-dev.lock).
REQUIREMENTS_LOCK = REPO / "requirements-lambda.lock"
REQUIREMENTS = ("--require-hashes", "-r", str(REQUIREMENTS_LOCK))
# Parts of the package the Lambda never imports: the web app (Flask), entry points and the
# local (filesystem/SQLite) adapters, and the aws helpers only the CLI uses.
EXCLUDED = {
    "web", "__main__.py", "service", "bootstrap.py", "client",
    # of the entry points, the Lambda runs aws_processor.py (through lambda/handler.py) alone
    "entrypoints/cli.py", "entrypoints/worker.py", "entrypoints/sqs_worker.py",
    "auth.py", "commands.py",  # the API's tokens and typed commands (pydantic is not in the zip)
    "adapters/local", "adapters/aws/setup.py", "adapters/aws/template.py",
}
EXCLUDED_DIRS = {"__pycache__", "bin"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
LAMBDA_TASK_ROOT = "/var/task"
EXIT_DOWNLOAD_FAILED = 3


@dataclass(frozen=True)
class Target:
    """The Lambda runtime the zip is for: a CPython version and an architecture."""

    python: str  # "3.12"
    arch: str  # Lambda's name: "arm64" or "x86_64"

    @property
    def machine(self) -> str:
        return MACHINES[self.arch]

    @property
    def key(self) -> str:
        """``cp312-aarch64``: the wheel cache's folder for this target."""
        return f"cp{self.python.replace('.', '')}-{self.machine}"

    @property
    def platforms(self) -> list[str]:
        return [f"{tag}_{self.machine}" for tag in MANYLINUX]

    def pip_options(self) -> list[str]:
        options = [option for platform in self.platforms for option in ("--platform", platform)]
        return [*options, "--implementation", "cp", "--python-version", self.python, "--only-binary=:all:"]

    def __str__(self) -> str:
        return f"python{self.python} {self.arch}"


def python_version(text: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", text):
        raise argparse.ArgumentTypeError(f"not a Python 3 version like 3.12: {text!r}")
    return text


def pip(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True)


def install_dependencies(target: Path, cache: Path, runtime: Target) -> None:
    """Install the pinned wheels into ``target``: from the cache, downloading what is missing."""
    cache.mkdir(parents=True, exist_ok=True)
    offline = ["install", "--quiet", "--no-index", "--find-links", str(cache), "--no-compile",
               "--target", str(target), *runtime.pip_options(), *REQUIREMENTS]
    if pip(*offline).returncode == 0:
        return
    print(f"downloading wheels for {runtime} ({', '.join(runtime.platforms)}) into {cache}")
    download = pip("download", "--quiet", "--dest", str(cache), *runtime.pip_options(), *REQUIREMENTS)
    if download.returncode != 0:
        print(download.stdout + download.stderr, file=sys.stderr)
        print("could not download the Lambda's wheels (is a package index reachable?)", file=sys.stderr)
        raise SystemExit(EXIT_DOWNLOAD_FAILED)
    installed = pip(*offline)
    if installed.returncode != 0:
        raise SystemExit(f"pip install from {cache} failed:\n{installed.stdout}{installed.stderr}")


def copy_package(target: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = Path(folder).relative_to(PACKAGE)
        return {n for n in names if n in EXCLUDED_DIRS or (relative / n).as_posix() in EXCLUDED}

    shutil.copytree(PACKAGE, target / "imageservice", ignore=ignore)
    shutil.copy2(HANDLER, target / "handler.py")


def clean(target: Path) -> None:
    """Drop what the runtime never reads: console scripts and stale bytecode."""
    for folder in sorted(target.rglob("*"), reverse=True):
        if folder.is_dir() and folder.name in EXCLUDED_DIRS:
            shutil.rmtree(folder)


def compile_bytecode(target: Path, runtime: Target) -> bool:
    """Compile the zip's sources when this interpreter is the runtime's version; True if it did."""
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if here != runtime.python:
        print(f"note: this is Python {here}, not the runtime's {runtime.python}: no bytecode packed")
        return False
    # Source paths inside the bytecode are where Lambda unpacks the code, not the temp folder.
    compileall.compile_dir(str(target), quiet=2, workers=0, stripdir=str(target), prependdir=LAMBDA_TASK_ROOT,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return True


def write_zip(source: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".zip.partial")
    files = sorted((p.relative_to(source).as_posix(), p) for p in source.rglob("*") if p.is_file())
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    os.replace(partial, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=BUILD / "lambda.zip")
    parser.add_argument("--cache", type=Path, default=BUILD / "wheel-cache",
                        help="wheel cache; each target gets its own folder in it")
    parser.add_argument("--python-version", type=python_version, default=DEFAULT_PYTHON,
                        help=f"the runtime's CPython version (default: {DEFAULT_PYTHON})")
    parser.add_argument("--arch", choices=sorted(MACHINES), default=DEFAULT_ARCH,
                        help=f"the function's architecture (default: {DEFAULT_ARCH})")
    args = parser.parse_args(argv)
    runtime = Target(args.python_version, args.arch)
    with tempfile.TemporaryDirectory(prefix="lambda-build-") as folder:
        stage = Path(folder)
        install_dependencies(stage, args.cache / runtime.key, runtime)
        copy_package(stage)
        clean(stage)
        compiled = compile_bytecode(stage, runtime)
        unpacked = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file())
        write_zip(stage, args.output)
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1024 / 1024:.1f} MiB zipped, {unpacked / 1024 / 1024:.1f} MiB unpacked)"
          f" for {runtime} ({', '.join(runtime.platforms)}): {REQUIREMENTS_LOCK.relative_to(REPO)}")
    print(f"target=cp{runtime.python.replace('.', '')}-{runtime.machine} bytecode={'yes' if compiled else 'no'}"
          f" zip_bytes={size} unpacked_bytes={unpacked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
