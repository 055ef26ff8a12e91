"""The core stays free of the web and cloud SDKs; Pillow stays inside the imaging package."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "application" / "imageservice"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_importing_the_pipeline_pulls_in_neither_flask_nor_boto3():
    code = (
        "import sys, imageservice.pipeline, imageservice.core.imaging;"
        "bad = [m for m in ('flask', 'boto3', 'botocore', 'werkzeug') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_modules_import_no_framework_or_sdk():
    for path in (PACKAGE / "core").rglob("*.py"):
        assert not _imports(path) & {"flask", "boto3", "botocore", "werkzeug"}, path


def _relative_imports(path: Path) -> set[str]:
    """The modules a file imports relatively, resolved against the package root."""
    tree = ast.parse(path.read_text())
    base = path.relative_to(PACKAGE).parent.parts
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            parent = base[: len(base) - (node.level - 1)]
            names.add(".".join((*parent, *(node.module or "").split("."))).strip("."))
    return names


def test_core_imports_nothing_outside_core():
    # The core is the innermost layer: ports, adapters and use cases build on it, never the reverse.
    for path in (PACKAGE / "core").rglob("*.py"):
        outside = {name for name in _relative_imports(path) if not name.startswith("core")}
        assert not outside, (path, outside)


def test_adapters_never_import_the_wiring_or_the_web():
    # Adapters get their collaborators through their constructors (bootstrap hands them in).
    for path in (PACKAGE / "adapters").rglob("*.py"):
        upward = {name for name in _relative_imports(path)
                  if name.split(".")[0] in ("bootstrap", "composition", "web", "entrypoints")}
        assert not upward, (path, upward)


def test_only_the_imaging_package_imports_pillow():
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if _imports(path) & {"PIL", "pillow_heif"}
    }
    assert importers, "the walk found no Pillow importer at all"
    assert all(path.startswith("core/imaging/") for path in importers), importers


def test_sniffing_is_pure_bytes():
    assert not _imports(PACKAGE / "core" / "imaging" / "sniffing.py") & {"PIL", "pillow_heif"}


def test_importing_the_app_factory_does_no_work():
    code = (
        "import os, tempfile; d = tempfile.mkdtemp(); os.chdir(d);"
        "import imageservice.web, imageservice.entrypoints.cli, imageservice.entrypoints.worker;"
        "print(os.listdir(d))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_command_line_client_uses_only_the_api_and_the_core():
    # It talks to the service over HTTP like any integrator: none of the server's layers.
    for path in (PACKAGE / "client").rglob("*.py"):
        inside = {name for name in _relative_imports(path) if not name.startswith(("core", "client"))}
        assert inside <= {"commands"}, (path, inside)  # commands.py: the API's request types


def test_only_entry_points_and_the_handler_start_things():
    # The ways in live in entrypoints/; nothing below them imports one (the server starts the
    # job threads, being the web's own entry point).
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in ("entrypoints", "__main__.py"):
            continue
        importers = {name for name in _relative_imports(path) if name.startswith("entrypoints")}
        allowed = {"entrypoints.worker"} if path.relative_to(PACKAGE).as_posix() == "web/server.py" else set()
        assert importers <= allowed, (path, importers)
