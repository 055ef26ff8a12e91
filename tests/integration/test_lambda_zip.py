"""The processor's Lambda zip, built by lambda/build_zip.py (``make lambda-zip``), in two variants.

- The *deploy* zip: the script's defaults, python3.12 on arm64 — what infrastructure/processor.yaml
  runs and buildspec.yml uploads. Checked for what can be checked without that runtime: layout,
  no Flask/web code/boto3, every native file built for CPython 3.12 on aarch64 from wheels the
  runtime's glibc 2.34 can load, Lambda's size limits, and byte-for-byte reproducibility.
- The *local variant*: the same script, the same pins, but for this machine's interpreter and
  architecture (``--python-version 3.11 --arch x86_64`` here). Its native code can run on this
  machine, so it is unpacked and run the way the Lambda runtime would: an isolated interpreter that
  sees the zip's contents plus boto3 (which the runtime provides), nothing else — no Flask, no
  venv — processing one image against the moto server.

On an aarch64 machine with a working python3.12, the deploy zip itself is run that way too;
elsewhere that test is skipped, never imitated.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

import imagefactory
from imageservice.adapters.aws.factory import build_aws_adapters
from imageservice.adapters.aws.setup import setup_resources
from imageservice.core import keys
from imageservice.core.ids import new_id
from imageservice.core.records import ImageRecord
from imageservice.core.timeutil import iso_in, to_iso, utcnow
from imageservice.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BUILD_ZIP = REPO / "lambda" / "build_zip.py"
EXIT_DOWNLOAD_FAILED = 3
LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct upload
LAMBDA_UNPACKED_LIMIT = 250 * 1024 * 1024
# What the Lambda runtime itself provides next to the function's code.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
PILLOW_VERSION = "13.0.0"  # build_zip.py's pin

# The deployed function: infrastructure/processor.yaml (Runtime python3.12, Architectures arm64)
# on Amazon Linux 2023 (glibc 2.34).
DEPLOY_PYTHON, DEPLOY_MACHINE, DEPLOY_GLIBC = "3.12", "aarch64", (2, 34)
# ELF e_machine values
EM_X86_64, EM_AARCH64 = 62, 183
ELF_MACHINES = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}
LAMBDA_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}  # machine -> Lambda's architecture name

HOST_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
HOST_MACHINE = platform.machine()

DRIVER = """
import importlib.util, json, platform, sys
code, runtime, event_path = sys.argv[1:4]
sys.path[:0] = [code, runtime]
flask_visible = importlib.util.find_spec("flask") is not None
import handler, PIL, pillow_heif
result = handler.handler(json.load(open(event_path)), None)
print(json.dumps({"result": result, "flask_visible": flask_visible, "pil": PIL.__version__,
                  "python": "%d.%d" % sys.version_info[:2], "machine": platform.machine(),
                  "libheif": pillow_heif.libheif_version(),
                  "files": {n: sys.modules[n].__file__ for n in ("handler", "imageservice", "PIL", "pillow_heif")},
                  "web_loaded": any(m.startswith(("flask", "imageservice.web")) for m in sys.modules)}))
"""


def index_reachable() -> bool:
    try:
        return requests.get("https://pypi.org/simple/pillow/", timeout=10).status_code < 500
    except requests.RequestException:
        return False


def build(output: Path, *target: str) -> str:
    """``make lambda-zip`` with another output path (and maybe another target); its stdout.
    The wheel cache stays build/wheel-cache (one folder per target)."""
    built = subprocess.run([sys.executable, str(BUILD_ZIP), "--output", str(output), *target],
                           capture_output=True, text=True, timeout=600)
    if built.returncode == EXIT_DOWNLOAD_FAILED and not index_reachable():
        pytest.skip("no package index reachable: cannot download the Lambda's manylinux wheels")
    assert built.returncode == 0, built.stdout + built.stderr
    return built.stdout


@pytest.fixture(scope="module")
def deploy_zip(tmp_path_factory) -> tuple[Path, str]:
    """The zip `make lambda-zip` builds and the pipeline deploys: the script's defaults."""
    output = tmp_path_factory.mktemp("deploy") / "lambda.zip"
    return output, build(output)


@pytest.fixture(scope="module")
def local_zip(tmp_path_factory) -> tuple[Path, str]:
    """The same script and pins, built for this machine's interpreter and architecture."""
    if sys.platform != "linux" or HOST_MACHINE not in LAMBDA_ARCH:
        pytest.skip(f"the zip holds manylinux wheels for x86_64 or aarch64; this is {sys.platform} {HOST_MACHINE}")
    output = tmp_path_factory.mktemp("local") / "lambda.zip"
    return output, build(output, "--python-version", HOST_PYTHON, "--arch", LAMBDA_ARCH[HOST_MACHINE])


def deploy_interpreter() -> str | None:
    """A python3.12 on PATH that really runs on an aarch64 machine with glibc >= 2.28 (what the
    deploy zip's wheels need), or None. A pyenv shim for a version not selected fails the probe."""
    if HOST_MACHINE != DEPLOY_MACHINE or not (found := shutil.which(f"python{DEPLOY_PYTHON}")):
        return None
    probe = "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine(), *platform.libc_ver())"
    try:
        answer = subprocess.run([found, "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = answer.stdout.split()
    if answer.returncode != 0 or fields[:3] != [DEPLOY_PYTHON, DEPLOY_MACHINE, "glibc"]:
        return None
    glibc = tuple(int(p) for p in fields[3].split(".")[:2])
    return found if glibc >= (2, 28) else None


DEPLOY_INTERPRETER = deploy_interpreter()


def elf_machine(header: bytes) -> int | None:
    """e_machine of an ELF file's first 20 bytes, None when it is no ELF file."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return struct.unpack("<H" if header[5] == 1 else ">H", header[18:20])[0]


def wheel_tags(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """``{dist-info folder: its WHEEL file's tags}`` of every installed distribution."""
    return {
        name.split("/")[0]: re.findall(r"^Tag: (\S+)$", archive.read(name).decode(), re.MULTILINE)
        for name in archive.namelist()
        if re.fullmatch(r"[^/]+\.dist-info/WHEEL", name)
    }


def assert_built_for(archive: zipfile.ZipFile, python: str, machine: str) -> None:
    """Every native file and every wheel of the zip is for CPython ``python`` on ``machine``."""
    cp = "cp" + python.replace(".", "")
    names = archive.namelist()
    extensions = [n for n in names if n.endswith(".so")]
    assert any(n.startswith("PIL/_imaging.") for n in extensions)
    assert any(n.startswith("_pillow_heif.") for n in extensions)
    suffix = f".cpython-{python.replace('.', '')}-{machine}-linux-gnu.so"
    for name in extensions:
        assert name.endswith(suffix) or name.endswith(".abi3.so"), name
    native = {n: elf_machine(archive.open(n).read(20)) for n in names}
    native = {n: m for n, m in native.items() if m is not None}
    assert set(extensions) <= set(native)  # bundled libraries (pillow.libs/...) are checked too
    wrong = {n: m for n, m in native.items() if m != ELF_MACHINES[machine]}
    assert native and not wrong, wrong
    tags = wheel_tags(archive)
    assert {t.split("-")[0] for t in tags} >= {"pillow", "pillow_heif", "aws_lambda_powertools"}
    for dist, dist_tags in tags.items():
        assert dist_tags, dist
        for tag in dist_tags:
            interpreter, abi, platform_tag = tag.split("-")
            if platform_tag == "any":
                assert interpreter.startswith("py3") and abi == "none", (dist, tag)
                continue
            stable_abi = abi == "abi3" and re.fullmatch(r"cp3\d+", interpreter) and int(interpreter[2:]) <= int(cp[2:])
            assert (interpreter, abi) == (cp, cp) or stable_abi, (dist, tag)
            glibc = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{machine}|manylinux2014_{machine}", platform_tag)
            assert glibc, (dist, tag)
            if glibc.group(1):
                assert (int(glibc.group(1)), int(glibc.group(2))) <= DEPLOY_GLIBC, (dist, tag)
    # Bytecode, if any, is the target's: the runtime ignores another version's.
    assert all(f".cpython-{python.replace('.', '')}." in n for n in names if n.endswith(".pyc"))


def test_deploy_zip_is_python312_arm64_lambda_code_and_reproducible(deploy_zip, tmp_path):
    path, output = deploy_zip
    assert "target=cp312-aarch64 " in output and f"zip_bytes={path.stat().st_size}" in output
    again = tmp_path / "again.zip"
    build(again)
    assert again.read_bytes() == path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
        assert_built_for(archive, DEPLOY_PYTHON, DEPLOY_MACHINE)
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert "handler.py" in names and "imageservice/pipeline.py" in names
    assert "imageservice/entrypoints/aws_processor.py" in names
    for absent in ("flask/", "werkzeug/", "boto3/", "botocore/", "imageservice/web/", "imageservice/cli.py",
                   "imageservice/adapters/local/", "imageservice/service/", "imageservice/client/",
                   "imageservice/entrypoints/cli.py", "imageservice/adapters/aws/template.py"):
        assert not any(n.startswith(absent) for n in names), absent
    assert any(n.startswith("pillow_heif/") for n in names)
    assert f"pillow-{PILLOW_VERSION}.dist-info/WHEEL" in names
    assert path.stat().st_size < LAMBDA_ZIP_LIMIT
    assert sum(i.file_size for i in infos) < LAMBDA_UNPACKED_LIMIT


def test_local_variant_is_the_deploy_zip_rebuilt_for_this_machine(local_zip, deploy_zip):
    """Same script, same contents: only the native code (and maybe the bytecode) differs."""
    local, output = local_zip
    assert f"target=cp{HOST_PYTHON.replace('.', '')}-{HOST_MACHINE} " in output
    with zipfile.ZipFile(local) as archive:
        assert_built_for(archive, HOST_PYTHON, HOST_MACHINE)
        local_names = archive.namelist()
    with zipfile.ZipFile(deploy_zip[0]) as archive:
        deploy_names = archive.namelist()

    def portable(names: list[str]) -> set[str]:
        """Names without bytecode and with the native files' target-specific parts blanked."""
        return {
            re.sub(r"\.cpython-\d+-\w+-linux-gnu\.so$|-[0-9a-f]{8}(?=\.so)", "", n)
            for n in names if not n.endswith(".pyc")
        }

    assert portable(local_names) == portable(deploy_names)
    assert local.stat().st_size < LAMBDA_ZIP_LIMIT


def run_unpacked(path: Path, interpreter: str, moto_server, aws_names, tmp_path, monkeypatch) -> dict:
    """Unpack the zip, let ``interpreter`` (seeing only the zip and boto3) run the handler on an
    SQS event for one uploaded JPEG against the moto server; its report, after the shared checks."""
    code = tmp_path / "task"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(code)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **aws_names.env(moto_server.endpoint)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    blobs, catalog, _, clients = build_aws_adapters(settings)
    list(setup_resources(settings, clients))

    image_id = new_id()
    now = utcnow()
    catalog.create(ImageRecord(
        image_id=image_id, user_id="alice", created_at=to_iso(now), upload_expires_at=iso_in(600, now),
        original_key=keys.original_key("alice", image_id, False), filename="zip.jpg",
    ))
    blobs.put(keys.original_key("alice", image_id, False), imagefactory.jpeg_bytes(1200, 900), "image/jpeg")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"Records": [{
        "messageId": "zip-1", "receiptHandle": "r", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs", "awsRegion": "us-east-1",
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "body": json.dumps({"key": keys.original_key("alice", image_id, False), "source": "complete"}),
    }]}))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    # -I: no PYTHON* variables, no user site; -S: no site-packages at all (not even the venv's)
    run = subprocess.run([interpreter, "-I", "-S", str(driver), str(code), str(runtime_dir(tmp_path)), str(event)],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])

    assert report["result"] == {"batchItemFailures": []}
    assert report["flask_visible"] is False and report["web_loaded"] is False
    assert report["pil"] == PILLOW_VERSION and report["libheif"]
    # The zip's own code and native libraries, not this environment's
    for name, location in report["files"].items():
        assert location.startswith(str(code)), (name, location)
    record = catalog.get("alice", image_id)
    assert (record.status, record.width, record.height) == ("ready", 1200, 900)
    assert blobs.size(keys.derivative_key("alice", image_id, "thumb", False))
    return report


def runtime_dir(root: Path) -> Path:
    """boto3 and its dependencies from this environment, alone in a folder (as in the runtime)."""
    import importlib

    folder = root / "runtime"
    folder.mkdir()
    for name in RUNTIME_PACKAGES:
        location = Path(importlib.import_module(name).__file__)
        source = location.parent if location.name == "__init__.py" else location
        (folder / source.name).symlink_to(source)
    return folder


def test_local_variant_unpacked_processes_an_image_like_the_lambda_runtime(
    local_zip, moto_server, aws_names, tmp_path, monkeypatch
):
    report = run_unpacked(local_zip[0], sys.executable, moto_server, aws_names, tmp_path, monkeypatch)
    assert (report["python"], report["machine"]) == (HOST_PYTHON, HOST_MACHINE)


@pytest.mark.skipif(
    DEPLOY_INTERPRETER is None,
    reason=f"the deploy zip is CPython {DEPLOY_PYTHON} {DEPLOY_MACHINE} code and this machine ({HOST_MACHINE}) has no "
           f"working python{DEPLOY_PYTHON} for it; the local variant ran the same code instead",
)
def test_deploy_zip_unpacked_processes_an_image_on_a_python312_arm64_host(
    deploy_zip, moto_server, aws_names, tmp_path, monkeypatch
):
    report = run_unpacked(deploy_zip[0], DEPLOY_INTERPRETER, moto_server, aws_names, tmp_path, monkeypatch)
    assert (report["python"], report["machine"]) == (DEPLOY_PYTHON, DEPLOY_MACHINE)
